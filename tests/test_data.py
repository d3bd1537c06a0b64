"""Inputs: discovery, splitting across parts, labels, and decoding of the images a real folder holds."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from igcli.data import (
    ImageDataset,
    LabelResolver,
    collate,
    discover_inputs,
    load_rgb,
    preprocess_pixels,
    select_part,
)
from igcli.errors import InvalidArgumentError
from igcli.models import Preprocessing


def write(path, image: Image.Image, **kwargs) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return str(path)


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
    stdin = io.StringIO(f"# a comment\n{folder}/a.jpeg\n\n{folder}/missing.jpg\n")
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
