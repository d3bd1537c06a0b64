"""``igcli render``'s files and messages: what is refused before drawing (a sheet too tall for its format, in
an unusable place, or on top of a per-row picture or an input image), a sheet written whole or not at all,
maps with NaN, outputs with no rows, and file names shown on one line."""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from cli_helpers import TINY, make_images, one_line, run_cli
from igcli.captions import panel_size, sheet_size
from igcli.errors import InvalidArgumentError
from igcli.output import Output
from igcli.render import _check_sheet, clip_value, render_output
from igcli.jobs import AttributeJob, run_attribute
from igcli.text import shown_path
from igcli.validate import OutputError

CROP = 16
GREY = np.array([140, 140, 140])  # render.NOT_FINITE, 0-255


def attribute(images: Path, out: Path, **options) -> Path:
    run_attribute(AttributeJob(inputs=[str(images)], out=out, model=TINY, steps=4, device="cpu", workers=0,
                               preprocessing={"resize": CROP, "crop": CROP}, **options), quiet=True)
    return out


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    """A top-2 run of the tiny model on three images: six rows."""
    folder = tmp_path_factory.mktemp("render_files")
    make_images(folder / "imgs", 3)
    return attribute(folder / "imgs", folder / "out", target="top2")


def test_a_sheet_too_tall_for_its_format_is_refused_before_drawing(output, tmp_path):
    # The limits are Pillow's: WebP stores at most 16383 pixels a side, JPEG 65500.
    for format_name, most in (("WEBP", 16383), ("JPEG", 65500)):
        Image.new("L", (1, most)).save(tmp_path / "ok", format=format_name)
        with pytest.raises((OSError, ValueError)):
            Image.new("L", (1, most + 1)).save(tmp_path / "too_big", format=format_name)
    panel = panel_size(CROP)
    assert sheet_size(panel, 64)[1] <= 16383 < sheet_size(panel, 65)[1]
    shards = [*Output(output).shards] * 11  # 66 rows
    with pytest.raises(InvalidArgumentError, match=r"s\.webp: 66 rows .* WebP can store \(16383\); pass --limit 64 "
                                                   r"or name the file \.png"):
        render_output(shards, tmp_path / "png", sheet=tmp_path / "s.webp")
    assert not (tmp_path / "png").exists() and not (tmp_path / "s.webp").exists()  # nothing drawn
    # 100 rows of 700-pixel maps fit a PNG but not a JPEG (73012 pixels high).
    assert _check_sheet(tmp_path / "s.png", 100, 700) == "PNG"
    with pytest.raises(InvalidArgumentError, match="JPEG can store \\(65500\\); pass --limit 89 "):
        _check_sheet(tmp_path / "s.jpg", 100, 700)


def test_the_sheet_never_replaces_a_row_picture_or_an_input_image(output, tmp_path):
    rows = render_output(output, tmp_path / "png", limit=2)
    before = rows[1].read_bytes()
    for sheet in (rows[1], tmp_path / "png" / ".." / "png" / rows[1].name):
        with pytest.raises(InvalidArgumentError, match=f"is the picture of row 1 that -o {tmp_path / 'png'} gets"):
            render_output(output, tmp_path / "png", limit=2, sheet=sheet)
    assert rows[1].read_bytes() == before
    # A sheet named as an input image, of a row drawn or not, or a link to one: refused, the image untouched.
    image = Path(Output(output).column("paths")[-1])
    (tmp_path / "link.png").symlink_to(image)
    before = image.read_bytes()
    for sheet in (image, tmp_path / "link.png"):
        with pytest.raises(InvalidArgumentError, match=f"would replace the input image {image}"):
            render_output(output, None, limit=1, sheet=sheet)
    assert image.read_bytes() == before
    # An existing sheet is replaced, as the per-row files are.
    (tmp_path / "old.png").write_bytes(b"an earlier sheet")
    assert render_output(output, None, limit=1, sheet=tmp_path / "old.png") == [tmp_path / "old.png"]
    with Image.open(tmp_path / "old.png") as picture:
        assert picture.size == sheet_size(panel_size(CROP), 1)


@pytest.mark.parametrize("place", ["afile/s.png", "afile/sub/s.png", "folder.png", "y" * 300 + ".png",
                                   "/proc/s.png"])
def test_the_sheet_destination_is_checked_before_drawing(output, tmp_path, place):
    if place.startswith("/proc") and not Path("/proc/self").exists():
        pytest.skip("no /proc")
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(OutputError) as refused:
        render_output(output, tmp_path / "png", sheet=tmp_path / place)
    assert refused.value.exit_code == 6 and "\n" not in str(refused.value)
    assert not (tmp_path / "png").exists()  # refused before the per-row files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder.png"]


