"""The Typer application: subcommands are registered from their own modules."""

from __future__ import annotations

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
    add_completion=False,  # static scripts ship in completions/ (igcli completions SHELL prints them)
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


def main() -> None:
    app(prog_name="igcli")
