"""Shell completion scripts and the man page, generated from the CLI's Click command tree.

``python -m igcli.cli.docs [--root DIR] [--check]`` writes (or checks) ``completions/igcli.bash``,
``completions/_igcli`` (zsh), ``completions/igcli.fish`` and ``man/igcli.1``; ``tests/test_cli_docs.py`` fails
when the committed files are out of date. The scripts are static: completing a word never starts Python.

Everything about commands and options comes from the Click parameters (``opts``, ``secondary_opts``, ``help``,
``default``, ``is_flag``, ``nargs``, ``multiple`` and the type); only the install paths, the environment variables
and the examples are written here (the install paths in ``completion.py``). No torch here, at module level or anywhere.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Sequence

PROG = "igcli"
SHELLS = ("bash", "zsh", "fish")
SCRIPT_FILES = {"bash": "completions/igcli.bash", "zsh": "completions/_igcli", "fish": "completions/igcli.fish"}
MAN_FILE = "man/igcli.1"

ENVIRONMENT = {
    "SLURM_ARRAY_TASK_ID": "With SLURM_ARRAY_TASK_COUNT and without --shard: this job array task takes part "
    "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT parts of the inputs (the array must be "
    "contiguous, e.g. --array=0-N).",
    "SLURM_ARRAY_TASK_COUNT": "The number of parts the inputs are split into across a SLURM job array.",
    "SLURM_ARRAY_TASK_MIN": "The first task id of the SLURM job array (default 0), subtracted from "
    "SLURM_ARRAY_TASK_ID.",
    "RANK": "Under torchrun: this process's rank; each rank takes its own sub-part of the job's part of the "
    "inputs (default 0).",
    "WORLD_SIZE": "Under torchrun: the number of ranks (default 1).",
    "LOCAL_RANK": "Under torchrun: the rank on this node; with GPUs the rank runs on cuda:LOCAL_RANK (default 0).",
    # Not read by igcli's code as of this writing (reported to the maintainers); documented as such.
    "IGCLI_CACHE": "Reserved for igcli's own cache folder; this version does not read it (downloaded model "
    "weights are cached by torch hub, see TORCH_HOME).",
    "TORCH_HOME": "torch's folder: torchvision weights are downloaded to, and found offline in, "
    "$TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints).",
}

EXAMPLES = (
    ("Attribute every image under imgs/ with EfficientNet-Lite0, integrated gradients and the IDGI rule, writing "
     "HDF5 shards to out/:", "igcli attribute imgs/ -o out --model efficientnet_lite0 --method ig --rule idgi"),
    ("Read the image paths from stdin:", "find imgs -name '*.jpg' | igcli attribute - -o out"),
    ("Four processes on one node (four GPUs when there are), each on its own part of the inputs:",
     "torchrun --nproc-per-node 4 -m igcli attribute imgs/ -o out"),
    ("A SLURM job array of four tasks, each taking its part of the inputs into the same output folder:",
     "sbatch --array=0-3 --wrap 'igcli attribute imgs/ -o out'"),
    ("Continue an interrupted run:", "igcli attribute imgs/ -o out --resume"),
    ("Draw heatmaps and overlays of the first 16 maps:", "igcli render out -o png --limit 16"),
)


# -- the command tree -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One option or argument, as the generators need it."""

    name: str
    opts: tuple[str, ...]  # option names (empty for an argument)
    secondary_opts: tuple[str, ...]  # the off switch of an on/off flag (--no-x)
    metavar: str
    help: str
    takes_value: bool
    nargs: int  # values per occurrence (-1: any number, arguments only)
    multiple: bool
    required: bool
    kind: str  # values: "choice", "file", "dir", "text" (free text: completes files), "number" or "none" (flag)
    choices: tuple[str, ...]
    default: str | None  # as shown, None: nothing to show
    range: str | None  # e.g. "x >= 1"
    panel: str | None

    @property
    def names(self) -> tuple[str, ...]:
        return self.opts + self.secondary_opts


@dataclass
class Command:
    path: tuple[str, ...]  # ("igcli",), ("igcli", "attribute")
    help: str
    short_help: str
    epilog: str
    options: list[Param]
    arguments: list[Param]
    commands: list[Command] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def value_options(self) -> list[Param]:
        return [option for option in self.options if option.takes_value]

    def walk(self) -> list[Command]:
        return [self, *(command for child in self.commands for command in child.walk())]


