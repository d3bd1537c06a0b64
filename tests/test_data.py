"""Inputs: discovery, splitting across parts, labels, and decoding of the images a real folder holds."""

from __future__ import annotations

import io
import os
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igcli.data import (
    ImageDataset,
    NotRegularFileError,
    collate,
    describe_decode_error,
    discover_inputs,
    load_rgb,
    preprocess_pixels,
    select_part,
)
from igcli.labels import LabelResolver
from igcli.errors import InvalidArgumentError
from igcli.models import Preprocessing


def write(path, image: Image.Image, **kwargs) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return str(path)


def finishes_within(seconds: float, function, *args, unblock=None):
    """``function(*args)``, failing the test (instead of hanging it) when it takes longer than ``seconds``.

    It runs in a thread; on timeout ``unblock()`` is called so a regressed run can end, then the test fails.
    """
    result = {}

    def target():
        try:
            result["value"] = function(*args)
        except BaseException as error:  # re-raised in the test's thread
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            unblock()
        thread.join(seconds)
        pytest.fail(f"{getattr(function, '__name__', function)} did not finish within {seconds} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in ["b/z.JPG", "b/a.png", "a.jpeg", "c/d/e.webp", "notes.txt", ".hidden.jpg", ".cache/x.jpg"]:
        path = tmp_path / "imgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            path.write_text("hello")
        else:
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
                path, format={"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[name.rsplit(".", 1)[1].lower()]
            )
    return tmp_path / "imgs"


def test_folders_are_walked_recursively_sorted_and_filtered_by_extension_in_any_case(folder):
    found = discover_inputs([str(folder)])
    relative = [os.path.relpath(p, folder) for p in found]
    assert relative == ["a.jpeg", "b/a.png", "b/z.JPG", "c/d/e.webp"]


def test_files_stdin_and_duplicates(folder):
    stdin = io.StringIO(f"{folder}/a.jpeg\n\n{folder}/missing.jpg\n")
    found = discover_inputs([f"{folder}/b/a.png", "-", f"{folder}/a.jpeg", str(folder / "notes.txt")], stdin)
    # Paths from stdin are not checked here (a missing one is skipped later, with its reason); explicit files
    # are taken whatever their extension; the second a.jpeg is dropped.
    assert found == [f"{folder}/b/a.png", f"{folder}/a.jpeg", f"{folder}/missing.jpg", f"{folder}/notes.txt"]


def test_missing_command_line_path_and_empty_folder_are_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="nope.jpg: no such file"):
        discover_inputs([str(tmp_path / "nope.jpg")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="no images found"):
        discover_inputs([str(tmp_path / "empty")])


def test_symlink_loops_are_walked_once_and_links_to_other_folders_once(folder, tmp_path):
    os.symlink(".", folder / "loop")  # imgs/loop -> imgs
    os.symlink("..", folder / "c" / "up")  # a second loop: with two, following links never ends
    os.symlink("b", folder / "a_link_to_b")  # a real folder of the tree keeps its real name
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside / "o.png", Image.new("RGB", (4, 4)))
    os.symlink(outside, folder / "ext")  # a folder outside the tree is walked, once
    os.symlink(outside, folder / "ext_again")

    def unblock():  # a regressed walk follows the loops for ever; removing them lets it end
        for link in (folder / "loop", folder / "c" / "up"):
            link.unlink()

    found = finishes_within(20, discover_inputs, [str(folder)], unblock=unblock)
    relative = [os.path.relpath(p, folder) for p in found]
    assert relative == ["a.jpeg", "b/a.png", "b/z.JPG", "c/d/e.webp", "ext/o.png"]
    assert finishes_within(20, discover_inputs, [str(folder)]) == found  # deterministic


def test_stdin_lines_are_taken_verbatim(folder):
    stdin = io.StringIO(" lead.jpg\ntrail.jpg \n#hash.jpg\n\n\tin tabs\t.jpg\nlast.jpg")
    assert discover_inputs(["-"], stdin) == [" lead.jpg", "trail.jpg ", "#hash.jpg", "\tin tabs\t.jpg", "last.jpg"]


def test_stdin_null_separated_names_may_hold_newlines():
    stdin = io.StringIO("two\nlines.jpg\0plain.jpg\0\0 spaced .jpg\0")
    assert discover_inputs(["-"], stdin, null=True) == ["two\nlines.jpg", "plain.jpg", " spaced .jpg"]


def test_stdin_bytes_keep_non_utf8_names(tmp_path):
    name = os.fsencode(tmp_path) + b"/caf\xe9.jpg"  # Latin-1, not UTF-8
    write(Path(os.fsdecode(name)), Image.new("RGB", (4, 4)), format="JPEG")
    found = discover_inputs(["-"], io.TextIOWrapper(io.BytesIO(name + b"\nother.jpg\n")))
    assert found == [os.fsdecode(name), "other.jpg"]
    assert os.fsencode(found[0]) == name  # lossless: the file itself opens
    assert load_rgb(found[0]).size == (4, 4)
    null = discover_inputs(["-"], io.TextIOWrapper(io.BytesIO(b"a\nb.jpg\0" + name + b"\0")), null=True)
    assert null == ["a\nb.jpg", os.fsdecode(name)]