def test_the_sheet_is_written_whole_or_not_at_all(output, tmp_path, monkeypatch):
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"the previous sheet")
    save = Image.Image.save

    def disk_full(picture, target, *args, **kwargs):  # writes part of the file, then the disk is full
        Path(target).write_bytes(b"\x89PNG half a pict")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OutputError, match="sheet.png: cannot write the file \\(No space left on device; free some"):
        render_output(output, None, limit=2, sheet=sheet)
    monkeypatch.setattr(Image.Image, "save", save)
    assert sheet.read_bytes() == b"the previous sheet"
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]  # no temporary file left


def test_nan_and_infinity_are_grey_and_left_out_of_the_scale(output, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(output, copy)
    shard = Output(copy).shards[0]
    with h5py.File(shard, "r+") as handle:
        maps = handle["attributions"][:]
        maps[0, :, 0, 0], maps[0, 0, 1, 1] = np.nan, np.inf
        handle["attributions"][...] = maps
    values = maps[0].astype(np.float64).sum(axis=0)
    finite = np.abs(values[np.isfinite(values)])
    assert clip_value(maps[0], 99.0) == pytest.approx(np.percentile(finite, 99.0), rel=1e-12)
    said = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        files = render_output(copy, tmp_path / "png", limit=2, bare=True, on_warning=said.append)
    assert said == ["1 of 2 maps hold NaN or infinite values: drawn grey and left out of the colour scale"]
    with Image.open(files[0]) as picture:
        heat = np.asarray(picture).astype(int)[:, CROP + 4:2 * CROP + 4]
    assert (heat[0, 0] == GREY).all() and (heat[1, 1] == GREY).all()
    # The other pixels are coloured on the finite values' scale: full red or blue at the 99th percentile.
    weight = np.clip(np.abs(values) / np.percentile(finite, 99.0), 0, 1)[..., None]
    expected = 255 * (1 - weight) + np.where(values[..., None] > 0, [214, 38, 41], [33, 102, 171]) * weight
    mask = np.isfinite(values)
    assert np.abs(heat[mask] - expected[mask]).max() <= 1.5


def test_shown_path_keeps_a_message_on_one_line():
    assert shown_path("imgs/chelsea cat.jpg") == "imgs/chelsea cat.jpg"
    assert shown_path("a\nb\rc\td\x1b\x85.png") == "a\\nb\\rc\\td\\x1b\\x85.png"
    assert shown_path("\u202egnp.exe\u2028\u200b") == "\\u202egnp.exe\\u2028\\u200b"  # bidi, separator, zero-width
    assert shown_path(os.fsdecode(b"caf\xe9.png")) == shown_path(b"caf\xe9.png") == "caf\\xe9.png"
    assert shown_path("\u05e9\u05dc\u05d5\u05dd.png") == "\u05e9\u05dc\u05d5\u05dd.png"  # letters of any script


def test_odd_names_are_reported_on_one_line_each(tmp_path, capsys):
    images = tmp_path / "imgs"
    good = make_images(images, 1)[0]
    good.rename(images / "new\nline\r.jpg")
    (images / "bad\n\u202e.png").write_bytes(b"not an image")
    out = attribute(images, tmp_path / "out")
    said = capsys.readouterr().err.splitlines()
    assert said[0] == "skipped " + str(images / "bad\\n\\u202e.png") + ": not an image PIL can read (empty, " \
                      "truncated header or another format)"
    assert not any(line.startswith(("line", "\u202e")) for line in said)
    (tmp_path / "elsewhere").mkdir()
    result = run_cli("render", str(out), "--sheet", str(tmp_path / "s\n.png"), "--root", str(tmp_path / "elsewhere"))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[1] == f"wrote the sheet {tmp_path}/s\\n.png", lines
    assert lines[0].startswith(f"igcli: warning: {images}/new\\nline\\r.jpg: cannot read the input image "
                               f"{tmp_path}/elsewhere/new\\nline\\r.jpg (No such file or directory); not under --root")


def test_an_output_of_no_rows_says_so(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "bad.png").write_bytes(b"not an image")
    out = attribute(tmp_path / "imgs", tmp_path / "out")
    assert len(Output(out)) == 0
    result = run_cli("render", str(out), "--sheet", str(tmp_path / "s.png"))
    assert result.returncode == 0
    assert one_line(result.stderr) == f"igcli: warning: {out}: no rows to draw (every input of the run was skipped); " \
                                      "nothing written"
    assert not (tmp_path / "s.png").exists()
