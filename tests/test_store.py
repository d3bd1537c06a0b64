"""HDF5 shards: atomic completion, the index over them, reading back, and what resuming needs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from igcli.output import Output
from igcli.store import (
    OutputError,
    ShardWriter,
    build_index,
    completed_inputs,
    list_shards,
    next_sequence,
    remove_partials,
)

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
