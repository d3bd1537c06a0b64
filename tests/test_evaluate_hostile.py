"""Hostile tests of ``igcli evaluate`` at dataset scale (issue 14): real CLI runs on tiny outputs, each a minimal
reproducer of a defect found and fixed, or a guard of what held up under attack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cli_helpers import COMMON, ROOT, TINY, make_images, one_line, run_cli
from igcli.store import ShardWriter, build_index
from test_evaluate_parts import _result

SCORE = ["--model", TINY, "--device", "cpu", "--quiet", "--json"]


@pytest.fixture(scope="module")
def attributed(tmp_path_factory):
    """Four images attributed with the tiny model, one row each."""
    base = tmp_path_factory.mktemp("hostile")
    make_images(base / "imgs", 4, size=16)
    made = run_cli("attribute", str(base / "imgs"), "-o", str(base / "out"), *COMMON)
    assert made.returncode == 0, made.stderr
    return base / "out"


def _copy(out, target):
    shutil.copytree(out, target, ignore=shutil.ignore_patterns("evaluations"))
    return target


def _output_with_maps(base, maps):
    """An output of len(maps) random 16 x 16 images whose stored maps are ``maps`` (constant ones included)."""
    (base / "imgs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(len(maps)):
        path = base / "imgs" / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    settings = {"method": "ig", "rule": "riemann", "model": TINY, "weights": None, "weights_sha256": None,
                "output": "prob", "preprocessing": {"resize": 16, "crop": 16, "mean": [0.485, 0.456, 0.406],
                                                    "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}}
    out = base / "out"
    out.mkdir()
    writer = ShardWriter(out, 0, settings, shard_size=100)
    writer.write({"attributions": np.asarray(maps, np.float32), "paths": [str(p) for p in paths],
                  "targets": np.zeros(len(paths), np.int64), "scores": np.ones(len(paths), np.float32),
                  "baseline_scores": np.zeros(len(paths), np.float32),
                  "completeness_gap": np.full(len(paths), 0.01, np.float32)})
    writer.close()
    build_index(out)
    return out


def _maps_one_constant(index, count=3):
    maps = np.random.default_rng(1).random((count, 3, 16, 16))
    maps[index] = 0.5  # a constant map: no ranking, so insertion leaves it out (no curve for that row)
    return maps


# --- defects -------------------------------------------------------------------------------------------------


def test_a_batch_of_only_constant_maps_next_to_others_in_one_results_file(tmp_path):
    out = _output_with_maps(tmp_path, _maps_one_constant(2))
    run = run_cli("evaluate", str(out), "--metric", "insertion", *SCORE, "--batch-size", "1")
    result = _result(run)
    assert result["rows_scored"] == 3 and result["unrankable"] == 1


def test_a_batch_of_only_constant_maps_alone_is_fine(tmp_path):
    """Guard for the test above: the same maps in one batch (--batch-size 3) score, so the batching is what fails."""
    out = _output_with_maps(tmp_path, _maps_one_constant(2))
    result = _result(run_cli("evaluate", str(out), "--metric", "insertion", *SCORE, "--batch-size", "3"))
    assert result["rows_scored"] == 3 and result["unrankable"] == 1 and result["aggregate"]["insertion"]["count"] == 2


def test_a_part_whose_maps_are_all_constant_merges_with_the_other_parts(tmp_path):
    out = _output_with_maps(tmp_path, _maps_one_constant(0))
    from igcli.jobs.evaluate import EvaluateJob, evaluate, summarize

    def job(**kw):
        return EvaluateJob(out, ["insertion"], model=TINY, device="cpu", **kw)

    one = evaluate(job(results=tmp_path / "one"), quiet=True)
    for i in range(3):  # part 0 holds only img0, the constant map
        evaluate(job(shard=f"{i}/3"), quiet=True)
    (summary,) = summarize(out)
    _assert_same_scores(summary.rows, one.rows)


def _assert_same_scores(rows, expected):
    """The same rows and values, up to the float32 rounding of the model, which depends on which rows share a
    forward pass (a part's batches hold other images than one run's)."""
    assert [(r["path"], r["target"], r["ranked"]) for r in rows] == [(r["path"], r["target"], r["ranked"])
                                                                     for r in expected]
    for row, other in zip(rows, expected):
        assert row.keys() == other.keys()
        for key, value in row.items():
            if isinstance(value, float):
                assert value == pytest.approx(other[key], rel=1e-5, abs=1e-6), (row["path"], key)


def test_a_moved_output_keeps_its_evaluations(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "scratch")
    first = _result(run_cli("evaluate", str(out), "--metric", "gini", *SCORE))
    moved = tmp_path / "project"
    shutil.move(out, moved)
    summary = run_cli("evaluate", str(moved), "--summary", "--json")
    assert summary.returncode == 0, summary.stderr
    assert _result(summary)["rows"] == first["rows"]
    again = _result(run_cli("evaluate", str(moved), "--metric", "gini", *SCORE, "--resume"))
    assert again["scored_now"] == 0


def test_a_garbage_evaluation_json_does_not_hide_the_results(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "out")
    _result(run_cli("evaluate", str(out), "--metric", "gini", *SCORE))
    (folder,) = (out / "evaluations").iterdir()
    (folder / "evaluation.json").write_text("garbage")
    resumed = run_cli("evaluate", str(out), "--metric", "gini", *SCORE, "--resume")
    if resumed.returncode != 0:  # refusing is fine too, in one line naming the file
        assert "evaluation.json" in one_line(resumed.stderr)
        return
    summary = run_cli("evaluate", str(out), "--summary", "--json")
    assert summary.returncode == 0, summary.stderr
    assert _result(summary)["rows_scored"] == 4


def test_resume_repairs_a_damaged_file_left_by_another_part(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "out")
    for i in range(2):
        _result(run_cli("evaluate", str(out), "--metric", "gini", *SCORE, "--shard", f"{i}/2"))
    (folder,) = (out / "evaluations").iterdir()
    damaged = folder / "results-00001-00000.h5"
    damaged.write_bytes(damaged.read_bytes()[:200])  # truncated
    resumed = run_cli("evaluate", str(out), "--metric", "gini", *SCORE, "--resume")
    result = _result(resumed)
    assert result["complete"] and result["scored_now"] == 2


def test_summary_does_not_hang_on_a_fifo_named_evaluation_json(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "out")
    _result(run_cli("evaluate", str(out), "--metric", "gini", *SCORE))
    planted = out / "evaluations" / "planted"
    planted.mkdir()
    os.mkfifo(planted / "evaluation.json")
    try:
        summary = run_cli("evaluate", str(out), "--summary", "--json", timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("igcli evaluate --summary blocked on a FIFO named evaluation.json")
    assert summary.returncode == 0, summary.stderr


def test_an_out_of_range_mprt_seed_is_refused_in_one_line(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "out")
    run = run_cli("evaluate", str(out), "--metric", "mprt", "-O", "mprt.seed=99999999999999999999999", *SCORE,
                  "--limit", "1")
    assert run.returncode == 2 and "mprt.seed" in one_line(run.stderr)


def test_a_refused_road_percentage_is_named_once(attributed):
    run = run_cli("evaluate", str(attributed), "--metric", "road", "-O", "road.percentages=nan", *SCORE)
    assert run.returncode == 2
    assert one_line(run.stderr).count("got 'nan'") == 1, run.stderr


def test_an_interrupted_evaluation_says_how_to_go_on(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "out")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "IGCLI_TEST_SIGNAL": str(int(__import__("signal").SIGTERM))}
    # The model factory sends SIGTERM to the process while the model loads: the run stops, exit 143.
    model = str(ROOT / "tests" / "fixtures" / "tiny_model.py") + ":signal_while_exec"
    run = subprocess.run([sys.executable, "-m", "igcli", "evaluate", str(out), "--metric", "gini,insertion",
                          "--model", model, "--device", "cpu", "--quiet"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 143, run.stderr
    line = one_line(run.stderr)
    assert "evaluate" in line or ("attribute" not in line and "split" not in line), line


def test_parts_equal_one_run_with_small_batches(tmp_path):
    """Parts hold other images per batch than one run: equal up to the model's float32 rounding."""
    from igcli.jobs.evaluate import EvaluateJob, evaluate, summarize

    make_images(tmp_path / "imgs", 9, size=16)
    out = tmp_path / "out"
    made = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), "--model", TINY, "--resize", "16",
                   "--crop", "16", "--device", "cpu", "--workers", "0", "--quiet", "--method", "eg", "--samples", "4")
    assert made.returncode == 0, made.stderr

    def job(**kw):
        return EvaluateJob(out, ["deletion", "sensitivity", "jpeg-stability"], model=TINY, device="cpu",
                           batch_size=4, **kw)

    one = evaluate(job(results=tmp_path / "one"), quiet=True)
    for i in range(2):
        evaluate(job(shard=f"{i}/2"), quiet=True)
    (summary,) = summarize(out)
    _assert_same_scores(summary.rows, one.rows)