def _choice_text(choice: Any) -> str:
    return str(choice.value) if isinstance(choice, Enum) else str(choice)


def _default_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_default_text(item) for item in value)
    return _choice_text(value)


def _range_text(low: Any, high: Any) -> str | None:
    if low is not None and high is not None:
        return f"{low} <= x <= {high}"
    if low is not None:
        return f"x >= {low}"
    if high is not None:
        return f"x <= {high}"
    return None


def _value_type(param: Any) -> tuple[str, tuple[str, ...], str | None]:
    """(kind, choices, range) of a parameter's values, from Typer's type descriptor or Click's ``type``."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:  # Typer >= 0.2x builds its own Click copy, which describes types by annotation
        if desc.is_choice:
            return "choice", tuple(_choice_text(choice) for choice in desc.choices or ()), None
        if desc.is_file:
            return "file", (), None
        if desc.is_path:
            info = desc.parameter_info
            only_dirs = getattr(info, "dir_okay", True) and not getattr(info, "file_okay", True)
            return ("dir" if only_dirs else "file"), (), None
        annotation = desc.annotation
        if desc.is_list or desc.is_tuple:
            element_types = set(getattr(annotation, "__args__", None) or (str,))
            annotation = element_types.pop() if len(element_types) == 1 else str
        if annotation is bool:
            return "choice", ("true", "false"), None
        if annotation in (int, float):
            return "number", (), _range_text(getattr(param, "min", None), getattr(param, "max", None))
        return "text", (), None
    value_type = param.type  # Click's ParamType: duck-typed, so Click itself need not be imported here
    type_name = getattr(value_type, "name", "")
    if getattr(value_type, "choices", None) is not None:
        return "choice", tuple(_choice_text(choice) for choice in value_type.choices), None
    if type_name in ("path", "file", "filename"):
        return "file", (), None
    if type_name == "directory":
        return "dir", (), None
    if type_name == "boolean":
        return "choice", ("true", "false"), None
    if type_name in ("integer", "float", "integer range", "float range"):
        return "number", (), _range_text(getattr(value_type, "min", None), getattr(value_type, "max", None))
    return "text", (), None


def _metavar(param: Any, is_option: bool) -> str:
    if getattr(param, "metavar", None):
        return str(param.metavar)
    if is_option:
        longs = [opt for opt in param.opts if opt.startswith("--")] or list(_sorted_names(param.opts))
        return longs[0].lstrip("-").replace("-", "_").upper()
    return str(param.name).upper()


def _param(param: Any) -> Param:
    is_option = getattr(param, "param_type_name", "") == "option"
    is_flag = is_option and bool(getattr(param, "is_flag", False) or getattr(param, "count", False))
    kind, choices, value_range = ("none", (), None) if is_flag else _value_type(param)
    default = None
    show_default = getattr(param, "show_default", None)
    if isinstance(show_default, str):
        default = show_default
    elif not param.required and show_default is not False and param.default is not None:
        if callable(param.default):
            default = "(dynamic)"
        elif is_flag and param.secondary_opts and isinstance(param.default, bool):
            default = (param.opts if param.default else param.secondary_opts)[0]
        elif not is_flag and param.default not in ((), []):
            default = _default_text(param.default)
    return Param(
        name=str(param.name),
        opts=_sorted_names(param.opts) if is_option else (),
        secondary_opts=_sorted_names(param.secondary_opts) if is_option else (),
        metavar=_metavar(param, is_option),
        help=_clean(getattr(param, "help", None) or ""),
        takes_value=not is_flag,
        nargs=int(param.nargs),
        multiple=bool(getattr(param, "multiple", False)),
        required=bool(param.required),
        kind=kind,
        choices=choices,
        default=default,
        range=value_range,
        panel=getattr(param, "rich_help_panel", None),
    )


def _sorted_names(names: Sequence[str]) -> tuple[str, ...]:
    """Short names first: Click keeps the help option's names in a set, so their order changes from run to run."""
    return tuple(sorted(names, key=lambda name: (name.startswith("--"), name)))


