"""The Typer application: subcommands are registered from their own modules; :func:`main` runs them.

:func:`cli` is the Click command igcli runs (``--help``, completion and the man page all read it): Typer's command
for :data:`app` with help text escaped for Rich and readable metavars (:mod:`.helptext`).
"""

from __future__ import annotations

import os
import re
from typing import Any

import typer

from .. import __version__
from ..errors import EXIT_CODES

EXIT_CODE_TEXT = "\n".join(f"  {code}: {meaning}" for code, meaning in EXIT_CODES.items())

app = typer.Typer(
    name="igcli",
    help="Integrated-Gradients-family saliency maps (IG, Blur IG, Guided IG; Riemann and IDGI rules) for image "
    "classifiers, in batch, from a laptop to a GPU cluster.",
    epilog="Exit codes: " + "; ".join(f"{code} {meaning.split(' (')[0]}" for code, meaning in EXIT_CODES.items()),
    no_args_is_help=True,
    add_completion=False,  # no --install-completion: igcli completions SHELL prints the script (completion.py)
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"igcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


def _register() -> None:
    from . import attribute, calibrate, completion, evaluate, index, render, split  # noqa: F401  (each adds its command to app)


_register()


PROG = "igcli"
# The completion scripts set this (to complete_bash, complete_zsh or complete_fish) when they call igcli.
COMPLETE_VAR = "_IGCLI_COMPLETE"


def cli() -> Any:
    """The ``igcli`` Click command, ready to run: help escaped for Rich markup, igcli's metavars."""
    from .helptext import prepare

    return prepare(typer.main.get_command(app))


def main() -> None:
    if os.environ.get(COMPLETE_VAR):
        from typer.completion import completion_init

        completion_init()  # Typer registers its bash, zsh and fish completers only with add_completion
        # Click orders the instruction shell first (bash_complete), Typer action first (complete_bash): take both.
        os.environ[COMPLETE_VAR] = re.sub(r"^(bash|zsh|fish)_(complete|source)$", r"\2_\1", os.environ[COMPLETE_VAR])
    cli().main(prog_name=PROG, complete_var=COMPLETE_VAR)
