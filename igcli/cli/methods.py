"""``igcli methods``: the methods igcli knows (built-in and plugins) and the options each takes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from . import common as c
from .app import app


@app.command("methods", epilog="Examples: igcli methods;  igcli methods 'blur*';  igcli methods --json | jq '.methods[].name'")
@c.handle_errors
def methods_command(
    pattern: Annotated[str, typer.Argument(help="Only the methods whose name matches this glob (any case).",
                                           metavar="PATTERN")] = "*",
    json_output: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the attribution methods (built-in and from installed plugins) with their options and defaults.

    Each option is given to igcli attribute and calibrate as --option NAME=VALUE (built-in ones also by their
    own flags, e.g. --max-sigma).
    """
    from ..methods.listing import list_methods

    records = list_methods(pattern)
    if not records:  # the same refusal with --json: a script learns of a mistyped pattern from the exit code
        raise c.fail(f"no method matches {pattern!r}; see igcli methods", 2)
    if json_output:
        c.print_json({"methods": records})
        return
    lines = []
    for record in records:
        lines.extend(_describe(record))
    c.data_stream().write("\n".join(lines) + "\n")
    for record in records:
        if "error" in record:
            typer.echo(f"igcli: warning: {record['error']}", err=True)


def _describe(record: dict[str, Any]) -> list[str]:
    """A method as a few lines of text: name, title and what it does; its reference; its options."""
    if "error" in record:
        return [f"{record['name']}  (plugin that cannot be loaded; see the warning below)"]
    head = f"{record['name']}  {record['title']}: {record['summary']}"
    if record["origin"] == "alias":
        return [head]
    traits = [f"path {record['path']}" if record["path"] else "no path (no --steps, --schedule, --rule idgi)"]
    traits += ["takes --baseline"] if record["takes_baseline"] else []
    traits += ["calibratable"] if record["calibratable"] and record["path"] else []
    lines = [head, f"    {record['reference']}; {', '.join(traits)}" + ("" if record["origin"] == "built-in"
                                                                            else "; from a plugin")]
    for option in record["options"]:
        choices = f" ({'|'.join(map(str, option['choices']))})" if option["choices"] else ""
        lines.append(f"    {option['name']}={option['default']}  {option['kind']}{choices}: {option['help']}")
    return lines
