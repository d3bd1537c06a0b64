"""Damaged, crafted and hostile files in an output folder or among the inputs: named in one line, never
followed, and repaired by ``--resume``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from cli_helpers import COMMON, TINY, make_images, one_line, run_cli, shard_settings, stored_paths
from igcli.output import Output
from igcli.store import ShardWriter


# -- hostile names, damaged and crafted files ----------------------------------------------------------------------


def test_a_non_utf8_file_name_is_stored_losslessly(tmp_path):
    folder = tmp_path / "imgs"
    paths = make_images(folder, 3)
    odd = os.path.join(os.fsencode(folder), b"caf\xe9-\xff.png")
    shutil.copy(paths[1], odd)
    out = tmp_path / "out"
    result = run_cli("attribute", str(folder), "-o", str(out), *COMMON, "-b", "4")
    assert result.returncode == 0, result.stderr
    expected = sorted([str(p) for p in paths] + [os.fsdecode(odd)])
    assert sorted(stored_paths(out)) == expected
    assert sorted(Output(out).column("paths")) == expected  # the reader gives the name back as Python spells it
    with h5py.File(out / "index.h5", "r") as index:
        assert odd in list(index["paths"][:])  # the file name's own bytes
    again = run_cli("attribute", str(folder), "-o", str(out), *COMMON, "--resume", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["already_done"] == 4


def test_a_truncated_shard_is_named_and_resume_redoes_its_images(tmp_path):
    paths = make_images(tmp_path / "imgs", 6)
    out = tmp_path / "out"
    args = ["attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON, "--shard-size", "2", "-b", "2"]
    assert run_cli(*args).returncode == 0
    damaged = out / "shard-00000-00001.h5"
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 2)
    for command in (["index", str(out)], ["evaluate", str(out), "--metric", "completeness"],
                    ["render", str(out), "-o", str(tmp_path / "png")]):
        result = run_cli(*command)
        assert result.returncode == 6, (command, result.stderr)
        assert str(damaged) in one_line(result.stderr) and "truncated" in result.stderr
    resumed = run_cli(*args, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["attributed"] == 2
    assert "moved damaged shard shard-00000-00001.h5 aside" in resumed.stderr
    assert (out / "shard-00000-00001.h5.damaged").is_file()  # kept, not deleted
    assert sorted(stored_paths(out)) == sorted(str(p) for p in paths)
    assert run_cli("index", str(out)).returncode == 0


CRAFTED = {
    "bad settings_json": lambda h: h.attrs.__setitem__("settings_json", "{not json"),
    "settings not an object": lambda h: h.attrs.__setitem__("settings_json", "[1, 2]"),
    "no preprocessing": lambda h: h.attrs.__setitem__("settings_json", json.dumps({"method": "ig", "model": "x"})),
    "missing attributions": lambda h: h.__delitem__("attributions"),
    "short targets": lambda h: (h.__delitem__("targets"), h.create_dataset("targets", data=np.zeros(1, np.int64))),
    "string maps": lambda h: (h.__delitem__("attributions"),
                              h.create_dataset("attributions", data=np.array([b"a", b"b"], dtype=object),
                                               dtype=h5py.string_dtype())),
    "rows not a count": lambda h: h.attrs.__setitem__("rows", "two"),
    "no complete mark": lambda h: h.attrs.__delitem__("complete"),
    "unpaired skips": lambda h: h.create_group("skipped").create_dataset("paths", data=np.array([b"x"], dtype=object),
                                                                         dtype=h5py.string_dtype()),
}


def _crafted(tmp_path: Path, damage) -> tuple[Path, Path]:
    """An output folder with one shard, then ``damage(handle)`` done to it: (folder, shard)."""
    paths = make_images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    out.mkdir()
    writer = ShardWriter(out, 0, {**shard_settings(), "model": TINY}, shard_size=10)
    writer.write({"attributions": np.ones((2, 3, 8, 8), np.float32), "paths": [str(p) for p in paths],
                  "targets": np.zeros(2, np.int64), "scores": np.ones(2, np.float32)})
    writer.close()
    shard = out / "shard-00000-00000.h5"
    with h5py.File(shard, "r+") as handle:
        damage(handle)
    return out, shard


def _every_reader_names(out: Path, shard: Path, tmp_path: Path) -> None:
    """index, evaluate and render (as the library: the CLI turns the same error into one line, exit 6)."""
    from igcli.jobs.evaluate import EvaluateJob, evaluate
    from igcli.render import render_output
    from igcli.store import build_index
    from igcli.validate import DamagedShardError

    for read in (lambda: build_index(out), lambda: evaluate(EvaluateJob(out, ["completeness"]), quiet=True),
                 lambda: render_output(out, tmp_path / "png"), lambda: Output(out)):
        with pytest.raises(DamagedShardError) as caught:
            read()
        assert caught.value.path == shard and caught.value.exit_code == 6


@pytest.mark.parametrize("damage", list(CRAFTED))
def test_crafted_shards_are_named_by_every_reader(tmp_path, damage):
    out, shard = _crafted(tmp_path, CRAFTED[damage])
    _every_reader_names(out, shard, tmp_path)


def test_a_crafted_shard_is_one_line_and_exit_6_for_each_command(tmp_path):
    out, shard = _crafted(tmp_path, CRAFTED["short targets"])
    for command in (["index", str(out)], ["evaluate", str(out), "--metric", "completeness"],
                    ["render", str(out), "-o", str(tmp_path / "png")]):
        result = run_cli(*command)
        assert result.returncode == 6, (command, result.stderr)
        assert str(shard) in one_line(result.stderr)


def _flip(path: Path, dataset: str) -> None:
    """Flip one byte in the middle of ``dataset``'s first chunk."""
    with h5py.File(path, "r") as handle:
        offset = handle[dataset].id.get_chunk_info(0).byte_offset + 4
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("dataset", ["attributions", "scores", "paths"])
def test_flipped_bytes_inside_a_shard_are_found_and_resume_redoes_them(tmp_path, dataset):
    paths = make_images(tmp_path / "imgs", 6)
    out = tmp_path / "out"
    args = ["attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON, "--shard-size", "2", "-b", "2"]
    assert run_cli(*args).returncode == 0
    damaged = out / "shard-00000-00001.h5"
    if dataset == "paths":  # strings have no HDF5 checksum: igcli's SHA-256 over them must catch it
        data = bytearray(damaged.read_bytes())
        at = data.find(os.fsencode(paths[2].name))
        data[at + 3] ^= 1
        damaged.write_bytes(bytes(data))
    else:
        _flip(damaged, dataset)
    from igcli.render import render_output
    from igcli.store import build_index
    from igcli.validate import DamagedShardError

    render, index = (lambda: render_output(out, tmp_path / "png")), (lambda: build_index(out))
    # The index copies the small datasets and links the maps; render reads the maps and paths.
    for read in {"attributions": [render], "scores": [index], "paths": [render, index]}[dataset]:
        with pytest.raises(DamagedShardError) as caught:
            read()
        assert caught.value.path == damaged
    resumed = run_cli(*args, "--resume", "--json")
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["attributed"] == 2, resumed.stderr
    assert (out / "shard-00000-00001.h5.damaged").is_file()
    assert sorted(stored_paths(out)) == sorted(str(p) for p in paths)


LINKS = {
    "virtual maps reading their own file": lambda h, other: _virtual_self(h),
    "external link": lambda h, other: (h.__delitem__("scores"),
                                       h.__setitem__("scores", h5py.ExternalLink(str(other), "/scores"))),
    "soft link loop": lambda h, other: (h.__setitem__("a", h5py.SoftLink("/b")), h.__setitem__("b", h5py.SoftLink("/a"))),
}


def _virtual_self(handle: h5py.File) -> None:
    shape = handle["attributions"].shape
    del handle["attributions"]
    layout = h5py.VirtualLayout(shape=shape, dtype=np.float32)
    layout[:] = h5py.VirtualSource(".", "attributions", shape=shape)
    handle.create_virtual_dataset("attributions", layout)


@pytest.mark.parametrize("kind", list(LINKS))
def test_links_inside_a_shard_are_refused_not_followed(tmp_path, kind):
    other = tmp_path / "elsewhere.h5"
    with h5py.File(other, "w") as handle:
        handle["scores"] = np.zeros(2, np.float32)
    out, shard = _crafted(tmp_path, lambda handle: LINKS[kind](handle, other))
    _every_reader_names(out, shard, tmp_path)  # (virtual maps reading their own file crashed HDF5 before)


def test_a_fifo_named_like_a_shard_is_reported_not_waited_on(tmp_path):
    make_images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    assert run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON).returncode == 0
    os.mkfifo(out / "shard-00000-00009.h5")
    result = run_cli("index", str(out), timeout=60)
    assert result.returncode == 6 and "not a regular file" in one_line(result.stderr)


