"""``igcli attribute`` end to end, as a subprocess where it matters: shards, bad inputs, resume, parts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import igcli
from cli_helpers import ROOT, SUBPROCESS_ENV, TINY, TINY_ARGS, make_images, one_line, run_cli
from igcli.data import load_rgb, normalize, preprocess_pixels
from igcli.models import Preprocessing, load_model
from igcli.jobs import AttributeJob, run_attribute
from igcli.output import Output
from igcli.store import list_shards
from igcli.validate import check_shard


def read_all(out: Path) -> dict[str, dict]:
    """path -> row values, from the shards with plain h5py (the contract, not igcli's reader)."""
    found = {}
    for shard in sorted(out.glob("shard-*.h5")):
        with h5py.File(shard, "r") as handle:
            for i, path in enumerate(handle["paths"][:] if "paths" in handle else []):
                key = path.decode()
                assert key not in found, f"{key} stored twice"
                found[key] = {name: handle[name][i] for name in ("attributions", "targets", "scores",
                                                                 "baseline_scores", "completeness_gap")}
    return found


def test_end_to_end_shards_follow_the_contract_and_equal_the_library(tmp_path):
    paths = make_images(tmp_path / "imgs", 5)
    out = tmp_path / "out"
    result = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *TINY_ARGS, "--method", "ig", "--rule",
                     "idgi", "--steps", "8", "-b", "4", "--shard-size", "2", "--json", "-j", "1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["attributed"] == 5 and summary["skipped"] == [] and summary["exit_code"] == 0
    # Batches of 4 are split at the shard size: shards of 2, 2 and 1 rows.
    assert sorted(p.name for p in out.iterdir()) == ["index.h5", *(f"shard-00000-0000{i}.h5" for i in range(3))]
    assert [check_shard(shard).rows for shard in list_shards(out)] == [2, 2, 1]
    with h5py.File(out / "shard-00000-00000.h5", "r") as shard:
        attrs = dict(shard.attrs)
        assert shard["attributions"].shape == (2, 3, 16, 16) and shard["attributions"].dtype == np.float32
        assert shard["paths"].dtype.kind == "O" and shard["targets"].dtype == np.int64
        # The inputs as given (absolute here, as given so) and as absolute paths; the folder given.
        assert [p.decode() for p in shard["abs_paths"][:]] == [str(p) for p in paths[:2]]
        assert attrs["input_root"] == str(tmp_path / "imgs")
    for key in ("method", "rule", "path", "steps", "schedule", "model", "output", "igcli_version", "torch_version", "command"):
        assert key in attrs, key
    assert (attrs["method"], attrs["rule"], attrs["path"], attrs["steps"]) == ("ig", "idgi", "straight", 8)
    assert attrs["command"].startswith("igcli attribute")

    stored = read_all(out)
    assert sorted(stored) == [str(p) for p in paths]
    preprocessing = Preprocessing(16, 16)
    images = normalize(torch.stack([preprocess_pixels(load_rgb(str(p)), preprocessing) for p in paths]), preprocessing)
    model = load_model(TINY).module
    expected = igcli.attribute(model, images, method="ig", rule="idgi", steps=8, normalization=preprocessing.normalization)
    for i, path in enumerate(paths):
        row = stored[str(path)]
        np.testing.assert_allclose(row["attributions"], expected.attributions[i].numpy(), rtol=1e-5, atol=1e-7)
        assert row["targets"] == int(expected.targets[i])
        np.testing.assert_allclose(row["scores"], float(expected.scores[i]), rtol=1e-6)
        np.testing.assert_allclose(row["baseline_scores"], float(expected.baseline_scores[i]), rtol=1e-6)
        assert row["completeness_gap"] < 1e-5  # IDGI: complete by construction
    with h5py.File(out / "index.h5", "r") as index:
        assert index["attributions"].shape == (5, 3, 16, 16)
        np.testing.assert_array_equal(index["attributions"][4], stored[str(paths[4])]["attributions"])


def test_bad_inputs_are_skipped_with_reasons_and_the_rest_kept(tmp_path):
    folder = tmp_path / "imgs"
    good = make_images(folder, 3)
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(folder / "deep16.png")
    Image.new("L", (20, 20), 90).save(folder / "grey.png")
    Image.new("RGBA", (20, 20), (255, 0, 0, 128)).save(folder / "rgba.png")
    data = good[0].read_bytes() if good[0].suffix == ".jpg" else good[1].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.png").write_text("this is not a png")
    os.symlink(folder / "vanished.jpg", folder / "unreadable.jpg")
    out = tmp_path / "out"
    result = run_cli("attribute", str(folder), "-o", str(out), *TINY_ARGS, "--steps", "4", "-b", "3", "--json")
    assert result.returncode == 5, result.stderr  # documented: finished, some inputs skipped
    bad = {"truncated.jpg", "zero.jpg", "text.png", "unreadable.jpg"}
    for name in bad:
        assert any(line.startswith("skipped ") and name in line for line in result.stderr.splitlines()), name
    summary = json.loads(result.stdout)
    assert {Path(s["path"]).name for s in summary["skipped"]} == bad
    output = Output(out)
    assert {Path(p).name for p in output.column("paths")} == {p.name for p in good} | {
        "cmyk.jpg", "deep16.png", "grey.png", "rgba.png"}
    assert {Path(p).name: r for p, r in output.skipped}.keys() == bad
    with h5py.File(out / "index.h5", "r") as index:
        assert len(index["skipped/paths"]) == 4


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    make_images(tmp_path / "imgs", 12)
    common = ["attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "300", "-b", "1", "--shard-size", "1",
              "--workers", "0", "--quiet"]
    env = {**os.environ, **SUBPROCESS_ENV}
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "igcli", *common, "-o", str(killed)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list_shards(killed)) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = len(list_shards(killed))
    assert 3 <= finished_before < 12, "the run was not killed mid-way; make it slower"
    for shard in list_shards(killed):  # every visible shard is complete
        with h5py.File(shard, "r") as handle:
            assert handle.attrs["complete"]
    resumed = run_cli(*common, "-o", str(killed), "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["already_done"] == finished_before and summary["attributed"] == 12 - finished_before
    assert not any(name.endswith(".partial") for name in os.listdir(killed))

    clean = tmp_path / "clean"
    assert run_cli(*common, "-o", str(clean)).returncode == 0
    a, b = read_all(killed), read_all(clean)
    assert sorted(a) == sorted(b) and len(a) == 12
    for path in a:
        for name, value in b[path].items():
            np.testing.assert_array_equal(a[path][name], value)


def test_shards_of_a_split_job_add_up_to_one_run(tmp_path):
    make_images(tmp_path / "imgs", 7)
    common = ["attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "4", "--quiet", "-o", str(tmp_path / "split")]
    assert run_cli(*common, "--shard", "0/2").returncode == 0
    # The second part comes from SLURM's array variables, as in an sbatch --array=0-1 job.
    second = run_cli(*common, env={"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"})
    assert second.returncode == 0, second.stderr
    assert run_cli("attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "4", "--quiet", "-o",
                   str(tmp_path / "one")).returncode == 0
    split, one = read_all(tmp_path / "split"), read_all(tmp_path / "one")
    assert sorted(split) == sorted(one)
    for path in one:
        np.testing.assert_array_equal(split[path]["attributions"], one[path]["attributions"])
    assert {p.name[:11] for p in list_shards(tmp_path / "split")} == {"shard-00000", "shard-00001"}
    with h5py.File(tmp_path / "split" / "index.h5") as index:
        assert len(index["paths"]) == 7


def test_torchrun_two_ranks_split_the_inputs(tmp_path):
    make_images(tmp_path / "imgs", 5)
    env = {**os.environ, **SUBPROCESS_ENV}
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "igcli",
         "attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "4", "--quiet", "-o", str(tmp_path / "out")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name[:11] for p in list_shards(tmp_path / "out")} == {"shard-00000", "shard-00001"}
    stored = read_all(tmp_path / "out")
    assert len(stored) == 5
    with h5py.File(tmp_path / "out" / "index.h5") as index:  # written by rank 0 after both finished
        assert len(index["paths"]) == 5


def test_existing_output_is_refused_unless_resumed_or_overwritten(tmp_path):
    make_images(tmp_path / "imgs", 2)
    common = ["attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "2", "--quiet", "-o", str(tmp_path / "out")]
    assert run_cli(*common).returncode == 0
    again = run_cli(*common)
    assert again.returncode == 6
    assert again.stderr.strip().count("\n") == 0 and "not empty" in again.stderr and "--resume" in again.stderr
    nothing_new = run_cli(*common, "--resume", "--json")
    assert nothing_new.returncode == 0 and json.loads(nothing_new.stdout)["already_done"] == 2
    other = run_cli(*common, "--resume", "--method", "gig")
    assert other.returncode == 6 and "method='ig'" in other.stderr
    assert run_cli(*common, "--overwrite", "--method", "gig").returncode == 0
    assert Output(tmp_path / "out").settings["method"] == "gig" and len(Output(tmp_path / "out")) == 2


def test_stdin_list_and_plain_progress_lines(tmp_path):
    paths = make_images(tmp_path / "imgs", 3)
    listing = "\n".join(str(p) for p in paths[:2]) + "\n" + str(tmp_path / "missing.jpg") + "\n"
    result = run_cli("attribute", "-", *TINY_ARGS, "--steps", "2", "-o", str(tmp_path / "out"), input=listing)
    assert result.returncode == 5
    assert "skipped " + str(tmp_path / "missing.jpg") + ": file not found" in result.stderr
    assert "igcli attribute: 3/3 inputs (100.0%)" in result.stderr  # plain lines, not a bar, in a log
    assert "\x1b[" not in result.stderr
    assert Output(tmp_path / "out").column("paths") == [str(p) for p in paths[:2]]


def test_bad_options_give_one_line_and_the_documented_code(tmp_path):
    make_images(tmp_path / "imgs", 1)
    cases = [
        (["--method", "sg"], 2, "--method"),
        (["--target", "best"], 2, "--target"),
        (["--shard", "3/2"], 2, "--shard"),
        (["--max-sigma", "5"], 2, "max_sigma"),
        (["--model", "resnt50"], 4, "did you mean resnet50"),
        (["--model", TINY, "--weights", str(tmp_path / "nope.pth")], 4, "no such file"),
        (["--model", TINY, "--weights", str(tmp_path)], 4, "not a regular file"),
        (["--baseline", str(tmp_path / "nope.png")], 2, "--baseline"),
    ]
    for extra, code, text in cases:
        result = run_cli("attribute", str(tmp_path / "imgs"), *TINY_ARGS, "-o", str(tmp_path / f"o{code}"), *extra)
        assert result.returncode == code, (extra, result.stderr)
        assert text in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr


def test_shard_size_one_and_labels_from_a_validation_ground_truth_list(tmp_path):
    folder = tmp_path / "val"
    for number, path in enumerate(make_images(folder, 3, size=16), start=1):
        path.rename(folder / f"ILSVRC2012_val_{number:08d}{path.suffix}")
    make_images(folder, 1, size=16, prefix="holiday")
    truth = tmp_path / "val_labels.txt"
    truth.write_text("3\n0\n4\n")  # line N: image N, 0-based classes of the tiny model (5)
    result = run_cli("attribute", str(folder), "-o", str(tmp_path / "out"), *TINY_ARGS, "--steps", "2", "-j", "0",
                     "-b", "4", "--shard-size", "1", "--target", "label", "--labels", str(truth), "--json")
    assert result.returncode == 5, result.stderr  # the holiday photo has no validation number: a skip
    (skip,) = json.loads(result.stdout)["skipped"]
    assert skip["path"].endswith("holiday000.jpg") and "path,label CSV" in skip["reason"]
    out = tmp_path / "out"
    assert [check_shard(shard).rows for shard in list_shards(out)] == [1, 1, 1]  # one batch of 4, 1 row a shard
    targets = dict(zip(Output(out).column("paths"), Output(out).column("targets").tolist()))
    assert {Path(p).stem: t for p, t in targets.items()} == {f"ILSVRC2012_val_0000000{n}": t
                                                              for n, t in ((1, 3), (2, 0), (3, 4))}
    devkit = tmp_path / "ILSVRC2012_validation_ground_truth.txt"
    devkit.write_text("490\n361\n171\n")
    refused = run_cli("attribute", str(folder), "-o", str(tmp_path / "o2"), *TINY_ARGS, "--target", "label",
                      "--labels", str(devkit))
    assert refused.returncode == 2 and "ILSVRC2012_IDs" in one_line(refused.stderr), refused.stderr


# -- in process: options whose plumbing needs no subprocess ----------------------------------------------------


def job(tmp_path, name, **kwargs) -> AttributeJob:
    base = dict(inputs=[str(tmp_path / "imgs")], out=tmp_path / name, model=TINY, preprocessing={"resize": 16, "crop": 16},
                steps=4, device="cpu", workers=0)
    return AttributeJob(**{**base, **kwargs})


def test_targets_reduce_and_float16(tmp_path):
    labelled = tmp_path / "imgs"
    make_images(labelled / "3", 2, prefix="a")
    make_images(labelled / "1", 1, prefix="b")
    top = run_attribute(job(tmp_path, "top", target="top2"), quiet=True)
    assert top.attributed == 3 and top.rows == 6
    output = Output(tmp_path / "top")
    ranks, targets, paths = output.column("target_rank"), output.column("targets"), output.column("paths")
    assert ranks.tolist() == [0, 1] * 3 and paths[0] == paths[1] and targets[0] != targets[1]

    run_attribute(job(tmp_path, "label", target="label"), quiet=True)
    by_path = dict(zip(Output(tmp_path / "label").column("paths"), Output(tmp_path / "label").column("targets")))
    assert {Path(p).parent.name: int(t) for p, t in by_path.items()} == {"3": 3, "1": 1}

    run_attribute(job(tmp_path, "full", target="2"), quiet=True)
    run_attribute(job(tmp_path, "reduced", target="2", reduce="sum", dtype="float16"), quiet=True)
    full, reduced = Output(tmp_path / "full").column("attributions"), Output(tmp_path / "reduced").column("attributions")
    assert reduced.shape == (3, 16, 16) and reduced.dtype == np.float16
    np.testing.assert_allclose(reduced, full.sum(axis=1), rtol=2e-3, atol=1e-4)


def test_a_batch_with_one_non_finite_image_keeps_the_others(tmp_path):
    make_images(tmp_path / "imgs", 3)
    Image.new("RGB", (20, 20), (255, 255, 255)).save(tmp_path / "imgs" / "white.png")
    summary = run_attribute(job(tmp_path, "out", model=TINY.replace(":tiny", ":nan_on_bright"), batch_size=4), quiet=True)
    assert [Path(s["path"]).name for s in summary.skipped] == ["white.png"]
    assert "NaN" in summary.skipped[0]["reason"]
    assert summary.attributed == 3 and summary.exit_code == 5


def test_uniform_baseline_does_not_depend_on_batching(tmp_path):
    make_images(tmp_path / "imgs", 3)
    run_attribute(job(tmp_path, "b1", baseline="uniform", batch_size=1), quiet=True)
    run_attribute(job(tmp_path, "b3", baseline="uniform", batch_size=3), quiet=True)
    one_by_one, together = Output(tmp_path / "b1").column("attributions"), Output(tmp_path / "b3").column("attributions")
    # Equal up to float32 summation order (chunks differ); a batch-dependent baseline would differ by ~100%.
    np.testing.assert_allclose(one_by_one, together, rtol=1e-4, atol=1e-6 * np.abs(together).max())


def test_render_draws_every_row(tmp_path):
    make_images(tmp_path / "imgs", 2)
    run_attribute(job(tmp_path, "out"), quiet=True)
    result = run_cli("render", str(tmp_path / "out"), "-o", str(tmp_path / "png"), "--bare")
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "png").iterdir())
    assert [f.name.split("-")[0] for f in files] == ["00000", "00001"]
    with Image.open(files[0]) as picture:
        assert picture.size == (16 * 3 + 8, 16)  # crop | heatmap | overlay, at the model's resolution


def test_index_command_rebuilds_the_index(tmp_path):
    make_images(tmp_path / "imgs", 2)
    run_attribute(job(tmp_path, "out", shard_size=1, batch_size=1), quiet=True)
    (tmp_path / "out" / "index.h5").unlink()
    result = run_cli("index", str(tmp_path / "out"))
    assert result.returncode == 0 and "2 rows in 2 shards" in result.stderr
    with h5py.File(tmp_path / "out" / "index.h5") as index:
        assert len(index["paths"]) == 2
    assert run_cli("index", str(tmp_path / "nothing")).returncode == 6


def test_split_command_writes_split_shards_statistics_and_plots(tmp_path):
    make_images(tmp_path / "imgs", 3)
    out = tmp_path / "out"
    result = run_cli("split", str(tmp_path / "imgs"), "-o", str(out), *TINY_ARGS, "--psi", "0.9,0.95", "--steps", "8",
                     "--rule", "idgi", "--tolerance", "1e-8", "--json", "--plot", str(tmp_path / "plots"), "--quiet")
    assert result.returncode == 0, result.stderr
    statistics = json.loads(result.stdout)["statistics"]
    assert statistics["psis"] == [0.9, 0.95] and statistics["images"] == 3
    with h5py.File(out / "shard-00000-00000.h5") as shard:
        assert shard.attrs["method"] == "split-ig" and list(shard.attrs["psi"]) == [0.9, 0.95]
        assert shard["left"].shape == (3, 2, 3, 16, 16) and shard["right"].shape == (3, 2, 3, 16, 16)
        assert shard["alpha_star"].shape == (3, 2) and shard["curve_scores"].shape == (3, 8)
        found = shard["found"][:].astype(bool)
        change = shard["scores"][:].astype(np.float64) - shard["baseline_scores"][:]
        for i in np.flatnonzero(found[:, 0]):
            # IDGI: Left explains psi of the change, to the bisection's tolerance (and float32 storage).
            left_sum = shard["left"][i, 0].astype(np.float64).sum()
            assert left_sum == pytest.approx(0.9 * change[i], rel=1e-4)
        for name in ("ratio_l1", "ratio_l2", "cos_left_right", "cos_left_full", "cos_right_full"):
            assert shard[name].shape == (3, 2)
    means = statistics["means"]
    if any(statistics["found"]):
        assert 0 < means["alpha_star"][0] <= means["alpha_star"][1] < 1
    with h5py.File(out / "index.h5") as index:
        assert index["left"].is_virtual and index["alpha_star"].shape == (3, 2)
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert len([p for p in plots if p != "aggregate.png"]) == 3
    text = run_cli("split", str(tmp_path / "imgs"), "-o", str(out), *TINY_ARGS, "--psi", "0.9,0.95", "--steps", "8",
                   "--rule", "idgi", "--tolerance", "1e-8", "--resume")
    assert text.returncode == 0 and "Table 1" in text.stdout  # the Rich table, over what is in OUT