# --- guards: attacks that held up ----------------------------------------------------------------------------


def test_hostile_file_names_survive_results_csv_and_resume(tmp_path):
    names = [b"-lead dash.png", b"new\nline.png", b"bad\xff\xfe.png", b'sp ace,comma"q.png']
    folder = tmp_path / "imgs"
    folder.mkdir()
    for source, name in zip(make_images(tmp_path / "src", 4, size=16), names):
        shutil.copy(source, os.path.join(os.fsencode(folder), name))
    made = run_cli("attribute", str(folder), "-o", str(tmp_path / "out"), *COMMON)
    assert made.returncode == 0, made.stderr
    out = str(tmp_path / "out")
    first = _result(run_cli("evaluate", out, "--metric", "insertion,gini", *SCORE, "--csv", str(tmp_path / "a.csv")))
    assert first["rows_scored"] == 4
    from igcli.jobs.evaluate import EvaluateJob, evaluate

    again = evaluate(EvaluateJob(out, ["insertion", "gini"], model=TINY, device="cpu", resume=True), quiet=True)
    assert again.scored_now == 0 and json.loads(json.dumps(again.rows)) == first["rows"]
    summary = run_cli("evaluate", out, "--summary", "--quiet", "--csv", str(tmp_path / "b.csv"))
    assert summary.returncode == 0, summary.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert b"bad\xff\xfe.png" in (tmp_path / "a.csv").read_bytes()  # written back as its own bytes


