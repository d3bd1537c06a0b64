"""Words and scales on rendered maps: the title of each picture, its colour bar, and the layout that puts them
around the panels (Pillow only, so rendering stays fast and needs no display).

A title says which image, which class (its name when the model's categories are known without loading it),
the model's score, the rank for ``--target topK``, and how the map was made (model, method, rule, steps). The
colour bar shows the signed range that maps to full colour: +/- the percentile clip value of that map.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from .methods import BUILT_IN
from .recipe import SPLIT_IG, Recipe
from .schedules import default_schedule

RULE_NAMES = {"riemann": "Riemann sum", "idgi": "IDGI rule"}

# Layout in pixels. Panels smaller than PANEL_MIN (a 16-pixel test crop, a 32-pixel CIFAR one) are enlarged by
# a whole factor with nearest-neighbour sampling, so each model pixel stays a visible square and the text fits.
PANEL_MIN = 224
GAP = 4  # between panels, as in the bare picture
MARGIN = 8
FONT_SIZE = 13
LINE = FONT_SIZE + 5
BAR_GAP, BAR_WIDTH, LABEL_WIDTH = 10, 14, 70
ROW_GAP = 12  # between the rows of a sheet
WHITE, INK, FAINT, MISSING = (255, 255, 255), (20, 20, 20), (110, 110, 110), (225, 225, 225)


def class_text(target: int, categories: Sequence[str] | None) -> str:
    """``"tabby (281)"`` when the class has a name, ``"class 281"`` otherwise."""
    if categories is not None and 0 <= target < len(categories):
        return f"{categories[target]} ({target})"
    return f"class {target}"


def score_text(score: float, output: str | None) -> str:
    """The model's score of the explained class as stored: ``p = 0.834`` (softmax probability) or
    ``logit = 12.31``."""
    if output == "logit":
        return f"logit = {score:.2f}"
    name = "p" if output == "prob" else "f(x)"
    return f"{name} = {score:.3f}" if abs(score) >= 1e-3 or score == 0 else f"{name} = {score:.1e}"


def top_count(target_spec: Any) -> int | None:
    """K of a ``topK`` target setting, else None."""
    match = re.fullmatch(r"top(\d+)", str(target_spec or ""))
    return int(match.group(1)) if match else None


def row_title(path: str, target: int, score: float, recipe: Recipe, categories: Sequence[str] | None,
              rank: int | None = None) -> str:
    """What one map explains: ``chelsea.jpg: predicted tabby (281), p = 0.520``.

    ``rank`` is the stored ``target_rank`` (0 for the top class) and is shown from 1: ``rank 2 of 3``.
    """
    return "".join(row_title_parts(path, target, score, recipe, categories, rank))


def row_title_parts(path: str, target: int, score: float, recipe: Recipe,
                    categories: Sequence[str] | None, rank: int | None = None) -> tuple[str, str]:
    """:func:`row_title` as (file name, the rest): drawn, a name too long for the line is shortened in its
    middle and the rest (class, rank, score) is always kept whole (see :func:`fit`)."""
    kind = str(recipe.target)
    what = class_text(int(target), categories)
    if rank is not None:
        count = top_count(kind)
        what = f"rank {int(rank) + 1}{f' of {count}' if count else ''}: {what}"
    elif kind == "pred":
        what = f"predicted {what}"
    elif kind == "label":
        what = f"true class {what}"
    return printable(Path(path).name), f": {what}, {score_text(float(score), recipe.output)}"


def recipe_method_title(recipe: Recipe) -> str:
    """The method as people name it: a built-in's title ("Blur IG"), else the recorded name (a plugin's class is
    not imported to draw a title: rendering a folder runs no code it names)."""
    if recipe.method == SPLIT_IG:
        return "Split IG"
    return BUILT_IN[recipe.method].title if recipe.method in BUILT_IN else str(recipe.method)


def method_title(recipe: Recipe, percentile: float) -> str:
    """How the maps were made and coloured: ``efficientnet_lite0, IG, IDGI rule, 32 steps; colour at +/-
    99th percentile of |attribution|``."""
    parts = [printable(_model_name(str(recipe.model or "model")))]
    parts.append(printable(recipe_method_title(recipe)))
    if recipe.rule:
        parts.append(RULE_NAMES.get(recipe.rule, str(recipe.rule)))
    if recipe.steps:
        schedule = str(recipe.schedule or "")
        steps = f"{recipe.steps} steps"
        if recipe.schedule_file:
            steps += " (calibrated)"
        elif schedule and schedule != default_schedule(recipe.rule) and len(schedule) <= 24:
            steps += f" ({schedule})"
        parts.append(steps)
    elif recipe.adaptive:  # --steps auto: points per image; the target error says how the count was chosen
        tolerance = recipe.step_tolerance
        parts.append(f"auto steps, T={tolerance:g}" if isinstance(tolerance, (int, float)) else "auto steps")
    return ", ".join(parts) + f"; full colour at \u00b1{_ordinal(percentile)} percentile of |sum over channels|"


def printable(text: str) -> str:
    """``text`` as a font can draw it on one line, left to right, as written: control characters (C0 and C1),
    Unicode format characters (bidi overrides and isolates, which would reorder the whole title, zero-width
    ones), line and paragraph separators, and undecodable file-name bytes (surrogate escapes) become U+FFFD."""
    if text.isprintable():
        return text
    return "".join("\ufffd" if unicodedata.category(char) in UNDRAWABLE else char for char in text)


# Unicode categories that are not drawn as a glyph of their own: Cc control, Cf format, Cs surrogate,
# Zl line and Zp paragraph separator.
UNDRAWABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def bar_labels(scale: float) -> tuple[str, str, str]:
    """Labels of the colour bar, top to bottom: the full-red value, zero and the full-blue value."""
    return f"+{scale:.2e}", "0", f"\u2212{scale:.2e}"


def panel_size(size: int) -> int:
    """The drawn size of a ``size``-pixel panel: enlarged by a whole factor to at least PANEL_MIN."""
    return size * max(1, -(-PANEL_MIN // size))


def enlarge(panel: Image.Image) -> Image.Image:
    """``panel`` at :func:`panel_size` (nearest neighbour: model pixels stay sharp squares)."""
    width, height = panel_size(panel.width), panel_size(panel.height)
    return panel if (width, height) == panel.size else panel.resize((width, height), Image.Resampling.NEAREST)


def missing_panel(size: tuple[int, int]) -> Image.Image:
    """A grey panel at the drawn size of a ``size`` (width, height) panel, saying the input image is missing."""
    panel = Image.new("RGB", (panel_size(size[0]), panel_size(size[1])), MISSING)
    draw = ImageDraw.Draw(panel)
    write(draw, (panel.width // 2, panel.height // 2), "input image not readable", panel.width - 8, FAINT,
          anchor="mm", font_size=FONT_SIZE - 1)
    return panel


def colour_bar(height: int, scale: float, heatmap) -> Image.Image:
    """The vertical colour bar with its three labels, ``BAR_WIDTH + LABEL_WIDTH`` wide and ``height`` high.

    Its colours come from ``heatmap`` (render.heatmap_on_white) applied to an exact ramp from +1 to -1 at the
    100th percentile, so the bar is the same mapping as the panels, not a copy of it."""
    ramp = np.linspace(1.0, -1.0, height)[:, None].repeat(BAR_WIDTH, axis=1)
    canvas = Image.new("RGB", (BAR_WIDTH + LABEL_WIDTH, height), WHITE)
    canvas.paste(heatmap(ramp, 100.0), (0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, BAR_WIDTH - 1, height - 1), outline=FAINT)
    small = font(FONT_SIZE - 2)
    for label, y, anchor in zip(bar_labels(scale), (0, height // 2, height - 1), ("lt", "lm", "lb")):
        draw.text((BAR_WIDTH + 4, y), label, fill=INK, font=small, anchor=anchor)
    return canvas


def row_width(panel: int, count: int = 3) -> int:
    """Width of a titled picture or sheet whose ``count`` panels are ``panel`` pixels wide."""
    return 2 * MARGIN + count * panel + (count - 1) * GAP + BAR_GAP + BAR_WIDTH + LABEL_WIDTH


def paste_row(canvas: Image.Image, top: int, panels: Sequence[Image.Image], scale: float, heatmap) -> None:
    """Panels side by side from ``top`` (GAP apart), then the colour bar of ``scale``."""
    x = MARGIN
    for panel in panels:
        canvas.paste(panel, (x, top))
        x += panel.width + GAP
    canvas.paste(colour_bar(panels[0].height, scale, heatmap), (x - GAP + BAR_GAP, top))


def titled_picture(panels: Sequence[Image.Image], lines: Sequence[str | tuple[str, str]], scale: float,
                   heatmap) -> Image.Image:
    """One map's picture: its title lines (each a str or (file name, rest), see :func:`write`) over the
    (enlarged) panels and the colour bar of ``scale``."""
    panels = [enlarge(panel) for panel in panels]
    width = row_width(panels[0].width, len(panels))
    top = MARGIN + LINE * len(lines) + 4
    canvas = Image.new("RGB", (width, top + panels[0].height + MARGIN), WHITE)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        # The first line (what is explained) in ink, the others (how) smaller and grey.
        colour, font_size = (INK, FONT_SIZE) if i == 0 else (FAINT, FONT_SIZE - 1)
        write(draw, (MARGIN, MARGIN + i * LINE), line, width - 2 * MARGIN, colour, font_size=font_size)
    paste_row(canvas, top, panels, scale, heatmap)
    return canvas


def sheet_size(panel: int, rows: int, count: int = 3) -> tuple[int, int]:
    """(width, height) in pixels of a :func:`sheet` of ``rows`` rows of ``count`` square panels drawn
    ``panel`` pixels wide (:func:`panel_size`): known before anything is drawn."""
    return row_width(panel, count), MARGIN + 2 * LINE + 4 + rows * (LINE + panel + ROW_GAP) - ROW_GAP + MARGIN


def sheet(rows: Sequence[tuple[Sequence[Image.Image], str | tuple[str, str], float]], header: str,
          heatmap) -> Image.Image:
    """A contact sheet: ``header`` and the column names, then per row its title and its panels and colour bar.

    ``rows``: (panels, title, scale) each, the title a str or (file name, rest) (:func:`row_title_parts`);
    every row has the same number and size of square panels."""
    panels = [[enlarge(panel) for panel in row[0]] for row in rows]
    size = panels[0][0].width
    width, height = sheet_size(size, len(rows), len(panels[0]))
    step = LINE + size + ROW_GAP
    top = MARGIN + 2 * LINE + 4
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    write(draw, (MARGIN, MARGIN), header, width - 2 * MARGIN, INK)
    names = ("input (the crop the model sees)", "attribution (red: for, blue: against)", "overlay")
    for column, name in enumerate(names[:len(panels[0])]):
        centre = MARGIN + column * (size + GAP) + size // 2
        write(draw, (centre, MARGIN + LINE), name, size, FAINT, anchor="ma", font_size=FONT_SIZE - 1)
    for row, ((_, title, scale), images) in enumerate(zip(rows, panels)):
        y = top + row * step
        write(draw, (MARGIN, y), title, width - 2 * MARGIN, INK)
        paste_row(canvas, y + LINE, images, scale, heatmap)
    return canvas


def write(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str | tuple[str, str], width: int, fill,
          anchor: str = "la", font_size: int = FONT_SIZE) -> None:
    """``text`` at ``xy``, shortened to fit ``width`` pixels (see :func:`fit`; a picture's size never depends on
    a long file name), laid out left to right whatever script a file name is in."""
    face = font(font_size)
    name, rest = _fitted(draw, text, width, face)
    draw.text(xy, _isolated(name) + rest, fill=fill, font=face, anchor=anchor, **LEFT_TO_RIGHT)


def fit(text: str | tuple[str, str], width: float, font_size: int = FONT_SIZE) -> str:
    """What :func:`write` draws of ``text`` in ``width`` pixels: a str cut at its end with an ellipsis; a
    (file name, rest) pair (:func:`row_title_parts`) with the name shortened in its middle, so its start and
    extension show, and the rest (class, score) whole; cut at the end only if the rest alone is too wide."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return "".join(_fitted(draw, text, width, font(font_size)))


