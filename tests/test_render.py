"""``igcli render``: titled pictures, the contact sheet and the bare panels, checked against the stored maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import TINY, make_images, one_line, run_cli
from igcli.recipe import Recipe
from igcli.captions import (FONT_SIZE, LINE, ROW_GAP, bar_labels, colour_bar, fit, font, method_title, panel_size,
                            printable, row_title, row_title_parts, row_width, titled_picture)
from igcli.models import model_categories
from igcli.output import Output
from igcli.render import clip_value, heatmap_on_white, render_output
from igcli.jobs import AttributeJob, run_attribute

RED, BLUE = np.array([214, 38, 41]), np.array([33, 102, 171])  # diverging_heatmap's full colours, 0-255
CROP = 16  # the tiny model's input size; titled panels are enlarged to 16 x 14 = 224
R = Recipe.from_settings  # the captions read a run recipe; these tests give its stored form
SETTINGS = {"model": "efficientnet_lite0", "method": "ig", "rule": "idgi", "steps": 32, "schedule": "left",
            "output": "prob", "target": "pred"}


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    """A top-2 run of the tiny model on three images: six rows, ranks 0, 1, 0, 1, 0, 1."""
    folder = tmp_path_factory.mktemp("render")
    make_images(folder / "imgs", 3)
    run_attribute(AttributeJob(inputs=[str(folder / "imgs")], out=folder / "out", model=TINY, steps=4, device="cpu",
                               workers=0, target="top2", preprocessing={"resize": CROP, "crop": CROP}), quiet=True)
    return folder / "out"


def test_row_title_names_the_class_score_and_rank():
    imagenet = model_categories("efficientnet_lite0")
    assert len(imagenet) == 1000 and imagenet[281] == "tabby"
    assert row_title("imgs/chelsea.jpg", 281, 0.52, R(SETTINGS), imagenet) == "chelsea.jpg: predicted tabby (281), p = 0.520"
    top = {**SETTINGS, "target": "top3", "output": "logit"}
    assert row_title("a/b.png", 282, 7.1234, R(top), imagenet, rank=1) == "b.png: rank 2 of 3: tiger cat (282), logit = 7.12"
    assert row_title("b.png", 4, 0.00012, R({**SETTINGS, "target": "label"}), None) == "b.png: true class class 4, p = 1.2e-04"
    assert row_title("b.png", 7, 0.5, R({**SETTINGS, "target": "7"}), ("x",) * 5) == "b.png: class 7, p = 0.500"  # no name
    # An undecodable byte and a newline in a file name become U+FFFD, which a font can draw.
    assert row_title("caf\udce9\n.png", 0, 1.0, R(SETTINGS), None).startswith("caf\ufffd\ufffd.png: predicted class 0")


def test_titles_are_drawn_left_to_right_as_written():
    # Nothing in a file name may reorder or break the title line: format characters (the right-to-left
    # override, isolates, zero-width ones), C0 and C1 controls, line separators, undecodable bytes and lone
    # surrogates become U+FFFD; letters of any script stay.
    assert printable("a\u202eb\u2066c\u200bd\x85e\u2028f\u2029g\udce9h\ud800i\x1bj") == "a\ufffdb\ufffdc\ufffdd" \
        "\ufffde\ufffdf\ufffdg\ufffdh\ufffdi\ufffdj"
    assert row_title("\u202egnp.exe", 2, 0.5, R(SETTINGS), None) == "\ufffdgnp.exe: predicted class 2, p = 0.500"
    # A Hebrew file name opens the line as written; class and score follow it (with libraqm, Pillow would
    # otherwise lay out the whole line right to left, class and score first).
    hebrew = "\u05e9\u05dc\u05d5\u05dd.png"
    heat = Image.new("RGB", (CROP, CROP), (255, 255, 255))
    titled = np.asarray(titled_picture([heat], [row_title(hebrew, 2, 0.5, R(SETTINGS), None)], 0.1, heatmap_on_white))
    alone = np.asarray(titled_picture([heat], [hebrew], 0.1, heatmap_on_white))
    width = int(font(FONT_SIZE).getlength(hebrew))
    np.testing.assert_array_equal(titled[:8 + LINE, :8 + width], alone[:8 + LINE, :8 + width])
    assert (titled[:8 + LINE, 8 + width + 4:] != 255).any()  # ": predicted class 2, ..." to its right


def test_a_long_file_name_is_shortened_in_its_middle_and_the_class_and_score_kept():
    name = "n" * 120 + "x" * 120 + ".png"  # 244 characters
    parts = row_title_parts("imgs/" + name, 281, 0.52, R({**SETTINGS, "target": "top3"}), None, rank=1)
    assert "".join(parts) == row_title("imgs/" + name, 281, 0.52, R({**SETTINGS, "target": "top3"}), None, rank=1)
    drawn = fit(parts, 600)
    assert drawn.endswith("x.png: rank 2 of 3: class 281, p = 0.520") and drawn.startswith("nnnn")
    assert "\u2026" in drawn and len(drawn) < len(name)
    assert font(FONT_SIZE).getlength(drawn) <= 600
    assert fit(parts, 10_000) == "".join(parts)  # room for all: nothing cut
    assert fit("a plain line " * 20, 200).endswith("\u2026")  # other lines are cut at the end


def test_method_title_says_model_method_rule_steps_and_colour_scale():
    assert method_title(R(SETTINGS), 99.0) == ("efficientnet_lite0, IG, IDGI rule, 32 steps; full colour at \u00b199th "
                                            "percentile of |sum over channels|")
    blur = {"model": "/models/net.py:build", "method": "blurig", "rule": "riemann", "steps": 16,
            "schedule": "gauss-legendre"}
    assert method_title(R(blur), 95.5).startswith("net.py:build, Blur IG, Riemann sum, 16 steps (gauss-legendre); ")
    assert "95.5th" in method_title(R(blur), 95.5)
    calibrated = {**blur, "schedule": "file:/home/u/x.json", "schedule_file": "/home/u/x.json"}
    assert "16 steps (calibrated)" in method_title(R(calibrated), 99)
    assert method_title(R({"model": "resnet50", "method": "vg", "rule": None}), 99).startswith("resnet50, vanilla gradient;")
    # The schedule is named unless it is the rule's default (left for IDGI, right for a Riemann sum).
    assert "32 steps (right);" in method_title(R({**SETTINGS, "schedule": "right"}), 99)
    assert "32 steps;" in method_title(R({**SETTINGS, "rule": "riemann", "schedule": "right"}), 99)


def test_categories_come_without_loading_a_model():
    assert model_categories("resnet50")[817] == "sports car"  # the weights' meta, no download
    assert model_categories("tests/fixtures/tiny_model.py:tiny") is None and model_categories(TINY) is None


def test_colour_bar_is_labelled_with_the_percentile_clip_value():
    generator = np.random.default_rng(0)
    attributions = generator.normal(size=(3, 10, 12))
    scale = clip_value(attributions, 90.0)
    assert scale == pytest.approx(np.percentile(np.abs(attributions.sum(axis=0)), 90.0), rel=1e-12)
    assert bar_labels(scale) == (f"+{scale:.2e}", "0", f"\u2212{scale:.2e}")
    # The bar is the panels' mapping: full red at +scale (top), white at 0, full blue at -scale (bottom).
    # Row i of a 101-pixel bar is the value scale * (1 - i / 50); rows 0 and 100 are its grey outline.
    bar = np.asarray(colour_bar(101, scale, heatmap_on_white)).astype(int)
    for row, colour in ((1, RED), (99, BLUE), (25, RED), (75, BLUE)):
        weight = abs(1 - row / 50)
        assert np.abs(bar[row, 5] - (255 * (1 - weight) + colour * weight)).max() <= 1, row
    assert (bar[50, 5] == 255).all()
    # and a map value at exactly +scale is drawn in that full red
    on_scale = np.asarray(heatmap_on_white(np.array([[scale, 0.0], [-scale, 0.0]]), 100.0)).astype(int)
    assert np.abs(on_scale[0, 0] - RED).max() <= 1 and np.abs(on_scale[1, 0] - BLUE).max() <= 1


def test_titled_picture_holds_the_bare_panels_enlarged(output, tmp_path):
    titled = render_output(output, tmp_path / "titled", limit=2)
    bare = render_output(output, tmp_path / "bare", limit=2, bare=True)
    assert [p.name for p in titled] == [p.name for p in bare] and len(titled) == 2
    size = panel_size(CROP)
    assert size == 224
    with Image.open(titled[1]) as picture, Image.open(bare[1]) as plain:
        assert plain.size == (3 * CROP + 8, CROP)
        assert picture.size == (row_width(size), 8 + 2 * LINE + 4 + size + 8)
        # The heatmap panel of the titled picture is the bare one, 14 times larger, below the two title lines.
        top, left = 8 + 2 * LINE + 4, 8 + size + 4
        heat = np.asarray(picture)[top:top + size, left:left + size]
        expected = plain.crop((CROP + 4, 0, 2 * CROP + 4, CROP)).resize((size, size), Image.Resampling.NEAREST)
        np.testing.assert_array_equal(heat, np.asarray(expected))
        assert (np.asarray(picture)[:top] != 255).any()  # the title's ink


def test_bare_pictures_are_todays_panels(output, tmp_path):
    """--bare: crop | heatmap | overlay at the model's resolution, 4 white pixels apart, heatmap pixels from
    the stored map: white blended towards full red/blue by |value| / the 99th percentile."""
    files = render_output(output, tmp_path / "bare", bare=True)
    maps = Output(output).column("attributions")
    assert len(files) == len(maps) == 6
    for file, attributions in zip(files, maps):
        with Image.open(file) as picture:
            pixels = np.asarray(picture).astype(float)
        assert pixels.shape == (CROP, 3 * CROP + 8, 3)
        assert (pixels[:, CROP:CROP + 4] == 255).all() and (pixels[:, 2 * CROP + 4:2 * CROP + 8] == 255).all()
        values = attributions.astype(np.float64).sum(axis=0)
        weight = np.clip(np.abs(values) / np.percentile(np.abs(values), 99), 0, 1)[..., None]
        colour = np.where(values[..., None] > 0, RED, BLUE)
        expected = 255 * (1 - weight) + colour * weight
        assert np.abs(pixels[:, CROP + 4:2 * CROP + 4] - expected).max() <= 1.5


def test_sheet_has_one_row_per_map_in_order(output, tmp_path):
    heights = []
    for rows in (1, 2, 3):
        written = render_output(output, None, limit=rows, sheet=tmp_path / f"sheet{rows}.png")
        assert written == [tmp_path / f"sheet{rows}.png"]
        with Image.open(written[0]) as sheet:
            heights.append(sheet.height)
            assert sheet.width == row_width(panel_size(CROP))
            pixels = np.asarray(sheet)
    step = LINE + panel_size(CROP) + ROW_GAP
    assert heights[1] - heights[0] == heights[2] - heights[1] == step
    # Row k's heatmap is row k's map: compare each with the titled picture of the same row.
    titled = render_output(output, tmp_path / "titled", limit=3)
    size, first = panel_size(CROP), heights[0] - 8 - panel_size(CROP)  # the first row's panels start here
    for k, file in enumerate(titled):
        with Image.open(file) as picture:
            top = picture.height - 8 - size
            want = np.asarray(picture)[top:top + size, 8 + size + 4:8 + 2 * size + 4]
        np.testing.assert_array_equal(pixels[first + k * step:first + k * step + size, 8 + size + 4:8 + 2 * size + 4],
                                      want)


def test_sheet_refuses_too_many_rows_and_unknown_formats(output, tmp_path):
    from igcli.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="--sheet .*: name the file .png"):
        render_output(output, None, sheet=tmp_path / "s.tiff")
    with pytest.raises(InvalidArgumentError, match="--limit N"):
        render_output([*Output(output).shards] * 20, None, sheet=tmp_path / "s.png")  # 120 rows
    assert not (tmp_path / "s.png").exists()


def test_missing_image_keeps_the_layout(output, tmp_path):
    shard = Output(output).shards[0]
    paths = Output(output).column("paths")
    moved = tmp_path / "moved"
    moved.mkdir()
    missing = []
    # Hide the first image: its rows are drawn with grey panels where the image would be, same size.
    first = Path(paths[0])
    first.rename(moved / first.name)
    try:
        files = render_output(shard, tmp_path / "png", limit=3, on_missing_image=lambda p, e: missing.append(p))
    finally:
        (moved / first.name).rename(first)
    assert missing == [paths[0], paths[1]]
    pictures = []
    for file in files:
        with Image.open(file) as picture:
            pictures.append(np.asarray(picture))
    assert len({p.shape for p in pictures}) == 1
    size, top = panel_size(CROP), pictures[0].shape[0] - 8 - panel_size(CROP)
    crops = [p[top:top + size, 8:8 + size] for p in pictures]
    for crop in crops[:2]:  # grey, with a line of text in the middle
        assert (crop[:size // 3] == 225).all() and (crop[size // 2] != 225).any()
    assert not (crops[2][:size // 3] == 225).all()


def test_cli_renders_titled_pictures_and_a_sheet(output, tmp_path):
    result = run_cli("render", str(output), "-o", str(tmp_path / "png"), "--sheet", str(tmp_path / "sheet.png"),
                     "--limit", "2", "--percentile", "95")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 PNG files" in result.stderr and "wrote the sheet" in result.stderr
    files = sorted((tmp_path / "png").iterdir())
    assert [f.name[:5] for f in files] == ["00000", "00001"]
    with Image.open(files[0]) as picture, Image.open(tmp_path / "sheet.png") as sheet:
        assert picture.size == (row_width(224), 8 + 2 * LINE + 4 + 224 + 8)
        assert sheet.size == (row_width(224), 8 + 2 * LINE + 4 + 2 * (LINE + 224 + ROW_GAP) - ROW_GAP + 8)
    nothing = run_cli("render", str(output))
    assert nothing.returncode == 2 and "-o DIR" in one_line(nothing.stderr)