def test_parts_cover_the_list_exactly_once_and_are_balanced():
    paths = [f"p{i}" for i in range(23)]
    parts = [select_part(paths, i, 4) for i in range(4)]
    assert sorted(sum(parts, [])) == sorted(paths)
    assert {len(p) for p in parts} <= {5, 6}
    with pytest.raises(InvalidArgumentError):
        select_part(paths, 4, 4)


# -- decoding --------------------------------------------------------------------------------------------------


def test_odd_but_valid_images_become_the_expected_rgb(tmp_path):
    grey = write(tmp_path / "grey.png", Image.new("L", (4, 4), 100))
    assert np.asarray(load_rgb(grey)).tolist() == np.full((4, 4, 3), 100).tolist()

    # 16-bit: 65535 is white and 32896 mid-grey, not everything above 255 clipped to white.
    deep = np.array([[0, 32896], [65535, 257]], dtype=np.uint16)
    sixteen = write(tmp_path / "deep.png", Image.fromarray(deep))
    assert Image.open(sixteen).mode.startswith("I")
    assert np.asarray(load_rgb(sixteen))[..., 0].tolist() == [[0, 128], [255, 1]]

    rgba = Image.new("RGBA", (2, 1))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (0, 0, 255, 0))  # fully transparent blue shows the white background
    assert np.asarray(load_rgb(write(tmp_path / "rgba.png", rgba))).tolist() == [[[255, 0, 0], [255, 255, 255]]]

    cmyk = write(tmp_path / "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 255, 255, 0)), quality=95)  # red
    red = np.asarray(load_rgb(cmyk)).reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60

    palette = Image.new("P", (2, 2))
    palette.putpalette([0, 255, 0] * 256)
    assert np.asarray(load_rgb(write(tmp_path / "p.png", palette))).reshape(-1, 3).tolist() == [[0, 255, 0]] * 4


def test_broken_files_become_skips_with_reasons(tmp_path):
    good = write(tmp_path / "good.jpg", Image.new("RGB", (20, 20), (10, 20, 30)))
    data = open(good, "rb").read()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    (tmp_path / "folder.jpg").mkdir()
    names = ["good.jpg", "truncated.jpg", "empty.jpg", "text.png", "dangling.jpg", "folder.jpg"]
    dataset = ImageDataset([str(tmp_path / n) for n in names], Preprocessing(16, 16))
    batch = collate([dataset[i] for i in range(len(names))])
    assert batch.indices == [0]
    assert batch.pixels.shape == (1, 3, 16, 16) and batch.pixels.dtype == torch.uint8
    reasons = dict(batch.skipped)
    assert set(reasons) == {1, 2, 3, 4, 5}
    assert "truncated" in reasons[1].lower()
    assert "not an image" in reasons[2] and "not an image" in reasons[3]
    assert reasons[4] == "file not found"
    assert reasons[5] == "is a directory"


def test_fifos_devices_and_sockets_are_skipped_without_blocking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short relative names: a socket's path is limited to about 100 bytes
    good = write(tmp_path / "good.jpg", Image.new("RGB", (20, 20), (10, 20, 30)))
    os.mkfifo("x.jpg")  # opening a FIFO to read waits for a writer: for ever
    server = socket.socket(socket.AF_UNIX)
    server.bind("s.jpg")
    names = [good, "x.jpg", "s.jpg", "/dev/null"]
    dataset = ImageDataset(names, Preprocessing(16, 16))

    def unblock():  # a writer that comes and goes lets a regressed reader see end-of-file
        try:
            os.close(os.open("x.jpg", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    try:
        batch = finishes_within(20, lambda: collate([dataset[i] for i in range(len(names))]), unblock=unblock)
    finally:
        server.close()
    assert batch.indices == [0]
    reason = "not a regular file (a FIFO, device or socket); only regular files are read"
    assert dict(batch.skipped) == {1: reason, 2: reason, 3: reason}
    with pytest.raises(NotRegularFileError) as raised:
        load_rgb("/dev/null")
    assert isinstance(raised.value, OSError) and describe_decode_error(raised.value) == reason


def exif_jpeg(path, orientation: int) -> str:
    """A 40 x 20 JPEG, left half red and right half blue, stored with EXIF ``orientation``."""
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))
    exif = image.getexif()
    exif[0x0112] = orientation
    return write(path, image, format="JPEG", exif=exif, quality=95)


def test_exif_orientation_is_applied_unless_turned_off(tmp_path):
    rotated = exif_jpeg(tmp_path / "rotated.jpg", 6)  # 6: shown turned 90 degrees clockwise
    assert load_rgb(rotated).size == (20, 40)
    assert load_rgb(rotated, exif_transpose=False).size == (40, 20)
    upright = load_rgb(rotated)
    assert upright.getpixel((10, 5))[0] > 200 and upright.getpixel((10, 35))[2] > 200  # left half now on top
    assert load_rgb(exif_jpeg(tmp_path / "plain.jpg", 1)).size == (40, 20)

    # The dataset follows the preprocessing's setting: crops of the upright image are red on top, blue below;
    # of the stored one red on the left, blue on the right.
    on = ImageDataset([rotated], Preprocessing(20, 20))[0].pixels
    off = ImageDataset([rotated], Preprocessing(20, 20, exif_transpose=False))[0].pixels
    assert on[0, 2, 10] > 200 and on[2, 17, 10] > 200
    assert off[0, 10, 2] > 200 and off[2, 10, 17] > 200
    assert Preprocessing().as_dict()["exif_transpose"] is True
    assert Preprocessing(exif_transpose=False).as_dict()["exif_transpose"] is False


def test_preprocessing_resizes_the_short_side_and_centre_crops():
    image = Image.fromarray(np.arange(40 * 60 * 3, dtype=np.uint32).reshape(40, 60, 3).astype(np.uint8))
    pixels = preprocess_pixels(image, Preprocessing(resize=20, crop=16))
    assert pixels.shape == (3, 16, 16) and pixels.dtype == torch.uint8


# -- labels ----------------------------------------------------------------------------------------------------


def test_labels_from_folder_names_and_csv(tmp_path):
    categories = [f"class {i}" for i in range(1000)]
    categories[1] = "goldfish"
    resolve = LabelResolver(categories=categories)
    assert resolve("data/7/x.jpg") == 7
    assert resolve("data/n01440764/x.jpg") == 0  # ImageNet WordNet ID
    assert resolve("data/GoldFish/x.jpg") == 1  # class name, any case
    with pytest.raises(ValueError, match="not a class index"):
        resolve("data/zebra crossing/x.jpg")

    table = tmp_path / "labels.csv"
    table.write_text("path,label\nimgs/a.jpg,3\n/abs/b.jpg,goldfish\n")
    from_csv = LabelResolver(str(table), categories)
    assert from_csv("imgs/a.jpg") == 3
    assert from_csv(str(tmp_path / "imgs" / "a.jpg")) == 3  # relative to the CSV's folder
    assert from_csv("/abs/b.jpg") == 1
    with pytest.raises(ValueError, match="no row"):
        from_csv("other.jpg")


def test_labels_outside_the_model_classes_are_skips_with_reasons(tmp_path):
    categories = [f"class {i}" for i in range(1000)]
    for resolve in (LabelResolver(num_classes=1000), LabelResolver(categories=categories)):
        assert resolve("data/999/x.jpg") == 999
        with pytest.raises(ValueError, match=r"label 5000 is outside the model's 1000 classes \(0\.\.999\)"):
            resolve("data/5000/x.jpg")
        with pytest.raises(ValueError, match="label -3 is negative"):
            resolve("data/-3/x.jpg")
    unknown = LabelResolver()  # without a class count only negative labels are known to be wrong
    assert unknown("data/5000/x.jpg") == 5000
    with pytest.raises(ValueError, match="label -3 is negative"):
        unknown("data/-3/x.jpg")

    paths = [write(tmp_path / label / "x.png", Image.new("RGB", (8, 8))) for label in ("7", "1000", "-1")]
    dataset = ImageDataset(paths, Preprocessing(8, 8), LabelResolver(num_classes=1000))
    batch = collate([dataset[i] for i in range(len(paths))])
    assert batch.indices == [0] and batch.labels.tolist() == [7]
    assert dict(batch.skipped) == {
        1: "label 1000 is outside the model's 1000 classes (0..999)",
        2: "label -1 is negative",
    }


def test_labels_csv_with_a_byte_order_mark(tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("\ufeffa.jpg,3\nb.jpg,4\n", encoding="utf-8")  # as spreadsheet programs save "CSV UTF-8"
    resolve = LabelResolver(str(table))
    assert resolve("a.jpg") == 3 and resolve("b.jpg") == 4


@pytest.mark.parametrize(
    "content, message",
    [
        (b"path,label\na.jpg,3\nb\xff.jpg,4\n", r"not UTF-8 text \(byte 0xff at line 3\); save it as UTF-8"),
        (b"\xef\xbb\xbfa.jpg,3\n\xe9.jpg,4\n", r"not UTF-8 text \(byte 0xe9 at line 2\); save it as UTF-8"),
        (b"path,label\na.jpg,3\nb.jpg\x00,4\n", r"not a CSV file \(a NUL byte at line 3\)"),
        (  # a quote never closed: csv reads on until its field size limit
            b"a.jpg,3\nb.jpg,4\n\"c.jpg,5\n" + b"x" * 200_000,
            r"not a CSV file \(field larger than field limit \(131072\) at line \d+\)",
        ),
    ],
)
def test_unreadable_labels_csv_is_one_line_error_naming_the_file(tmp_path, content, message):
    table = tmp_path / "labels.csv"
    table.write_bytes(content)
    with pytest.raises(InvalidArgumentError) as raised:
        LabelResolver(str(table))
    text = str(raised.value)
    assert "\n" not in text and text.startswith(f"--labels {table}: ")
    assert re.search(message, text), text
