"""``igcli index``: rebuild OUT/index.h5 over the complete shards (e.g. after the parts of an array job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import common as c
from .app import app


@app.command("index")
@c.handle_errors
def index_command(
    out: Annotated[Path, typer.Argument(help="An igcli output folder.", show_default=False)],
    quiet: c.QuietPlainOption = False,
) -> None:
    """Rebuild OUT/index.h5 over every complete shard in OUT (each part of a job also does this when it ends)."""
    from ..output import Output
    from ..store import build_index

    index = build_index(out)
    if not quiet:
        output = Output(out)
        typer.echo(f"{index}: {len(output)} rows in {len(output.shards)} shards, {len(output.skipped)} skipped",
                   err=True)