def _clean(text: str) -> str:
    return " ".join(text.split())


def _command(click_command: Any, ctx: Any, path: tuple[str, ...]) -> Command:
    params = [param for param in click_command.get_params(ctx) if not getattr(param, "hidden", False)]
    help_text = (click_command.help or "").split("\f")[0]
    command = Command(
        path=path,
        help=help_text.strip(),
        short_help=click_command.get_short_help_str(limit=10_000),
        epilog=(click_command.epilog or "").strip(),
        options=[_param(param) for param in params if getattr(param, "param_type_name", "") == "option"],
        arguments=[_param(param) for param in params if getattr(param, "param_type_name", "") == "argument"],
    )
    if hasattr(click_command, "list_commands"):
        for name in click_command.list_commands(ctx):
            child = click_command.get_command(ctx, name)
            if child is None or getattr(child, "hidden", False):
                continue
            child_ctx = child.context_class(child, info_name=name, parent=ctx, **(child.context_settings or {}))
            command.commands.append(_command(child, child_ctx, (*path, name)))
    return command


def command_tree() -> Command:
    """The ``igcli`` command and its subcommands, read from the Typer app's Click command."""
    import typer.main

    from .app import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name=PROG, **(root.context_settings or {}))
    return _command(root, ctx, (PROG,))


def _header(comment: str, shell: str) -> str:
    from .. import __version__
    from .completion import INSTALL

    install, note = INSTALL[shell]
    return (
        f"{comment} {shell} completion for {PROG} {__version__} (static: completing never starts Python).\n"
        f"{comment} Generated from the CLI by `python -m igcli.cli.docs`; do not edit.\n"
        f"{comment} Install: {install}\n"
        f"{comment}   ({note}).\n"
    )


def _positional_slots(command: Command) -> list[tuple[int, int | None, Param]]:
    """(first position, number of positions or None for 'all the rest', argument) for each argument."""
    slots, position = [], 0
    for argument in command.arguments:
        if argument.nargs < 0:
            slots.append((position, None, argument))
            break
        slots.append((position, argument.nargs, argument))
        position += argument.nargs
    return slots


# -- bash -----------------------------------------------------------------------------------------------------


