"""``--target label`` sources: WordNet IDs in file names, ImageNet validation ground-truth lists, hostile files."""

from __future__ import annotations

import pytest

from igcli.errors import InvalidArgumentError
from igcli.labels import LabelResolver

# Index 0 of ImageNet's sorted WordNet IDs (resources/imagenet_wnids.txt) is tench, 1 goldfish, 999 toilet tissue.
TENCH, GOLDFISH, TOILET_TISSUE = "n01440764", "n01443537", "n15075141"


def test_a_wordnet_id_that_starts_the_file_name_is_the_label():
    categories = [f"class {i}" for i in range(1000)]
    categories[5] = "library"
    assert LabelResolver(categories=categories)("library/x.png") == 5
    for resolve in (LabelResolver(categories=categories), LabelResolver(num_classes=1000)):
        assert resolve(f"imgs/{GOLDFISH}_goldfish.jpg") == 1
        assert resolve(f"{TOILET_TISSUE}.JPEG") == 999
        assert resolve(f"train/{TENCH}/{TENCH}_10026.JPEG") == 0  # ImageNet's training layout: both agree
        assert resolve(f"library/{GOLDFISH}_x.png") == 1  # the file's ID wins over a folder named like a class
        assert resolve(f"7/{GOLDFISH}9_x.png") == 7  # not an ID (nine digits): the folder's label
        with pytest.raises(ValueError) as raised:
            resolve("imgs/photo.jpg")
        assert "label 'imgs' is not a class index" in str(raised.value) and "--labels FILE" in str(raised.value)
    # A model with other classes: n01443537 means nothing, the folder decides.
    assert LabelResolver(num_classes=5)(f"3/{GOLDFISH}_x.jpg") == 3


def test_a_ground_truth_list_labels_validation_images_by_their_number(tmp_path):
    truth = tmp_path / "val_labels.txt"
    truth.write_text(f"3\n{GOLDFISH}\n0\n999\n")  # 0-based indices or WordNet IDs, line N for image N
    resolve = LabelResolver(str(truth), num_classes=1000)
    assert resolve("val/ILSVRC2012_val_00000001.JPEG") == 3
    assert resolve("/elsewhere/n01/ILSVRC2012_val_00000002.png") == 1  # any folder, any extension
    assert resolve("ILSVRC2012_val_00000004.JPEG") == 999  # a subset: each image by its own number
    with pytest.raises(ValueError, match="validation image 5 has no line in --labels .* \\(4 lines\\)"):
        resolve("ILSVRC2012_val_00000005.JPEG")
    with pytest.raises(ValueError, match="has one label per line, for ImageNet validation images .* path,label CSV"):
        resolve("imgs/cat.jpg")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("ILSVRC2012_validation_ground_truth.txt", "490\n361\n", "holds ILSVRC2012_IDs .* meta.mat"),
        ("gt.txt", "490\n1000\n1\n", r"labels run 1\.\.1000, so they look 1-based; igcli takes 0-based"),
        ("gt.txt", "3\n\n4\n", "line 2 is empty"),
        ("gt.txt", "3\n" + "9" * 300 + "\n", "line 2 is not a class index, WordNet ID or class name"),
        ("gt.txt", "3\n4\x07\n", "line 2 is not a class index"),
        ("gt.txt", "3\n4\x00\n", r"not a CSV file \(a NUL byte at line 2\)"),
    ],
)
def test_a_bad_ground_truth_list_is_one_line_naming_the_file_and_line(tmp_path, name, content, message):
    truth = tmp_path / name
    truth.write_text(content)
    with pytest.raises(InvalidArgumentError, match=message) as raised:
        LabelResolver(str(truth), num_classes=1000)
    assert "\n" not in str(raised.value) and str(raised.value).startswith(f"--labels {truth}: ")


def test_an_unknown_label_in_a_list_is_a_skip_that_points_at_the_file(tmp_path):
    truth = tmp_path / "gt.txt"
    truth.write_text("zebra crossing\n" + "x" * 150 + "\n")
    resolve = LabelResolver(str(truth), num_classes=1000)
    with pytest.raises(ValueError, match="label 'zebra crossing' is not a class index.*check that line of --labels"):
        resolve("ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(ValueError) as raised:  # a long label is shortened in the reason
        resolve("ILSVRC2012_val_00000002.JPEG")
    assert len(str(raised.value)) < 200


def test_a_labels_file_is_parsed_once_per_content(tmp_path, monkeypatch):
    """igcli attribute checks --labels before loading the model and uses it after: one parse, not two (a
    million-line list takes seconds); a changed file is read again."""
    import igcli.labels as labels

    path = tmp_path / "val.txt"
    path.write_text("3\n0\n")
    reads = []
    real = labels.read_csv_rows
    monkeypatch.setattr(labels, "read_csv_rows", lambda *args: reads.append(args) or real(*args))
    assert LabelResolver(str(path))("ILSVRC2012_val_00000001.JPEG") == 3
    assert LabelResolver(str(path), num_classes=5)("ILSVRC2012_val_00000002.JPEG") == 0
    assert len(reads) == 1
    path.write_text("1\n2\n4\n")  # another size: parsed again
    assert LabelResolver(str(path), num_classes=5)("ILSVRC2012_val_00000003.JPEG") == 4
    assert len(reads) == 2
    with pytest.raises(InvalidArgumentError, match="look 1-based"):  # the model-dependent check still runs
        LabelResolver(str(path), num_classes=4)


def test_labels_must_be_a_regular_file_of_sensible_size(tmp_path, monkeypatch):
    import os

    import igcli.labels as labels

    os.mkfifo(tmp_path / "fifo")
    for path, message in [("/dev/zero", "not a regular file"), (tmp_path / "fifo", "not a regular file"),
                          (tmp_path, "is a folder"), (tmp_path / "missing", "No such file")]:
        with pytest.raises(InvalidArgumentError, match=message):
            LabelResolver(str(path))
    (tmp_path / "big.csv").write_text("a.jpg,0\n" * 200)
    monkeypatch.setattr(labels, "MAX_CSV_BYTES", 1000)
    with pytest.raises(InvalidArgumentError, match="more than igcli reads for it"):
        LabelResolver(str(tmp_path / "big.csv"))
