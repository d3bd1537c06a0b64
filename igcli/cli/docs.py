"""The shell completion scripts and the man page, generated from the CLI's Click command tree.

``python -m igcli.cli.docs [--root DIR] [--check]`` writes (or checks) ``completions/igcli.bash``,
``completions/_igcli`` (zsh), ``completions/igcli.fish``, ``man/igcli.1`` and the table of metrics in
``README.md`` (from :mod:`igcli.metrics.catalog`); ``tests/test_cli_docs.py`` fails when the committed files are
out of date.

The man page is built in :mod:`igcli.cli.manpage`. The completion scripts are Typer's: on TAB they run ``igcli`` with ``_IGCLI_COMPLETE`` set, and Click's parser
answers from the very command tree that runs, so they cannot drift from the CLI. The man page reads the same tree
(names, help, metavars, defaults, choices and ranges); only the install paths (``completion.py``), the environment
variables (:mod:`igcli.environment`) and the examples are written elsewhere. No torch here, at module level or
anywhere.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

from . import helptext

PROG = "igcli"
SHELLS = ("bash", "zsh", "fish")
SCRIPT_FILES = {"bash": "completions/igcli.bash", "zsh": "completions/_igcli", "fish": "completions/igcli.fish"}
MAN_FILE = "man/igcli.1"

# -- the command tree -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One option or argument, as the man page shows it."""

    name: str
    opts: tuple[str, ...]  # option names (empty for an argument)
    secondary_opts: tuple[str, ...]  # the off switch of an on/off flag (--no-x)
    metavar: str  # as in --help: N, FILE, [vg|ig], IMAGES... (empty for flags)
    help: str
    takes_value: bool
    nargs: int  # values per occurrence (-1: any number, arguments only)
    multiple: bool
    required: bool
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

    def walk(self) -> list[Command]:
        return [self, *(command for child in self.commands for command in child.walk())]


def _default_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_default_text(item) for item in value)
    return str(value.value) if isinstance(value, Enum) else str(value)


def _range_text(low: Any, high: Any) -> str | None:
    if low is not None and high is not None:
        return f"{low} <= x <= {high}"
    if low is not None:
        return f"x >= {low}"
    if high is not None:
        return f"x <= {high}"
    return None


def _param(param: Any) -> Param:
    is_option = getattr(param, "param_type_name", "") == "option"
    is_flag = helptext.is_flag(param)
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
        metavar=(helptext.metavar(param) or "") if is_option else helptext.argument_name(param),
        help=clean(getattr(param, "help", None) or ""),
        takes_value=not is_flag,
        nargs=int(param.nargs),
        multiple=bool(getattr(param, "multiple", False)),
        required=bool(param.required),
        choices=helptext.choices(param) or (),
        default=default,
        range=None if is_flag else _range_text(getattr(param, "min", None), getattr(param, "max", None)),
        panel=getattr(param, "rich_help_panel", None),
    )


def _sorted_names(names: Sequence[str]) -> tuple[str, ...]:
    """Short names first: Click keeps the help option's names in a set, so their order changes from run to run."""
    return tuple(sorted(names, key=lambda name: (name.startswith("--"), name)))


def clean(text: str) -> str:
    """Whitespace runs (newlines from wrapped help) as single spaces."""
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
    """The ``igcli`` command and its subcommands, with help texts as written (not escaped for Rich)."""
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
        f"{comment} {shell} completion for {PROG} {__version__}: on TAB it asks igcli (with _IGCLI_COMPLETE set).\n"
        f"{comment} Generated by `python -m igcli.cli.docs` (the same as `igcli completions {shell}`); do not edit.\n"
        f"{comment} Install: {install}\n"
        f"{comment}   ({note}).\n"
    )


# -- completion scripts ---------------------------------------------------------------------------------------


def completion_script(shell: str) -> str:
    """The completion script for ``shell`` (bash, zsh or fish): Typer's own, which asks ``igcli`` itself (with
    ``_IGCLI_COMPLETE`` set) for the candidates, so they always match the installed CLI."""
    from typer._completion_shared import get_completion_script

    from .app import COMPLETE_VAR

    if shell not in SHELLS:
        raise ValueError(f"unknown shell {shell!r}: expected one of {', '.join(SHELLS)}")
    script = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)
    if shell == "zsh":
        # Typer's script starts with a blank line, but compinit only autoloads files whose first line is
        # #compdef; and autoloaded, the file is _igcli's body, which must complete as well as register.
        script = script.replace(f"#compdef {PROG}\n", "").strip()
        return (f"#compdef {PROG}\n{_header('#', shell)}\n{script}\n"
                f'if [[ "$funcstack[1]" == _{PROG} ]]; then _{PROG}_completion "$@"; fi  # autoloaded from $fpath\n')
    return f"{_header('#', shell)}\n{script}\n"


# -- files ----------------------------------------------------------------------------------------------------


def generate() -> dict[str, str]:
    """Every generated file: path relative to the repository root -> content."""
    files = {SCRIPT_FILES[shell]: completion_script(shell) for shell in SHELLS}
    from .manpage import man_page  # it imports this module

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
    files = generate()
    readme = args.root / "README.md"
    if readme.is_file():  # its table of metrics, from the registry (that import loads torch: here only)
        from ..metrics.catalog import readme_with_metrics

        files["README.md"] = readme_with_metrics(readme.read_text(encoding="utf-8"))
    if args.check:
        stale = [relative for relative, text in files.items()
                 if not (args.root / relative).is_file() or (args.root / relative).read_text(encoding="utf-8") != text]
        for relative in stale:
            print(f"{relative}: out of date; run python -m igcli.cli.docs", file=sys.stderr)
        return 1 if stale else 0
    for relative, text in files.items():
        path = args.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