def _sq(text: str) -> str:
    """A single-quoted word for bash and zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def _bash_value(param: Param) -> str:
    if param.kind == "choice":
        return f"_{PROG}_words " + " ".join(_sq(choice) for choice in param.choices)
    if param.kind == "dir":
        return f"_{PROG}_dirs"
    if param.kind in ("file", "text"):
        return f"_{PROG}_files"
    return ":"  # numbers: nothing to offer


def _bash(tree: Command) -> str:
    f = f"_{PROG}"
    lines = [
        "# -*- shell-script -*-",
        _header("#", "bash").rstrip("\n"),
        "",
        f"# {f}_spec COMMAND: its subcommands, its options and the options taking values (NAME:COUNT).",
        f"{f}_spec() {{",
        "    case $1 in",
    ]
    for command in tree.walk():
        value_options = " ".join(f"{name}:{option.nargs}" for option in command.value_options for name in option.names)
        lines += [
            f"    {_sq(command.name)})",
            f"        subs={_sq(' '.join(child.path[-1] for child in command.commands))}",
            f"        opts={_sq(' '.join(name for option in command.options for name in option.names))}",
            f"        vopts={_sq(' ' + value_options + ' ')}",
            "        ;;",
        ]
    lines += [
        "    *) subs='' opts='' vopts='' ;;",
        "    esac",
        "}",
        "",
        f"# {f}_value COMMAND OPTION: completes OPTION's value (nothing for numbers).",
        f"{f}_value() {{",
        '    case "$1 $2" in',
    ]
    for command in tree.walk():
        for option in command.value_options:
            patterns = "|".join(_sq(f"{command.name} {name}") for name in option.names)
            lines.append(f"    {patterns}) {_bash_value(option)} ;;")
    lines += [
        "    esac",
        "}",
        "",
        f"# {f}_argument COMMAND N: completes the positional argument at position N (from 0).",
        f"{f}_argument() {{",
        "    case $1 in",
    ]
    for command in tree.walk():
        if not command.arguments:
            continue
        lines.append(f"    {_sq(command.name)})")
        for first, count, argument in _positional_slots(command):
            test = f"$2 >= {first}" if count is None else f"$2 >= {first} && $2 < {first + count}"
            lines.append(f"        if (({test})); then {_bash_value(argument)}; return; fi  # {argument.metavar}")
        lines.append("        ;;")
    lines += [
        "    esac",
        "}",
        "",
        f"{f}_words() {{",
        '    local word; COMPREPLY=()',
        '    for word in "$@"; do [[ $word == "$cur"* ]] && COMPREPLY+=("$prefix$word"); done',
        "}",
        "",
        f"{f}_files() {{",
        '    if [[ -z $prefix ]] && declare -F _filedir >/dev/null; then _filedir; return; fi  # bash-completion',
        "    compopt -o filenames 2>/dev/null",
        '    local name; COMPREPLY=()',
        '    while IFS= read -r name; do COMPREPLY+=("$prefix$name"); done < <(compgen -f -- "$cur")',
        "}",
        "",
        f"{f}_dirs() {{",
        '    if [[ -z $prefix ]] && declare -F _filedir >/dev/null; then _filedir -d; return; fi',
        "    compopt -o filenames 2>/dev/null",
        '    local name; COMPREPLY=()',
        '    while IFS= read -r name; do COMPREPLY+=("$prefix$name"); done < <(compgen -d -- "$cur")',
        "}",
        "",
        f"{f}() {{",
        '    local cur=${COMP_WORDS[COMP_CWORD]} prefix="" cmd=' + PROG + ' option="" word i skip=0 npos=0 dashdash=0',
        "    local subs opts vopts",
        "    COMPREPLY=()",
        f'    {f}_spec "$cmd"',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        "        word=${COMP_WORDS[i]}",
        "        if ((skip > 0)); then",
        "            [[ $word == = ]] && continue  # --option=value, split at '=' (COMP_WORDBREAKS)",
        "            skip=$((skip - 1))",
        "            continue",
        "        fi",
        "        if ((dashdash)) || [[ $word != -?* ]]; then  # '-' alone is an argument (stdin)",
        '            if ((!dashdash)) && [[ " $subs " == *" $word "* ]]; then',
        '                cmd="$cmd $word" npos=0',
        f'                {f}_spec "$cmd"',
        "            else",
        "                npos=$((npos + 1))",
        "            fi",
        "        elif [[ $word == -- ]]; then",
        "            dashdash=1",
        '        elif [[ $vopts == *" $word:"* ]]; then',
        '            option=$word skip=${vopts#* "$word":} skip=${skip%% *}',
        "        fi",
        "    done",
        "    if ((skip > 0)); then",
        "        [[ $cur == = ]] && cur=''",
        f'        {f}_value "$cmd" "$option"',
        "        return",
        "    fi",
        "    if ((!dashdash)) && [[ $cur == -* ]]; then",
        '        if [[ $cur == --*=* && $vopts == *" ${cur%%=*}:"* ]]; then  # "=" not in COMP_WORDBREAKS',
        '            prefix=${cur%%=*}= option=${cur%%=*} cur=${cur#*=}',
        f'            {f}_value "$cmd" "$option"',
        "        else",
        '            COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        "        fi",
        "        return",
        "    fi",
        "    if [[ -n $subs ]] && ((!dashdash)); then",
        '        COMPREPLY=($(compgen -W "$subs" -- "$cur"))',
        "        return",
        "    fi",
        f'    {f}_argument "$cmd" "$npos"',
        "}",
        "",
        f"complete -F {f} {PROG}",
    ]
    return "\n".join(lines) + "\n"


# -- zsh ------------------------------------------------------------------------------------------------------


def _zsh_escape(text: str, specials: str) -> str:
    return "".join("\\" + char if char in specials else char for char in text)


def _zsh_action(param: Param) -> str:
    if param.kind == "choice":
        return "(" + " ".join(_zsh_escape(choice, "\\ ()'\":") for choice in param.choices) + ")"
    if param.kind == "dir":
        return "_files -/"
    if param.kind in ("file", "text"):
        return "_files"
    return " "  # numbers: show the message, offer nothing


def _zsh_function_name(command: Command) -> str:
    return "_" + "_".join(part.replace("-", "_") for part in command.path)


def _zsh_option_specs(command: Command) -> list[str]:
    specs = []
    for option in command.options:
        exclusions = "" if option.multiple else "(" + " ".join(option.names) + ")"
        star = "*" if option.multiple else ""
        description = "[" + _zsh_escape(option.help, "\\[]:") + "]"
        values = ""
        if option.takes_value:
            message = _zsh_escape(option.metavar, "\\:")
            values = f":{message}:{_zsh_action(option)}" * max(option.nargs, 1)
        for name in option.names:
            suffix = ""
            if option.takes_value and name in option.opts:
                suffix = "=" if name.startswith("--") else "+"
            specs.append(_sq(f"{exclusions}{star}{name}{suffix}{description}{values}"))
    return specs


def _zsh_argument_specs(command: Command) -> list[str]:
    specs = []
    for first, count, argument in _positional_slots(command):
        message = _zsh_escape(argument.metavar, "\\:")
        if count is None:
            specs.append(_sq(f"*:{message}:{_zsh_action(argument)}"))
            continue
        for position in range(first + 1, first + count + 1):
            optional = "" if argument.required else ":"
            specs.append(_sq(f"{position}:{optional}{message}:{_zsh_action(argument)}"))
    return specs


def _zsh_function(command: Command) -> list[str]:
    name = _zsh_function_name(command)
    specs = _zsh_option_specs(command)
    if not command.commands:
        specs += _zsh_argument_specs(command)
        lines = [f"{name}() {{", "    _arguments -s -S \\"]
        lines += [f"        {spec} \\" for spec in specs[:-1]] + ([f"        {specs[-1]}"] if specs else [])
        if not specs:
            lines[-1] = "    _arguments -s -S"
        return lines + ["}"]
    lines = [
        f"{name}() {{",
        '    local curcontext="$curcontext" state state_descr line ret=1',
        "    typeset -A opt_args",
        "    _arguments -C -s -S \\",
        *(f"        {spec} \\" for spec in specs),
        "        '1:command:->command' \\",
        "        '*::argument:->argument' && ret=0",
        "    case $state in",
        "    command)",
        "        local -a commands",
        "        commands=(",
        *(f"            {_sq(_zsh_escape(child.path[-1], chr(92) + ':') + ':' + child.short_help)}"
          for child in command.commands),
        "        )",
        f"        _describe -t commands {_sq(command.name + ' command')} commands && ret=0",
        "        ;;",
        "    argument)",
        f'        curcontext="${{curcontext%:*:*}}:{"-".join(command.path)}-$words[1]:"',
        "        case $words[1] in",
        *(f"        {_sq(child.path[-1])}) {_zsh_function_name(child)} && ret=0 ;;" for child in command.commands),
        "        esac",
        "        ;;",
        "    esac",
        "    return ret",
        "}",
    ]
    return lines


def _zsh(tree: Command) -> str:
    lines = [f"#compdef {PROG}", _header("#", "zsh").rstrip("\n")]
    for command in reversed(tree.walk()):
        lines += ["", *_zsh_function(command)]
    root = _zsh_function_name(tree)
    lines += [
        "",
        f'if [[ "$funcstack[1]" == {root} ]]; then',
        f'    {root} "$@"  # autoloaded from $fpath',
        "else",
        f"    compdef {root} {PROG}  # sourced",
        "fi",
    ]
    return "\n".join(lines) + "\n"


# -- fish -----------------------------------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_names(param: Param) -> str:
    parts = []
    for name in param.names:
        if name.startswith("--"):
            parts.append(f"-l {_fish_quote(name[2:])}")
        elif len(name) == 2:
            parts.append(f"-s {_fish_quote(name[1:])}")
        else:
            parts.append(f"-o {_fish_quote(name[1:])}")  # single-dash long option
    return " ".join(parts)


def _fish_words(words: Sequence[str]) -> str:
    """An -a argument: fish splits it into words like a command line."""
    return _fish_quote(" ".join(re.sub(r"([^\w./:,=+@%-])", r"\\\1", word) for word in words))


def _fish_value(param: Param) -> str:
    if param.kind == "choice":
        return f"-x -a {_fish_words(param.choices)}"
    if param.kind == "dir":
        return "-x -a '(__fish_complete_directories (commandline -ct))'"
    if param.kind in ("file", "text"):
        return "-r -F"
    return "-x"  # numbers: nothing to offer


def _fish(tree: Command) -> str:
    f = f"__{PROG}"
    lines = [
        _header("#", "fish").rstrip("\n"),
        "",
        f"# {f}_subcommands COMMAND: its subcommands.",
        f"function {f}_subcommands",
        '    switch "$argv"',
    ]
    for command in tree.walk():
        if command.commands:
            lines += [f"        case {_fish_quote(command.name)}",
                      "            printf '%s\\n' " + " ".join(_fish_quote(c.path[-1]) for c in command.commands)]
    lines += [
        "    end",
        "end",
        "",
        f"# {f}_arity COMMAND OPTION: how many values OPTION takes (0 for flags and unknown words).",
        f"function {f}_arity",
        '    switch "$argv"',
    ]
    by_arity: dict[int, list[str]] = {}
    for command in tree.walk():
        for option in command.value_options:
            by_arity.setdefault(option.nargs, []).extend(f"{command.name} {name}" for name in option.names)
    for arity, words in sorted(by_arity.items()):
        lines += [f"        case {' '.join(_fish_quote(word) for word in words)}", f"            echo {arity}"]
    lines += [
        "        case '*'",
        "            echo 0",
        "    end",
        "end",
        "",
        "# The command the cursor is in (igcli, igcli attribute, ...), how many arguments it already has and how many",
        "# values the option before the cursor still takes.",
        f"function {f}_state",
        "    set -l words (commandline -opc)",
        "    set -e words[1]",
        f"    set -l cmd {PROG}",
        "    set -l skip 0",
        "    set -l npos 0",
        "    set -l dashdash 0",
        "    for word in $words",
        "        if test $skip -gt 0",
        "            set skip (math $skip - 1)",
        "        else if test $dashdash -eq 0; and string match -q -- '-?*' $word",
        "            if test $word = --",
        "                set dashdash 1",
        "            else",
        f"                set skip ({f}_arity $cmd $word)",
        "            end",
        f"        else if test $dashdash -eq 0; and contains -- $word ({f}_subcommands $cmd)",
        '            set cmd "$cmd $word"',
        "            set npos 0",
        "        else",
        "            set npos (math $npos + 1)",
        "        end",
        "    end",
        "    printf '%s\\n' $cmd $npos $skip",
        "end",
        "",
        "# True in COMMAND (its words as arguments).",
        f"function {f}_in",
        f"    set -l state ({f}_state)",
        '    test "$state[1]" = "$argv"',
        "end",
        "",
        "# True at argument positions FIRST..LAST (from 0; LAST -1: no end) of COMMAND: FIRST LAST COMMAND...",
        f"function {f}_argument",
        f"    set -l state ({f}_state)",
        '    test "$state[1]" = "$argv[3..-1]"; and test $state[3] -eq 0; and test $state[2] -ge $argv[1]',
        "    and begin; test $argv[2] -lt 0; or test $state[2] -le $argv[2]; end",
        "end",
        "",
        f"complete -c {PROG} -f  # no file names unless an option or argument takes them",
    ]
    for command in tree.walk():
        condition = f"-n {_fish_quote(f'{f}_in ' + command.name)}"
        lines += ["", f"# {command.name}"]
        for child in command.commands:
            lines.append(f"complete -c {PROG} {condition} -a {_fish_quote(child.path[-1])} "
                         f"-d {_fish_quote(child.short_help)}")
        for option in command.options:
            value = f" {_fish_value(option)}" if option.takes_value else ""
            lines.append(f"complete -c {PROG} {condition} {_fish_names(option)}{value} -d {_fish_quote(option.help)}")
        for first, count, argument in _positional_slots(command):
            last = -1 if count is None else first + count - 1
            argument_condition = f"-n {_fish_quote(f'{f}_argument {first} {last} ' + command.name)}"
            if argument.kind == "choice":
                value = f"-a {_fish_words(argument.choices)} -d {_fish_quote(argument.help or argument.metavar)}"
            elif argument.kind == "dir":
                value = "-a '(__fish_complete_directories (commandline -ct))'"
            elif argument.kind in ("file", "text"):
                value = "-F"
            else:
                continue
            lines.append(f"complete -c {PROG} {argument_condition} {value}  # {argument.metavar}")
    return "\n".join(lines) + "\n"


def completion_script(shell: str) -> str:
    """The static completion script for ``shell`` (bash, zsh or fish)."""
    generators: dict[str, Callable[[Command], str]] = {"bash": _bash, "zsh": _zsh, "fish": _fish}
    if shell not in generators:
        raise ValueError(f"unknown shell {shell!r}: expected one of {', '.join(SHELLS)}")
    return generators[shell](command_tree())


# -- man page -------------------------------------------------------------------------------------------------

_OPTION_WORD = re.compile(r"(?<![\w-])--?[A-Za-z0-9][\w-]*|(?<![\w-])-(?![\w-])")


def _roff(text: str, code: bool = False) -> str:
    """Text for a roff text line: backslashes, option dashes (all dashes in code) and non-ASCII escaped."""
    text = text.replace("\\", "\\e")
    if code:
        text = text.replace("-", "\\-")
    else:
        text = _OPTION_WORD.sub(lambda match: match.group(0).replace("-", "\\-"), text)
    text = "".join(char if ord(char) < 128 else f"\\[u{ord(char):04X}]" for char in text)
    if text[:1] in (".", "'"):
        text = "\\&" + text
    return text


def _roff_arg(text: str) -> str:
    """A quoted macro argument."""
    return '"' + _roff(text).replace('"', "\\(dq") + '"'


def _paragraphs(text: str) -> list[str]:
    """roff lines for Click help text: blank-line separated paragraphs; ``\\b`` ones keep their lines."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if not paragraph.strip():
            continue
        lines.append(".PP")
        if paragraph.lstrip().startswith("\b"):
            lines += [".nf", *(_roff(line) for line in paragraph.lstrip()[1:].strip("\n").splitlines()), ".fi"]
        else:
            lines.append(_roff(_clean(paragraph)))
    return lines


