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
    source: Annotated[Path, typer.Argument(metavar="OUT", help="An igcli output folder, its index.h5 or a shard file.",
                                           show_default=False)],
    png_dir: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="DIR", help="Folder for one PNG per row.",
                       show_default=False)] = None,
    percentile: Annotated[float, typer.Option("--percentile", min=0.0, max=100.0, help="|attribution| at this "
                          "percentile gets full colour; larger values are clipped.")] = 99.0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Draw only the first N rows.")] = None,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", metavar="FILE", help="Draw the rows as one contact "
                     "sheet, FILE.png (or .jpg, .webp), with or without -o: per row its title, image | heatmap | "
                     "overlay and colour bar (at most 100 rows; see --limit). An existing FILE is replaced; an "
                     "input image never.", show_default=False)] = None,
    bare: Annotated[bool, typer.Option("--bare", help="Per-row PNGs without title, colour bar or enlargement: "
                    "the panels at the model's resolution, for composing figures yourself.")] = False,
    root: Annotated[Optional[Path], typer.Option("--root", metavar="DIR", help="The input images moved: the folder "
                    "that now holds what the folder given to igcli attribute held; images are looked up by their "
                    "path below it.", show_default=False)] = None,
    quiet: c.QuietPlainOption = False,
) -> None:
    """Draw each map as the crop the model saw | signed heatmap | overlay (red: for the class, blue: against),
    titled with file, class, score and method, and a colour bar of the clip value."""
    from ..output import missing_image_hint
    from ..render import render_output
    from ..text import shown_path

    warned: set[str] = set()

    def missing(path: str, error: Exception) -> None:
        if path in warned:  # said once per image, not once per class of a topK run
            return
        warned.add(path)
        hint = f"; {missing_image_hint(root)}" if isinstance(error, FileNotFoundError) else ""
        if isinstance(error, OSError) and error.strerror:
            looked = f" {shown_path(error.filename)}" if error.filename and error.filename != path else ""
            reason = f"{looked} ({error.strerror})"
        else:
            reason = f" ({shown_path(str(error))})"
        warn(f"{shown_path(path)}: cannot read the input image{reason}{hint}; drawing the map without it")

    def warn(line: str) -> None:
        typer.echo(f"igcli: warning: {line}", err=True)

    if png_dir is None and sheet is None:
        raise c.fail("render needs -o DIR (one PNG per row), --sheet FILE.png (one picture), or both", 2)
    written = render_output(source, png_dir, percentile=percentile, limit=limit, on_missing_image=missing,
                            bare=bare, sheet=sheet, root=root, on_warning=warn)
    if not written:  # only when there are no rows: there is at least one to draw otherwise
        warn(f"{shown_path(source)}: no rows to draw (every input of the run was skipped); nothing written")
        return
    if not quiet and png_dir is not None:
        typer.echo(f"wrote {len(written) - (sheet is not None)} PNG files to {shown_path(png_dir)}", err=True)
    if not quiet and sheet is not None:
        typer.echo(f"wrote the sheet {shown_path(sheet)}", err=True)
