"""HDF5 shards: atomic completion, the index over them, reading back, and what resuming needs."""

from __future__ import annotations

import hashlib
import os

import h5py
import numpy as np
import pytest

from igcli.output import Output, locate_image
from igcli.store import (
    OutputError,
    ShardWriter,
    build_index,
    completed_inputs,
    list_shards,
    next_sequence,
    remove_partials,
)
from igcli.validate import DamagedShardError, check_shard, strings_digest

SETTINGS = {"method": "ig", "rule": "idgi", "steps": 4, "alphas": [0.25, 0.5, 0.75, 1.0], "labels": None,
            "model": "resnet18", "preprocessing": {"resize": 16, "crop": 16, "mean": [0.5] * 3, "std": [0.5] * 3,
                                                   "interpolation": "bilinear"}}


def rows(start: int, count: int) -> dict:
    maps = np.arange(start, start + count, dtype=np.float32)[:, None, None, None] * np.ones((1, 3, 4, 5), np.float32)
    return {
        "attributions": maps,
        "paths": [f"img{i}.jpg" for i in range(start, start + count)],
        "targets": np.arange(start, start + count, dtype=np.int64),
        "scores": np.full(count, 0.5, np.float32),
    }


def test_shards_appear_only_when_complete_and_hold_at_most_shard_size_rows(tmp_path):
    writer = ShardWriter(tmp_path, part=3, settings=SETTINGS, shard_size=4)
    writer.write(rows(0, 3))
    assert list_shards(tmp_path) == []  # still being written, under a hidden name
    assert [p.name for p in tmp_path.iterdir()] == [".shard-00003-00000.h5.partial"]
    writer.write(rows(3, 3))  # a batch across the boundary is split: 4 rows complete the shard, 2 go on
    assert [p.name for p in list_shards(tmp_path)] == ["shard-00003-00000.h5"]
    writer.skip("bad.jpg", "not an image")
    writer.write(rows(6, 1))
    writer.close()
    names = [p.name for p in list_shards(tmp_path)]
    assert names == ["shard-00003-00000.h5", "shard-00003-00001.h5"]
    with h5py.File(tmp_path / names[0]) as first, h5py.File(tmp_path / names[1]) as second:
        assert first["attributions"].shape == (4, 3, 4, 5) and first.attrs["rows"] == 4
        assert first["attributions"][:, 0, 0, 0].tolist() == [0, 1, 2, 3]
        assert second["attributions"][:, 0, 0, 0].tolist() == [4, 5, 6] and second.attrs["rows"] == 3
        assert [p.decode() for p in second["skipped/paths"][:]] == ["bad.jpg"]
        assert first.attrs["method"] == "ig" and first.attrs["labels"] == "none"
        assert list(first.attrs["alphas"]) == [0.25, 0.5, 0.75, 1.0]
    assert next_sequence(tmp_path, 3) == 2 and next_sequence(tmp_path, 0) == 0
    assert completed_inputs(list_shards(tmp_path)) == {f"img{i}.jpg" for i in range(7)} | {"bad.jpg"}