def _option_tag(option: Param) -> str:
    tag = ", ".join(f"\\fB{_roff(name, code=True)}\\fR" for name in option.opts)
    if option.secondary_opts:
        tag += " / " + ", ".join(f"\\fB{_roff(name, code=True)}\\fR" for name in option.secondary_opts)
    if option.takes_value:
        tag += f" \\fI{_roff(option.metavar)}\\fR" * max(option.nargs, 1)
    return tag


def _argument_text(argument: Param) -> str:
    text = f"\\fI{_roff(argument.metavar)}\\fR"
    if argument.nargs < 0:
        text += "..."
    return text if argument.required else f"[{text}]"


def _usage(command: Command) -> str:
    parts = [f"\\fB{_roff(command.name, code=True)}\\fR"]
    for option in command.options:
        if option.required:
            name = option.opts[0]
            parts.append(f"\\fB{_roff(name, code=True)}\\fR \\fI{_roff(option.metavar)}\\fR")
    if any(not option.required for option in command.options):
        parts.append("[\\fIOPTIONS\\fR]")
    if command.commands:
        parts.append("\\fICOMMAND\\fR [\\fIARGS\\fR]...")
    parts += [_argument_text(argument) for argument in command.arguments]
    return " ".join(parts)


def _param_details(param: Param) -> list[str]:
    details = []
    if param.kind == "choice" and param.takes_value:
        details.append("One of: " + ", ".join(f"\\fB{_roff(choice, code=True)}\\fR" for choice in param.choices) + ".")
    if param.range:
        details.append(f"Range: {_roff(param.range)}.")
    if param.required:
        details.append("Required.")
    elif param.default is not None:
        details.append(f"Default: \\fB{_roff(param.default, code=True)}\\fR.")
    if param.multiple:
        details.append("May be given more than once.")
    return details