def test_overwrite_checks_before_deleting(tmp_path):
    make_images(tmp_path / "imgs", 2)
    out = tmp_path / "out"
    assert run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON).returncode == 0
    (out / "shard-00000-00009.h5").mkdir()
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON, "--overwrite")
    assert result.returncode == 6 and "is a folder" in one_line(result.stderr)
    assert (out / "shard-00000-00000.h5").is_file() and (out / "index.h5").is_file()  # nothing deleted


def test_hostile_names_render_and_export(tmp_path):
    folder = tmp_path / "imgs"
    source = make_images(folder, 1)[0]
    names = [b"x" * 250 + b".png", b"new\nline\tand tab.png", b"caf\xe9.png", b"-dash.png"]
    for name in names:
        shutil.copy(source, os.path.join(os.fsencode(folder), name))
    out = tmp_path / "out"
    assert run_cli("attribute", str(folder), "-o", str(out), *COMMON).returncode == 0
    render = run_cli("render", str(out), "-o", str(tmp_path / "png"), "--quiet")
    assert render.returncode == 0, render.stderr
    pngs = sorted(os.listdir(tmp_path / "png"))
    assert len(pngs) == 5 and all("\n" not in name and "\t" not in name and len(name) < 120 for name in pngs)
    export = run_cli("evaluate", str(out), "--metric", "completeness", "--csv", str(tmp_path / "rows.csv"), "--quiet")
    assert export.returncode == 0, export.stderr
    assert b"caf\xe9.png" in (tmp_path / "rows.csv").read_bytes()  # the name's own bytes, as given
