"""The Typer application: subcommands are registered from their own modules; :func:`main` runs them.

:func:`cli` is the Click command igcli runs (``--help``, completion and the man page all read it): Typer's command
for :data:`app` with help text escaped for Rich and readable metavars (:mod:`.helptext`).
"""

from __future__ import annotations

import os
import re
import sys
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
    from . import attribute, calibrate, completion, evaluate, index, methods, metrics, render, split  # noqa: F401  (each adds its command to app)


_register()


PROG = "igcli"
# The completion scripts set this (to complete_bash, complete_zsh or complete_fish) when they call igcli.
COMPLETE_VAR = "_IGCLI_COMPLETE"


def cli() -> Any:
    """The ``igcli`` Click command, ready to run: help escaped for Rich markup, igcli's metavars."""
    from .helptext import prepare

    return prepare(typer.main.get_command(app))


def _one_line_help() -> None:
    """Typer renders a candidate's help through Rich at the terminal's width, so a long help (``--method``'s)
    comes out as several lines, and fish and zsh read each line as another candidate: keep it on one line."""
    import typer._completion_classes as classes

    sanitize = classes._sanitize_help_text
    classes._sanitize_help_text = lambda text: " ".join(sanitize(text).split())


def _start_completion() -> None:
    """Register Typer's completers (it does so only with add_completion) and check the words the completion
    script passes: malformed ones (``COMP_CWORD=abc``, no ``COMP_WORDS``: igcli called by hand) give no
    candidates, one line on stderr and exit 1, not a traceback."""
    from typer.completion import completion_init, shell_completion  # Typer's Click (it may bundle its own)

    completion_init()
    _one_line_help()
    action, _, shell = os.environ[COMPLETE_VAR].partition("_")
    if shell in ("complete", "source"):  # Click's order (bash_complete): shell first
        action, shell = shell, action
    if action not in ("complete", "source") or shell_completion.get_completion_class(shell) is None:
        sys.stderr.write(f"igcli: error: {COMPLETE_VAR}={os.environ[COMPLETE_VAR]} is not a completion request "
                         "(complete_bash, complete_zsh, complete_fish); it is set by the script `igcli completions "
                         "SHELL` prints\n")
        raise SystemExit(1)
    completer = shell_completion.get_completion_class(shell) if action == "complete" else None
    try:
        if completer is not None:
            completer(None, {}, PROG, COMPLETE_VAR).get_completion_args()
    except (KeyError, ValueError, IndexError) as error:
        names = "COMP_WORDS and COMP_CWORD" if shell == "bash" else "_TYPER_COMPLETE_ARGS"
        problem = f"{error.args[0]} is not set" if isinstance(error, KeyError) else f"{names} are malformed ({error})"
        sys.stderr.write(f"igcli: error: {COMPLETE_VAR} asks for {shell} completions, but {problem}; these "
                         f"variables are for the script `igcli completions {shell}` prints\n")
        raise SystemExit(1) from None


def main() -> None:
    """Run igcli on ``sys.argv``. A usage error (unknown option, bad choice or number, missing argument) is one
    line on stderr, ``igcli: error: MESSAGE; see igcli CMD --help``, and exit 2 like every bad option, instead of
    Click's usage block and Rich error box; ``igcli`` alone prints the help, as ``--help`` does, and exits 0."""
    if os.environ.get(COMPLETE_VAR):
        _start_completion()
        # Click orders the instruction shell first (bash_complete), Typer action first (complete_bash): take both.
        os.environ[COMPLETE_VAR] = re.sub(r"^(bash|zsh|fish)_(complete|source)$", r"\2_\1", os.environ[COMPLETE_VAR])
    # Typer 0.2x vendors its own copy of Click (typer._click): its exception classes are the ones raised.
    try:
        from typer._click import exceptions as click_errors
    except ImportError:  # a Typer that uses the click package
        from click import exceptions as click_errors

    command = cli()
    _name_failing_command(command, click_errors.UsageError)
    try:
        # Not standalone: Click raises its errors here instead of printing them; Exit (help, --version,
        # typer.Exit from a command) comes back as the exit code.
        result = command.main(prog_name=PROG, complete_var=COMPLETE_VAR, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as error:  # igcli with no command: the help, as asked for by no args
        print(error.format_message())
        sys.exit(0)
    except click_errors.UsageError as error:
        sys.exit(usage_error(error))
    except click_errors.ClickException as error:
        print(f"igcli: error: {one_line(error.format_message())}", file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Abort:
        print("igcli: aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def one_line(text: str) -> str:
    """``text`` on one line, without a closing full stop (a hint follows it)."""
    return " ".join(str(text).split()).rstrip(".")


def _name_failing_command(command: Any, usage_error_type: type) -> None:
    """Make every usage error raised while ``command`` or a subcommand parses its arguments carry that command's
    context: Click's parser raises some (``--steps`` with no value) without one, and the hint would then name
    ``igcli --help`` instead of ``igcli attribute --help``."""
    parse = command.parse_args

    def parse_args(ctx: Any, args: list[str]) -> list[str]:
        try:
            return parse(ctx, args)
        except usage_error_type as error:
            if getattr(error, "ctx", None) is None:
                error.ctx = ctx
            raise

    command.parse_args = parse_args
    for subcommand in getattr(command, "commands", {}).values():
        _name_failing_command(subcommand, usage_error_type)


def usage_error(error: Any) -> int:
    """Print a Click usage error as one line naming the command whose help to read; return 2."""
    context = getattr(error, "ctx", None)
    where = context.command_path if context is not None else PROG
    message = one_line(error.format_message()).replace(": Value error, ", ": ")
    print(f"igcli: error: {message}{_closest_choice(error, message)}; see {where} --help", file=sys.stderr)
    return 2


def _closest_choice(error: Any, message: str) -> str:
    """``; did you mean X?`` for a value that is not among an option's choices but close to one."""
    import difflib

    found = re.search(r"'([^']*)' is not one of (.*)$", message)  # the choices as Click lists them: 'a', 'b'
    if found is None:
        return ""
    choices = re.findall(r"'([^']*)'", found.group(2))
    close = difflib.get_close_matches(found.group(1).strip().lower(), choices, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""