def _param_entry(tag: str, param: Param) -> list[str]:
    lines = [".TP", tag]
    if param.help:
        lines.append(_roff(param.help))
    details = _param_details(param)
    if details:
        if param.help:
            lines.append(".br")
        lines += details
    return lines


def _options_section(command: Command, heading: Callable[[str], list[str]]) -> list[str]:
    lines = []
    if command.arguments:
        lines += heading("Arguments")
        for argument in command.arguments:
            lines += _param_entry(_argument_text(argument), argument)
    panels: dict[str, list[Param]] = {"Options": []}  # the default panel first, then as Typer's help orders them
    for option in command.options:
        panels.setdefault(option.panel or "Options", []).append(option)
    for panel, options in panels.items():
        if not options:
            continue
        lines += heading(panel if panel == "Options" else f"{panel} options")
        for option in options:
            lines += _param_entry(_option_tag(option), option)
    return lines


def man_page() -> str:
    """The roff source of igcli(1): every command, argument and option, exit status, environment, examples."""
    from .. import __version__
    from ..errors import EXIT_CODES
    from .completion import INSTALL

    tree = command_tree()
    commands = tree.walk()[1:]
    lines = [
        f'.\\" {PROG}(1). Generated from the CLI by `python -m igcli.cli.docs`; do not edit.',
        f'.TH {PROG.upper()} 1 "version {__version__}" "{PROG} {__version__}" "User Commands"',
        ".nh",  # no hyphenation: option names, paths and variables are copied from here
        ".ad l",
        ".SH NAME",
        f"{PROG} \\- {_roff(tree.short_help.rstrip('.'))}",
        ".SH SYNOPSIS",
        ".nf",
        *(_usage(command) for command in [tree, *commands]),
        ".fi",
        ".SH DESCRIPTION",
        *_paragraphs(tree.help)[1:],
        ".PP",
        "Commands:",
    ]
    for command in commands:
        lines += [".TP", f"\\fB{_roff(command.name, code=True)}\\fR", _roff(command.short_help)]
    lines += [".SH OPTIONS", *_options_section(tree, lambda title: [])]
    lines += [".SH COMMANDS"]
    for command in commands:
        lines += [f".SS {_roff_arg(command.name)}", ".PP", _usage(command), *_paragraphs(command.help)]
        lines += _options_section(command, lambda title: [".PP", f".B {_roff_arg(title)}"])
        if command.epilog:
            lines += _paragraphs(command.epilog)
    lines += [".SH EXIT STATUS"]
    for code, meaning in EXIT_CODES.items():
        lines += [".TP", f".B {code}", _roff(meaning[:1].upper() + meaning[1:] + ".")]
    lines += [".SH ENVIRONMENT"]
    for name, meaning in ENVIRONMENT.items():
        lines += [".TP", f".B {name}", _roff(meaning)]
    lines += [".SH FILES"]
    for shell in SHELLS:
        install, note = INSTALL[shell]
        target = install.split(" > ", 1)[1]
        lines += [".TP", f"\\fI{_roff(target, code=True)}\\fR",
                  f"The {shell} completion script ({_roff(SCRIPT_FILES[shell], code=True)} in igcli's source tree), "
                  f"{_roff(note)}. Install it with:",
                  ".IP", ".nf", _roff(install, code=True), ".fi"]
    lines += [".SH EXAMPLES"]
    for text, example in EXAMPLES:
        lines += [".PP", _roff(text), ".PP", ".RS 4", ".nf", _roff(example, code=True), ".fi", ".RE"]
    lines += [".SH SEE ALSO", "\\fBtorchrun\\fR(1), \\fBsbatch\\fR(1)"]
    return "\n".join(lines) + "\n"


# -- files ----------------------------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    """Every generated file: path relative to the repository root -> content."""
    files = {SCRIPT_FILES[shell]: completion_script(shell) for shell in SHELLS}
    files[MAN_FILE] = man_page()
    return files


def write_all(root: Path) -> list[Path]:
    """Write the completion scripts and the man page under ``root``; return the paths written."""
    written = []
    for relative, text in generate().items():
        path = Path(root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m igcli.cli.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: the current folder)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = [relative for relative, text in generate().items()
                 if not (args.root / relative).is_file() or (args.root / relative).read_text(encoding="utf-8") != text]
        for relative in stale:
            print(f"{relative}: out of date; run python -m igcli.cli.docs", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.root):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
