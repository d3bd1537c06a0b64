"""igcli(1), the man page, in roff: built from the same Click command tree as the completions (:mod:`.docs`).

Every command, argument and option with its help, metavar, default, choices and range; the exit codes
(:data:`igcli.errors.EXIT_CODES`), the environment variables (:mod:`igcli.environment`) and a few examples.
"""

from __future__ import annotations

import re
from typing import Callable

from .docs import PROG, SCRIPT_FILES, SHELLS, Command, Param, clean, command_tree

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
            lines.append(_roff(clean(paragraph)))
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
    if param.choices and param.takes_value:
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
    from ..environment import ENVIRONMENT
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
    for variable in ENVIRONMENT:
        lines += [".TP", f".B {_roff(variable.name)}", _roff(variable.meaning)]
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