@pytest.mark.parametrize("option", ["infidelity.noise=nan", "infidelity.noise=inf", "infidelity.noise=1e400",
                                    "infidelity.noise=", "infidelity.noise=a=b=c", "infidelity.samples=1e3",
                                    "infidelity.Noise=0.1", "pointing-game.tolerance=inf", "road.noise=inf"])
def test_hostile_option_values_are_refused_in_one_line(attributed, option):
    from igcli.errors import InvalidArgumentError
    from igcli.metrics.catalog import parse_metric_options

    metric = option.partition(".")[0]
    with pytest.raises(InvalidArgumentError) as refused:
        parse_metric_options([option], [metric])
    assert option.partition("=")[0].split(".")[1] in str(refused.value) and "\n" not in str(refused.value)


def test_a_hostile_option_value_on_the_command_line(attributed):
    run = run_cli("evaluate", str(attributed), "--metric", "infidelity", "-O", "infidelity.noise=1e400", *SCORE)
    assert run.returncode == 2 and "infidelity.noise" in one_line(run.stderr)


def test_a_planted_fifo_or_symlink_results_file_is_named(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "out")
    _result(run_cli("evaluate", str(out), "--metric", "gini", *SCORE))
    (folder,) = (out / "evaluations").iterdir()
    planted = folder / "results-00001-00000.h5"
    for make in (os.mkfifo, lambda p: os.symlink("/dev/zero", p), lambda p: os.symlink("/etc/hostname", p)):
        make(planted)
        summary = run_cli("evaluate", str(out), "--summary", timeout=30)
        assert summary.returncode == 6 and "results-00001-00000.h5" in one_line(summary.stderr)
        planted.unlink()