def test_index_links_all_shards_and_survives_moving_the_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for part, (start, count) in enumerate([(0, 2), (2, 3)]):
        writer = ShardWriter(out, part=part, settings=SETTINGS, shard_size=10)
        writer.write(rows(start, count))
        if part == 1:
            writer.skip("bad.png", "truncated")
        writer.close()
    build_index(out)
    moved = tmp_path / "moved"
    out.rename(moved)
    with h5py.File(moved / "index.h5") as index:
        assert index["attributions"].is_virtual
        assert index["attributions"][:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
        assert [p.decode() for p in index["paths"][:]] == [f"img{i}.jpg" for i in range(5)]
        assert index["shard"][:].tolist() == [0, 0, 1, 1, 1] and index["row"][:].tolist() == [0, 1, 0, 1, 2]
        assert [r.decode() for r in index["skipped/reasons"][:]] == ["truncated"]
        assert index.attrs["rows"] == 5


def test_output_reads_folders_index_and_shards(tmp_path):
    writer = ShardWriter(tmp_path, part=0, settings=SETTINGS, shard_size=2)
    writer.write(rows(0, 2))
    writer.write(rows(2, 1))
    writer.skip("x.jpg", "empty")
    writer.close()
    build_index(tmp_path)
    for source in (tmp_path, tmp_path / "index.h5"):
        output = Output(source)
        assert len(output) == 3 and output.settings == SETTINGS
        assert output.column("paths") == ["img0.jpg", "img1.jpg", "img2.jpg"]
        assert output.column("attributions").shape == (3, 3, 4, 5)
        assert output.skipped == [("x.jpg", "empty")]
    assert len(Output(list_shards(tmp_path)[1])) == 1


def test_leftover_partials_are_removed_per_part_and_errors_are_clear(tmp_path):
    for part in (0, 1):
        ShardWriter(tmp_path, part=part, settings=SETTINGS, shard_size=10).write(rows(0, 1))  # never closed
    assert remove_partials(tmp_path, 1) == [tmp_path / ".shard-00001-00000.h5.partial"]
    assert len(list(tmp_path.iterdir())) == 1
    with pytest.raises(OutputError, match="holds no complete igcli shards"):
        Output(tmp_path)
    with pytest.raises(OutputError, match="no such output"):
        Output(tmp_path / "nothing")


def shard_rows(folder) -> list[int]:
    return [check_shard(shard).rows for shard in list_shards(folder)]


def test_shard_size_is_a_maximum_and_an_image_s_rows_stay_together(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    writer = ShardWriter(one, part=0, settings=SETTINGS, shard_size=1)
    writer.write(rows(0, 3))  # one batch of 3 images
    writer.close()
    assert shard_rows(one) == [1, 1, 1]
    assert [Output(shard).column("paths") for shard in list_shards(one)] == [["img0.jpg"], ["img1.jpg"], ["img2.jpg"]]

    top = tmp_path / "top"  # top2 rows: img0, img0, img1, img1, img2, img2 in batches of 3 and 1 images
    top.mkdir()
    writer = ShardWriter(top, part=0, settings=SETTINGS, shard_size=3)
    for start, count in ((0, 3), (3, 1)):
        batch = {name: np.repeat(np.asarray(values, dtype=object if name == "paths" else None), 2, axis=0)
                 for name, values in rows(start, count).items()}
        batch["paths"] = list(batch["paths"])
        writer.write(batch)
    writer.close()
    # 3 rows would split an image: shards of 2 (one image) each; never an image across two shards.
    assert shard_rows(top) == [2, 2, 2, 2]
    assert [sorted(set(Output(shard).column("paths"))) for shard in list_shards(top)] == [
        ["img0.jpg"], ["img1.jpg"], ["img2.jpg"], ["img3.jpg"]]

    big = tmp_path / "big"  # an image with more rows than a shard holds gets a shard of its own
    big.mkdir()
    writer = ShardWriter(big, part=0, settings=SETTINGS, shard_size=2)
    writer.write({**rows(0, 1), "paths": ["a.jpg"]})
    writer.write({name: np.repeat(values, 3, axis=0) for name, values in rows(1, 1).items() if name != "paths"}
                 | {"paths": ["b.jpg"] * 3})
    writer.close()
    assert shard_rows(big) == [1, 3]


def test_absolute_paths_are_stored_beside_the_paths_as_given(tmp_path):
    writer = ShardWriter(tmp_path, part=0, settings=SETTINGS, shard_size=10, input_root="/data/run",
                         cwd="/data/run")
    writer.write({**rows(0, 3), "paths": ["a.jpg", "sub/../b.jpg", "/other/./c.jpg"]})
    writer.close()
    (shard,) = list_shards(tmp_path)
    with h5py.File(shard, "r") as handle:
        assert [p.decode() for p in handle["abs_paths"][:]] == ["/data/run/a.jpg", "/data/run/sub/../b.jpg",
                                                                "/other/c.jpg"]  # ".." kept: sub may be a link
        assert handle.attrs["input_root"] == "/data/run"
    info = check_shard(shard)
    assert info.rows == 3 and info.input_root == "/data/run"
    build_index(tmp_path)
    with h5py.File(tmp_path / "index.h5", "r") as index:
        assert index["abs_paths"][0].decode() == "/data/run/a.jpg"


def old_digest(handle) -> str:
    """The strings digest as igcli computed it before abs_paths (reimplemented here, not imported)."""
    digest = hashlib.sha256()
    for name in ("paths", "skipped/paths", "skipped/reasons"):
        for value in handle[name][:] if name in handle else []:
            digest.update(len(value).to_bytes(8, "little") + value)
        digest.update(b"|")
    return digest.hexdigest()


def make_old_shard(out, start: int, count: int) -> None:
    """A shard as the previous igcli wrote it: no abs_paths, no input_root, the old digest."""
    writer = ShardWriter(out, part=0, settings=SETTINGS, shard_size=100, first_sequence=start)
    writer.write(rows(start, count))
    writer.skip(f"bad{start}.jpg", "empty")
    writer.close()
    shard = list_shards(out)[-1]
    with h5py.File(shard, "r+") as handle:
        del handle["abs_paths"]
        handle.attrs["strings_sha256"] = old_digest(handle)


def test_shards_without_abs_paths_stay_readable_and_the_digest_covers_abs_paths(tmp_path):
    make_old_shard(tmp_path, 0, 2)
    old = list_shards(tmp_path)[0]
    with h5py.File(old, "r") as handle:
        assert strings_digest(handle) == handle.attrs["strings_sha256"]  # the same digest for old shards
    check_shard(old)  # neither abs_paths nor input_root, so no abs_paths_sha256 either: an old shard, fine
    writer = ShardWriter(tmp_path, part=0, settings=SETTINGS, shard_size=100, first_sequence=1, input_root="/r")
    writer.write(rows(2, 1))  # a resumed run: new shards beside old ones
    writer.skip("bad2.jpg", "empty")
    writer.close()
    with h5py.File(list_shards(tmp_path)[1], "r") as handle:
        # The old formula still holds for new shards, so an igcli from before abs_paths reads them.
        assert handle.attrs["strings_sha256"] == old_digest(handle)
        assert "abs_paths_sha256" in handle.attrs
    output = Output(tmp_path)
    assert output.column("paths") == ["img0.jpg", "img1.jpg", "img2.jpg"]
    build_index(tmp_path)
    with h5py.File(tmp_path / "index.h5", "r") as index:  # blanks where the old shard has no abs_paths
        assert [p.decode() for p in index["abs_paths"][:]] == ["", "", os.path.join(os.getcwd(), "img2.jpg")]
    new = list_shards(tmp_path)[1]
    with h5py.File(new, "r+") as handle:
        handle["abs_paths"][0] = b"/elsewhere/img2.jpg"  # one flipped path: another image's name
    with pytest.raises(DamagedShardError, match="do not match their SHA-256"):
        check_shard(new)
    with h5py.File(new, "r+") as handle:
        handle["abs_paths"][0] = os.path.join(os.getcwd(), "img2.jpg").encode()
        handle.attrs["input_root"] = "/s"
    with pytest.raises(DamagedShardError, match="do not match their SHA-256"):
        check_shard(new)
    with h5py.File(new, "r+") as handle:
        handle.attrs["input_root"] = "/r"
    check_shard(new)  # restored: whole again
    with h5py.File(new, "r+") as handle:  # the digest dropped: abs_paths and input_root go unchecked otherwise
        del handle.attrs["abs_paths_sha256"]
    with pytest.raises(DamagedShardError, match="abs_paths or input_root"):
        check_shard(new)
    with h5py.File(new, "r+") as handle:  # input_root alone, without its digest
        del handle["abs_paths"]
    with pytest.raises(DamagedShardError, match="abs_paths or input_root"):
        check_shard(new)


def test_locate_image_prefers_the_run_s_file_and_maps_root(tmp_path):
    run = tmp_path / "run"
    (run / "imgs").mkdir(parents=True)
    (run / "imgs" / "a.jpg").write_bytes(b"x")
    absolute = str(run / "imgs" / "a.jpg")
    # From any folder: the file the run read.
    assert locate_image("imgs/a.jpg", absolute, input_root=str(run / "imgs")) == absolute
    # It moved: the path as given, relative to the current folder (the whole tree moved, run from there).
    assert locate_image("imgs/a.jpg", str(tmp_path / "gone" / "a.jpg")) == "imgs/a.jpg"
    assert locate_image("imgs/a.jpg", None) == "imgs/a.jpg"  # shards before abs_paths
    # --root DIR stands for input_root: the path below it, joined onto DIR.
    assert locate_image("imgs/cat/a.jpg", "/scratch/u/imgs/cat/a.jpg", input_root="/scratch/u/imgs",
                        root="/project/u/data") == "/project/u/data/cat/a.jpg"
    assert locate_image("/scratch/u/imgs/a.jpg", "/scratch/u/imgs/a.jpg", input_root="/scratch/u/imgs",
                        root="/p") == "/p/a.jpg"  # absolute inputs alike
    # Without input_root (older shards): relative paths joined onto DIR, absolute ones unchanged.
    assert locate_image("imgs/a.jpg", None, root="/p") == "/p/imgs/a.jpg"
    assert locate_image("/x/a.jpg", None, root="/p") == "/x/a.jpg"
