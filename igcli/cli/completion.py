"""``igcli completions SHELL``: print the completion script for bash, zsh or fish (Typer's, see docs.py)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from . import common as c
from .app import app


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


# How to install each script: (command line, what else to do). Also in the scripts' headers and the man page.
INSTALL = {
    "bash": (
        "igcli completions bash > ~/.local/share/bash-completion/completions/igcli",
        "loaded on first use by the bash-completion package; without it, source the file from ~/.bashrc",
    ),
    "zsh": (
        "igcli completions zsh > ~/.zfunc/_igcli",
        "found through fpath=(~/.zfunc $fpath), set before compinit in ~/.zshrc",
    ),
    "fish": (
        "igcli completions fish > ~/.config/fish/completions/igcli.fish",
        "loaded on first use",
    ),
}

_HELP = "\n\n".join(
    [
        "Print the completion script for SHELL on stdout. On TAB it asks igcli for the subcommands, options and "
        "choices that fit (file names where a file is expected). Install it once (create the folder first):",
        *(f"{shell}: {install} ({note})." for shell, (install, note) in INSTALL.items()),
    ]
)


@app.command("completions", help=_HELP)
@c.handle_errors
def completions_command(
    shell: Annotated[Shell, typer.Argument(help="The shell to complete in.", show_default=False)],
) -> None:
    from .docs import completion_script  # generated from this very command tree, on demand

    typer.echo(completion_script(shell.value), nl=False, file=c.data_stream())