def test_a_full_disk_keeps_what_was_written_and_resume_completes(attributed, tmp_path):
    out = _copy(attributed, tmp_path / "out")
    command = [sys.executable, "-m", "igcli", "evaluate", str(out), "--metric", "insertion,deletion", *SCORE]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def small_files():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))  # evaluation.json fits, a results file does not
    full = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, preexec_fn=small_files,
                          timeout=120)
    assert full.returncode == 6 and "--resume" in one_line(full.stderr)
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert _result(resumed)["complete"]


def test_sigint_sigterm_sigkill_then_resume_equal_an_uninterrupted_run(tmp_path):
    """Signals at several moments of a run scoring one image per batch; the resumed result is bit-identical."""
    import signal
    import time

    make_images(tmp_path / "imgs", 6, size=16)
    out = tmp_path / "out"
    assert run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), *COMMON).returncode == 0
    base = [sys.executable, "-m", "igcli", "evaluate", str(out), "--metric", "insertion,gini",
            "--batch-size", "1", *SCORE]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.monotonic()  # how long a whole run takes, for the moments to signal at
    reference = _result(subprocess.run([*base, "--results", str(tmp_path / "ref")], capture_output=True, text=True,
                                       env=env, cwd=ROOT, timeout=120))
    duration = time.monotonic() - start
    for k, signum in enumerate((signal.SIGTERM, signal.SIGKILL)):  # SIGINT takes SIGTERM's path
        results = tmp_path / f"r{k}"
        process = subprocess.Popen([*base, "--results", str(results)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        time.sleep(duration * (0.75 + 0.08 * k))
        process.send_signal(signum)
        process.communicate(timeout=120)
        assert process.returncode in (0, 130, 143, -9)
        resumed = _result(subprocess.run([*base, "--results", str(results), "--resume"], capture_output=True,
                                         text=True, env=env, cwd=ROOT, timeout=120))
        assert resumed["rows"] == reference["rows"] and resumed["aggregate"] == reference["aggregate"]


def test_recomputing_metrics_recompute_the_stored_maps_of_ensembles_exactly(tmp_path):
    """Sensitivity with a radius far below float32 resolution is 0 only if the recomputed map is the stored one:
    Expected Gradients with SmoothGrad noise and top-2 rows, batches splitting an image's rows."""
    make_images(tmp_path / "imgs", 3, size=16)
    out = tmp_path / "out"
    made = run_cli("attribute", str(tmp_path / "imgs"), "-o", str(out), "--model", TINY, "--resize", "16", "--crop",
                   "16", "--device", "cpu", "--workers", "0", "--quiet", "--method", "eg", "--samples", "4",
                   "--target", "top2", "--noise-samples", "2")
    assert made.returncode == 0, made.stderr
    from igcli.jobs.evaluate import EvaluateJob, evaluate

    tiny_radius = ["sensitivity.radius=1e-12", "sensitivity.samples=1"]
    for batch in (1, 3):
        result = evaluate(EvaluateJob(out, ["sensitivity"], model=TINY, device="cpu", options=tiny_radius,
                                      batch_size=batch, results=tmp_path / str(batch)), quiet=True)
        assert [row["sensitivity"] for row in result.rows] == [0.0] * 6
    # guard: a real radius moves the maps
    moved = evaluate(EvaluateJob(out, ["sensitivity"], model=TINY, device="cpu", options=["sensitivity.samples=2"],
                                 results=tmp_path / "r"), quiet=True)
    assert all(row["sensitivity"] > 0 for row in moved.rows)
