"""``igcli render``: heatmap and overlay PNGs from shards, to look at instead of read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common as c
from .app import app


@app.command("render")
@c.handle_errors
def render_command(
    source: Annotated[Path, typer.Argument(help="An igcli output folder, its index.h5 or a shard file.",
                                           show_default=False)],
    png_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNG files.")],
    percentile: Annotated[float, typer.Option("--percentile", min=0.0, max=100.0, help="|attribution| at this "
                          "percentile gets full colour; larger values are clipped.")] = 99.0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Draw only the first N rows.")] = None,
    root: Annotated[Optional[Path], typer.Option("--root", help="The input images moved: the folder that now "
                    "holds what the folder given to igcli attribute held; images are looked up by their path "
                    "below it.", show_default=False)] = None,
    quiet: c.QuietPlainOption = False,
) -> None:
    """Draw each map as the crop the model saw | signed heatmap | overlay (red: for the class, blue: against)."""
    from ..render import render_output

    from ..output import missing_image_hint

    def missing(path: str, error: Exception) -> None:
        hint = f"; {missing_image_hint(root)}" if isinstance(error, FileNotFoundError) else ""
        typer.echo(f"igcli: warning: {path}: cannot read the input image ({error}){hint}; drawing the heatmap "
                   "alone", err=True)

    written = render_output(source, png_dir, percentile=percentile, limit=limit, on_missing_image=missing,
                            root=root)
    if not quiet:
        typer.echo(f"wrote {len(written)} PNG files to {png_dir}", err=True)
