"""``igcli metrics``: the metrics ``igcli evaluate`` knows, what each needs and reports, and its options."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from . import common as c
from .app import app


@app.command("metrics", epilog="Examples: igcli metrics;  igcli metrics 'sic*';  igcli metrics --json | jq '.metrics[].name'")
@c.handle_errors
def metrics_command(
    pattern: Annotated[str, typer.Argument(help="Only the metrics whose name matches this glob.",
                                           metavar="PATTERN")] = "*",
    json_output: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the metrics of igcli evaluate: family, what each needs, the values it reports and which way is
    better, its reference, and its options (given as -O METRIC.NAME=VALUE)."""
    from ..metrics.catalog import list_metrics

    records = list_metrics(pattern)
    if not records:
        raise c.fail(f"no metric matches {pattern!r}; see igcli metrics", 2)
    if json_output:
        c.print_json({"metrics": records})
        return
    c.data_stream().write("\n".join(line for record in records for line in _describe(record)) + "\n")


def _describe(record: dict[str, Any]) -> list[str]:
    lines = [f"{record['name']}  ({record['family']}) {record['summary']}",
             f"    {record['reference']}; needs {', '.join(record['needs']) or 'only the maps'}"]
    for value in record["values"]:
        lines.append(f"    value {value['name']} ({'higher' if value['higher_is_better'] else 'lower'} is better): "
                     f"{value['help']}")
    for option in record["options"]:
        choices = f" ({'|'.join(map(str, option['choices']))})" if option["choices"] else ""
        lines.append(f"    -O {record['name']}.{option['name']}={option['default']}  {option['kind']}{choices}: "
                     f"{option['help']}")
    return lines