def _fitted(draw: ImageDraw.ImageDraw, text: str | tuple[str, str], width: float, face) -> tuple[str, str]:
    def fits(name: str, rest: str) -> bool:
        return draw.textlength(_isolated(name) + rest, font=face, **LEFT_TO_RIGHT) <= width

    name, rest = (text if isinstance(text, tuple) else ("", text))
    if fits(name, rest):
        return name, rest
    if name and fits("\u2026", rest):
        # The most characters of the name, half from each end around an ellipsis, that leave room for the rest.
        def middle(kept: int) -> str:
            return name[:kept - kept // 2] + "\u2026" + name[len(name) - kept // 2:]

        low, high = 0, len(name) - 1
        while low < high:
            kept = (low + high + 1) // 2
            low, high = (kept, high) if fits(middle(kept), rest) else (low, kept - 1)
        return middle(low), rest
    text = name + rest
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        kept = (low + high + 1) // 2
        low, high = (kept, high) if fits("", text[:kept] + "\u2026") else (low, kept - 1)
    return "", text[:low] + "\u2026"


# With libraqm, Pillow lays a line out by the Unicode bidi algorithm, and one that starts with a right-to-left
# file name (Hebrew, Arabic) would become a right-to-left paragraph: class and score first, on the left. So
# every line is laid out left to right and a file name is isolated from the rest, itself left to right as a
# file list shows it (LRI ... PDI, not drawn): "שלום.png", not "png.שלום".
# Pillow's basic layout (no libraqm) draws characters in the order stored and takes no direction.
LEFT_TO_RIGHT = {"direction": "ltr"} if features.check("raqm") else {}


def _isolated(name: str) -> str:
    return f"\u2066{name}\u2069" if name and LEFT_TO_RIGHT else name


@functools.lru_cache(maxsize=None)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib, an igcli dependency; wide Unicode coverage), else Pillow's own."""
    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def _model_name(spec: str) -> str:
    # A model file or file.py:factory is named by its file, not its whole path.
    head, _, factory = spec.rpartition(":") if ":" in spec else (spec, "", "")
    return f"{Path(head).name}:{factory}" if factory else Path(spec).name


def _ordinal(percentile: float) -> str:
    number = f"{percentile:g}"
    if number.endswith(("11", "12", "13")) or "." in number:
        return number + "th"
    return number + {"1": "st", "2": "nd", "3": "rd"}.get(number[-1], "th")
