"""Attribution maps as pictures: signed diverging heatmaps and overlays, written as PNG.

Positive attribution is red, negative blue, zero white (heatmap) or transparent (overlay). Colours saturate
at a percentile of |attribution| so that a few extreme pixels do not wash out the rest.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InvalidArgumentError
from .picture_file import FORMAT_NAMES, SIDE_LIMITS, PendingFile, check_destination, picture_format, save_picture
from .text import shown_path
from .validate import OutputError

# A sheet is one picture; past this many rows it grows beyond what viewers open comfortably.
SHEET_MAX_ROWS = 100


def channel_sum(attributions: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) by summing channels; (H, W) passes through."""
    attributions = np.asarray(attributions, dtype=np.float64)
    return attributions.sum(axis=0) if attributions.ndim == 3 else attributions


def clip_value(attributions: np.ndarray, percentile: float = 99.0) -> float:
    """The |channel sum| at ``percentile`` of its finite values: values of +/- this much and beyond get full
    colour (0 for a map with none). The colour bar of a rendered picture is labelled with it."""
    values = channel_sum(attributions)
    finite = np.abs(values[np.isfinite(values)])
    return float(np.percentile(finite, percentile)) if finite.size else 0.0


def diverging_heatmap(attributions: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: red for positive, blue for negative, opacity growing with |value|; NaN and
    infinite values opaque grey (:data:`NOT_FINITE`), as they have no place on the scale.

    Args:
        attributions: (C, H, W) or (H, W) map; channels are summed.
        percentile: |value| at this percentile (0-100] of the finite values maps to full colour
            (:func:`clip_value`); larger values are clipped.
    """
    values = channel_sum(attributions)
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    scale = clip_value(values, percentile)
    normalised = np.clip(values / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(values)
    rgba = np.zeros((*values.shape, 4), dtype=np.float64)
    positive, negative = normalised > 0, normalised < 0
    rgba[positive] = [0.84, 0.15, 0.16, 1.0]
    rgba[negative] = [0.13, 0.40, 0.67, 1.0]
    rgba[..., 3] = np.abs(normalised)
    rgba[~finite] = NOT_FINITE
    return (rgba * 255).round().astype(np.uint8)


# Pixels whose value is NaN or infinite: a grey that is neither colour of the scale nor the white of zero.
NOT_FINITE = (0.55, 0.55, 0.55, 1.0)


def overlay(image: np.ndarray, attributions: np.ndarray, percentile: float = 99.0, dim: float = 0.5) -> Image.Image:
    """The heatmap composited over a dimmed grey copy of ``image`` ((H, W, 3) uint8), as a PIL image."""
    grey = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L").convert("RGB")
    base = Image.blend(grey, Image.new("RGB", grey.size, (255, 255, 255)), dim)
    heat = Image.fromarray(diverging_heatmap(attributions, percentile), mode="RGBA")
    if heat.size != base.size:
        heat = heat.resize(base.size, Image.Resampling.BILINEAR)
    return Image.alpha_composite(base.convert("RGBA"), heat).convert("RGB")


def side_by_side(panels: list[Image.Image], gap: int = 4) -> Image.Image:
    """Panels of equal height in one row, white gaps between them."""
    width = sum(p.width for p in panels) + gap * (len(panels) - 1)
    height = max(p.height for p in panels)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.width + gap
    return canvas


def heatmap_on_white(attributions: np.ndarray, percentile: float = 99.0) -> Image.Image:
    """The signed heatmap alone, over white, as a PIL RGB image."""
    heat = Image.fromarray(diverging_heatmap(attributions, percentile), mode="RGBA")
    return Image.alpha_composite(Image.new("RGBA", heat.size, (255, 255, 255, 255)), heat).convert("RGB")


def render_output(source, png_dir=None, *, percentile: float = 99.0, limit: int | None = None,
                  on_missing_image=None, bare: bool = False, sheet=None, root=None, on_warning=None) -> list[Path]:
    """Draw rows of an igcli output: one PNG per row in ``png_dir`` and/or one contact sheet.

    Each picture is the crop the model saw, the heatmap and the overlay side by side. Titled (the default):
    enlarged to at least 224 pixels, with the title (file, class name, score, rank for ``topK``; model,
    method, rule, steps) and a colour bar labelled with +/- the clip value. ``bare``: the panels alone at the
    model's resolution (just the heatmap when the input file is gone), for composing figures yourself.

    Everything that can be known before drawing is checked first; every file is written whole or not at all
    (a new file renamed over the name), and no file this writes may be one of the output's input images.

    Args:
        source: anything :class:`igcli.output.Output` reads.
        png_dir: folder for ``NNNNN-STEM-tTARGET.png``, one per row; None for none.
        percentile: |channel sum| at this percentile of a map's finite values gets full colour.
        limit: draw only the first ``limit`` rows.
        on_missing_image: called with (path, error) for an input that cannot be reloaded (``path`` as given;
            the error names the file looked at); its row is drawn without the image.
        bare: per-row files without title, colour bar or enlargement.
        sheet: a .png, .jpg or .webp file for all drawn rows as one picture (rows: image | heatmap | overlay,
            titled); at most :data:`SHEET_MAX_ROWS` rows, and no more than the format's largest height holds.
        root: where the input images are now when they moved (``--root``; see
            :func:`igcli.output.locate_image`); the images are reopened at the recorded absolute path otherwise.
        on_warning: called once with one line when some maps hold NaN or infinite values (drawn grey).

    Returns the files written (the sheet last; none for an output of no rows). Raises InvalidArgumentError
    (exit 2) for a sheet of too many rows or an unknown format and for a file that would replace an input
    image or (the sheet) a per-row PNG; OutputError (exit 6) for a place where the files cannot be written.
    """
    from .captions import method_title, row_title_parts, titled_picture
    from .data import load_rgb, preprocess_pixels
    from .models import Preprocessing, model_categories
    from .output import IMAGE_PATHS, Output

    output = Output(source, root=root)
    count = len(output) if limit is None else min(limit, len(output))
    recipe = output.recipe
    preprocessing = Preprocessing.from_dict(recipe.preprocessing)
    folder = Path(png_dir) if png_dir is not None else None
    sheet = Path(sheet) if sheet is not None else None
    sheet_format = _check_sheet(sheet, count, preprocessing.crop) if sheet is not None else None
    if folder is not None and os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"-o {shown_path(folder)}: exists and is not a folder")
    names = _row_names(output, count) if folder is not None else []
    _check_overwrites(output, folder, names, sheet)

    categories = model_categories(str(recipe.model)) if not bare or sheet is not None else None
    header = method_title(recipe, percentile)
    written: list[Path] = []
    sheet_rows = []
    not_finite = 0
    with contextlib.ExitStack() as stack:
        # Made now, so that a sheet that cannot be written is refused before the per-row files are drawn.
        pending = stack.enter_context(PendingFile("--sheet", sheet)) if sheet is not None and count else None
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise OutputError(f"-o {shown_path(folder)}: cannot create the folder ({error.strerror})") from None
        row = 0
        for rows in output.iter_rows(["attributions", "paths", IMAGE_PATHS, "targets", "scores", "target_rank"]):
            ranks = rows.get("target_rank", [None] * len(rows["paths"]))
            for attributions, path, image_path, target, score, rank in zip(
                    rows["attributions"], rows["paths"], rows[IMAGE_PATHS], rows["targets"], rows["scores"], ranks):
                if row >= count:
                    break
                not_finite += not np.isfinite(attributions).all()
                heat = heatmap_on_white(attributions, percentile)
                try:
                    pixels = preprocess_pixels(load_rgb(image_path, exif_transpose=preprocessing.exif_transpose),
                                               preprocessing).permute(1, 2, 0).numpy()
                    panels = [Image.fromarray(pixels), heat, overlay(pixels, attributions, percentile)]
                except (OSError, ValueError) as error:
                    if on_missing_image is not None:
                        on_missing_image(path, error)
                    panels = None
                title = row_title_parts(path, int(target), float(score), recipe, categories, rank)
                scale = clip_value(attributions, percentile)
                if folder is not None:
                    if bare:
                        picture = heat if panels is None else side_by_side(panels)
                    else:
                        picture = titled_picture(panels or _without_image(heat), [title, header], scale,
                                                 heatmap_on_white)
                    written.append(save_picture(picture, folder / names[row]))
                if sheet is not None:
                    sheet_rows.append((panels or _without_image(heat), title, scale))
                row += 1
        if pending is not None:
            from .captions import sheet as draw_sheet

            written.append(pending.save(draw_sheet(sheet_rows, header, heatmap_on_white), sheet_format))
    if not_finite and on_warning is not None:
        # float16 storage turns values beyond its range into infinities (attribute warned when it stored them).
        cause = "; stored as float16: rerun igcli attribute with --dtype float32" if recipe.dtype == \
            "float16" else ""
        on_warning(f"{not_finite} of {count} maps hold NaN or infinite values: drawn grey and left out of the "
                   f"colour scale{cause}")
    return written


def _check_sheet(sheet: Path, count: int, crop: int) -> str:
    """The sheet's Pillow format, once its suffix, its size (rows of ``crop``-pixel maps) and its place are
    known to work; InvalidArgumentError or OutputError otherwise."""
    from .captions import panel_size, sheet_size

    format_name = picture_format("--sheet", sheet)
    panel = panel_size(crop)
    width, height = sheet_size(panel, count)
    if count > SHEET_MAX_ROWS:
        raise InvalidArgumentError(
            f"--sheet {shown_path(sheet)}: {count} rows would make one picture {height} pixels high; pass "
            f"--limit N (at most {SHEET_MAX_ROWS}), and -o DIR for one PNG per row"
        )
    most = SIDE_LIMITS[format_name]
    kind = FORMAT_NAMES[format_name]
    if width > most:
        raise InvalidArgumentError(f"--sheet {shown_path(sheet)}: a row is {width} pixels wide, more than {kind} "
                                   f"can store ({most}); name the file .png")
    if height > most:
        rows = max(r for r in range(count + 1) if sheet_size(panel, r)[1] <= most)
        raise InvalidArgumentError(f"--sheet {shown_path(sheet)}: {count} rows would make a picture {height} pixels "
                                   f"high, more than {kind} can store ({most}); pass --limit {rows} or name the "
                                   "file .png")
    check_destination("--sheet", sheet)
    return format_name


def _row_names(output, count: int) -> list[str]:
    """The per-row file names of the first ``count`` rows: ``NNNNN-STEM-tTARGET.png``."""
    names: list[str] = []
    for rows in output.iter_rows(["paths", "targets"]):
        for path, target in zip(rows["paths"], rows["targets"]):
            if len(names) == count:
                return names
            names.append(f"{len(names):05d}-{safe_stem(path)}-t{int(target)}.png")
    return names


def _check_overwrites(output, folder: Path | None, names: list[str], sheet: Path | None) -> None:
    """InvalidArgumentError when the sheet is one of the per-row files (it would replace that row's picture),
    or when a file this run writes is an input image of ``output`` (any row's, drawn or not)."""
    from .output import IMAGE_PATHS

    if sheet is not None and folder is not None:
        where = Path(os.path.realpath(sheet.parent)) / sheet.name
        if where.parent == Path(os.path.realpath(folder)) and where.name in names:
            raise InvalidArgumentError(f"--sheet {shown_path(sheet)}: is the picture of row {names.index(where.name)} "
                                       f"that -o {shown_path(folder)} gets; name the sheet another file")
    # Only a file that exists can be an input; one that exists is compared with the inputs by identity, which
    # sees through links, ./.. and case-insensitive names alike. Nothing to read when all the files are new.
    ours = {}
    for option, path in ([("--sheet", sheet)] if sheet is not None else []) + [("-o", folder / n) for n in names]:
        try:
            found = os.stat(path)
        except OSError:
            continue
        ours.setdefault((found.st_dev, found.st_ino), (option, path))
    if not ours:
        return
    for rows in output.iter_rows([IMAGE_PATHS]):
        for image in rows[IMAGE_PATHS]:
            try:
                found = os.stat(image)
            except OSError:
                continue
            if (found.st_dev, found.st_ino) in ours:
                option, path = ours[(found.st_dev, found.st_ino)]
                where, what = ((shown_path(path), "name the sheet another file") if option == "--sheet" else
                               (f"{shown_path(folder)}: {shown_path(path.name)}", "choose another folder"))
                raise InvalidArgumentError(f"{option} {where} would replace the input image {shown_path(image)}; "
                                           f"igcli never overwrites an input: {what}")


def _without_image(heat: Image.Image) -> list[Image.Image]:
    """Panels for a row whose input cannot be reloaded: grey, saying so, where the crop and the overlay would be."""
    from .captions import missing_panel

    blank = missing_panel(heat.size)
    return [blank, heat, blank]


def safe_stem(path: str) -> str:
    """The input's name as a short, plain file-name part: no control characters, separators or undecodable
    bytes, at most 80 characters (a 255-byte input name plus the row number would not fit)."""
    return re.sub(r"[^\w.-]+", "_", Path(path).stem)[:80] or "_"
