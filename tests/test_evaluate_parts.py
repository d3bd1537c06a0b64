"""``igcli evaluate`` at dataset scale: parts, incremental results, --resume, --summary, and what it refuses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from cli_helpers import COMMON, ROOT, SUBPROCESS_ENV, TINY, make_images, one_line, run_cli
from igcli.cli.common import _Signals, _raise_keyboard_interrupt
from igcli.jobs.evaluate import EvaluateJob, evaluate, summarize
from igcli.results_store import check_results_file, list_results
from igcli.signals import note_received

METRICS = "insertion,sic,sensitivity,gini"
SCORE = ["--model", TINY, "--device", "cpu", "--quiet", "--json"]


@pytest.fixture(scope="module")
def attributed(tmp_path_factory):
    """Seven images attributed with the tiny model (top2: two rows per image)."""
    base = tmp_path_factory.mktemp("attributed")
    make_images(base / "imgs", 7, size=16)
    made = run_cli("attribute", str(base / "imgs"), "-o", str(base / "out"), *COMMON, "--target", "top2")
    assert made.returncode == 0, made.stderr
    return base / "out"


def _copy(out, tmp_path):
    target = tmp_path / "out"
    shutil.copytree(out, target, ignore=shutil.ignore_patterns("evaluations"))
    return target


def _result(completed):
    assert completed.returncode == 0, completed.stderr
    (result,) = json.loads(completed.stdout)["results"]
    return result


def test_two_parts_at_once_or_one_after_another_equal_one_run(attributed, tmp_path):
    out = _copy(attributed, tmp_path)
    one = _result(run_cli("evaluate", str(out), "--metric", METRICS, *SCORE, "--results", str(tmp_path / "one")))
    assert one["complete"] and one["rows_scored"] == 14 and len(one["rows"]) == 14
    env = {**os.environ, **SUBPROCESS_ENV}
    running = [subprocess.Popen([sys.executable, "-m", "igcli", "evaluate", str(out), "--metric", METRICS, *SCORE,
                                 "--shard", f"{i}/2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for process in running:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    summary = _result(run_cli("evaluate", str(out), "--summary", "--json"))
    for key in ("rows", "aggregate", "curves", "skipped", "unrankable"):
        assert summary[key] == one[key], key  # bit-identical: rows merged in the output's order
    # SLURM array variables split the same way as --shard, one part after the other
    later = _copy(attributed, tmp_path / "slurm")
    for task in ("7", "8"):
        part = evaluate(EvaluateJob(later, METRICS.split(","), model=TINY, device="cpu",
                                    environ={"SLURM_ARRAY_TASK_ID": task, "SLURM_ARRAY_TASK_MIN": "7",
                                             "SLURM_ARRAY_TASK_COUNT": "2"}), quiet=True).as_dict()
    assert part["complete"] and part["part"] == "1/2"
    assert json.loads(json.dumps(part["rows"])) == one["rows"]
    assert part["aggregate"] == one["aggregate"]
    folder = next((later / "evaluations").iterdir())
    assert sorted(p.name for p in list_results(folder)) == ["results-00000-00000.h5", "results-00001-00000.h5"]
    # torchrun's ranks too (on a machine without CUDA, on the CPU)
    ranks = _copy(attributed, tmp_path / "torchrun")
    for rank in ("0", "1"):
        part = evaluate(EvaluateJob(ranks, METRICS.split(","), model=TINY, device=None,
                                    environ={"RANK": rank, "WORLD_SIZE": "2", "LOCAL_RANK": rank}), quiet=True)
    assert part.part == "1/2" and part.complete and part.aggregate == one["aggregate"]


def test_a_part_reports_the_merged_results_so_far_and_resume_scores_only_the_rest(attributed, tmp_path):
    out = _copy(attributed, tmp_path)

    def job(**kw):
        return EvaluateJob(out, ["insertion"], model=TINY, device="cpu", **kw)

    first = _result(run_cli("evaluate", str(out), "--metric", "insertion", *SCORE, "--shard", "0/2"))
    assert not first["complete"] and first["rows_scored"] == 8 and first["rows_total"] == 14
    assert first["scored_now"] == 4
    again = run_cli("evaluate", str(out), "--metric", "insertion", *SCORE)
    assert again.returncode == 6 and "--resume" in one_line(again.stderr) and "--summary" in again.stderr
    rest = evaluate(job(resume=True), quiet=True)
    assert rest.complete and rest.scored_now == 3 and rest.rows_scored == 14
    nothing = evaluate(job(resume=True), quiet=True)
    assert nothing.scored_now == 0 and nothing.rows == rest.rows
    redone = evaluate(job(overwrite=True), quiet=True)
    assert redone.scored_now == 7 and redone.rows == rest.rows
    # --summary needs no model: the model file may be gone, the table still prints
    table = run_cli("evaluate", str(out), "--summary", env={"COLUMNS": "150"})
    assert table.returncode == 0 and "insertion_ratio" in table.stdout and "n=14" in table.stdout


def _raise_after(count: int, signum: int, patch) -> list[int]:
    """Send ``signum`` to this process after the ``count``-th file-system or HDF5 write step; returns a counter."""
    seen = [0]
    targets = [(h5py.Dataset, "__setitem__"), (h5py.AttributeManager, "__setitem__"), (h5py.File, "close"),
               (os, "replace"), (os, "fsync")]
    for owner, name in targets:
        original = getattr(owner, name)

        def wrapped(*args, _original=original, **kwargs):
            result = _original(*args, **kwargs)
            seen[0] += 1
            if seen[0] == count:
                os.kill(os.getpid(), signum)
            return result
        patch.setattr(owner, name, wrapped)
    return seen


def _values(folder) -> dict:
    found = {}
    for path in list_results(folder):
        check_results_file(path, read_data=True)
        with h5py.File(path, "r") as handle:
            for i, (name, target) in enumerate(zip(handle["paths"][:], handle["targets"][:])):
                key = (name.decode(), int(target))
                assert key not in found, f"{key} twice"
                found[key] = tuple(float(handle["values"][v][i]) for v in sorted(handle["values"]))
    return found


def test_sigterm_or_sigint_at_every_write_step_loses_nothing(attributed, tmp_path, monkeypatch):
    def job(out, **kw):
        return EvaluateJob(out, ["insertion", "gini"], model=TINY, device="cpu", batch_size=2, file_rows=3, **kw)

    previous = {signum: signal.signal(signum, _raise_keyboard_interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        clean_out = _copy(attributed, tmp_path / "clean")
        with monkeypatch.context() as patch:
            counter = _raise_after(0, signal.SIGTERM, patch)
            clean = evaluate(job(clean_out), quiet=True)
        clean_values = _values(clean.folder)
        assert len(clean_values) == 14 and counter[0] > 30
        points = sorted(set(range(1, counter[0] + 1, max(1, counter[0] // 16))))
        for number, at in enumerate(points):
            out = _copy(attributed, tmp_path / f"run{at}")
            _Signals.received = None
            note_received(None)
            with monkeypatch.context() as patch:
                _raise_after(at, signal.SIGINT if number % 2 else signal.SIGTERM, patch)
                try:
                    stopped = evaluate(job(out), quiet=True)
                    assert stopped.interrupted, at
                except KeyboardInterrupt:  # arrived after the last batch, while reading back: files whole
                    pass
            evaluations = out / "evaluations"  # made once the model and output are read
            partial = _values(next(evaluations.iterdir())) if evaluations.is_dir() else {}
            assert set(partial) <= set(clean_values) and all(partial[k] == clean_values[k] for k in partial)
            _Signals.received = None  # as the CLI does at the start of each command
            note_received(None)
            resumed = evaluate(job(out, resume=True), quiet=True)
            assert _values(resumed.folder) == clean_values, at
            assert resumed.rows == clean.rows and resumed.complete
    finally:
        _Signals.received = None
        note_received(None)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_damaged_and_foreign_results_files_are_named(attributed, tmp_path):
    from igcli.validate import DamagedShardError

    out = _copy(attributed, tmp_path)
    evaluate(EvaluateJob(out, ["insertion"], model=TINY, device="cpu"), quiet=True)
    folder = next((out / "evaluations").iterdir())
    (results_file,) = list_results(folder)
    data = bytearray(results_file.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    results_file.write_bytes(bytes(data))
    summary = run_cli("evaluate", str(out), "--summary")
    assert summary.returncode == 6 and results_file.name in one_line(summary.stderr)
    healed = evaluate(EvaluateJob(out, ["insertion"], model=TINY, device="cpu", resume=True), quiet=True)
    assert healed.complete and healed.scored_now == 7
    assert any(p.name.endswith(".damaged") for p in folder.iterdir())
    # a results file of another evaluation copied in beside them
    other = evaluate(EvaluateJob(out, ["gini"], model=TINY, device="cpu"), quiet=True)
    (foreign,) = list_results(other.folder)
    shutil.copy(foreign, folder / "results-00003-00000.h5")
    with pytest.raises(DamagedShardError, match="another evaluation"):
        summarize(out, metrics=["insertion"])


def test_refusals_are_one_line_each(attributed, tmp_path):
    from igcli.errors import InvalidArgumentError
    from igcli.validate import OutputError

    out = _copy(attributed, tmp_path)
    cases = [  # library calls (the CLI maps each error class to its exit code: tests/test_cli_messages.py)
        (dict(metrics=["insertoin"]), InvalidArgumentError, "did you mean insertion"),
        (dict(metrics=["sensitivity"], options=["sensitivity.radius=-1"]), InvalidArgumentError, "sensitivity.radius"),
        (dict(metrics=["sensitivity"], options=["sensitivity.radious=1"]), InvalidArgumentError, "no such option"),
        (dict(metrics=["insertion"], options=["sensitivity.radius=0.1"]), InvalidArgumentError, "not among --metric"),
        (dict(metrics=["insertion"], options=["radius=0.1"]), InvalidArgumentError, "METRIC.OPTION=VALUE"),
        (dict(metrics=["insertion"], resume=True, overwrite=True), InvalidArgumentError, "contradict"),
        (dict(metrics=["pointing-game"]), InvalidArgumentError, "--masks"),
        (dict(metrics=["sic-msssim"]), InvalidArgumentError, "161 pixels"),
        (dict(metrics=["insertion"], shard="2/2"), InvalidArgumentError, "--shard"),
    ]
    for settings, error, text in cases:
        with pytest.raises(error, match=text.replace(".", r"\.")):
            evaluate(EvaluateJob(out, model=TINY, device="cpu", **settings), quiet=True)
    assert not (out / "evaluations").exists() or not any(
        list_results(f) for f in (out / "evaluations").iterdir())  # nothing written by a refusal
    with pytest.raises(OutputError, match="no evaluation results"):
        summarize(out)
    for args, code, text in [(["--metric", "insertoin"], 2, "did you mean insertion"),
                             (["--summary"], 6, "no evaluation results")]:
        result = run_cli("evaluate", str(out), *args, "--model", TINY, "--device", "cpu", "--quiet")
        assert result.returncode == code and text in one_line(result.stderr), (args, result.stderr)


def test_an_unusable_output_folder_points_to_results(attributed, tmp_path):
    out = _copy(attributed, tmp_path)
    (out / "evaluations").write_text("not a folder")  # as a read-only OUT, for a test run as root too
    refused = run_cli("evaluate", str(out), "--metric", "insertion", *SCORE)
    assert refused.returncode == 6 and "--results DIR" in one_line(refused.stderr)
    elsewhere = evaluate(EvaluateJob(out, ["insertion"], model=TINY, device="cpu", results=tmp_path / "mine"),
                         quiet=True)
    assert elsewhere.complete and elsewhere.folder.startswith(str(tmp_path / "mine"))


def test_results_elsewhere_and_a_summary_per_evaluation(attributed, tmp_path):
    out = _copy(attributed, tmp_path)
    elsewhere = tmp_path / "scratch"
    signed = evaluate(EvaluateJob(out, ["insertion"], model=TINY, device="cpu", results=elsewhere), quiet=True)
    absolute = evaluate(EvaluateJob(out, ["insertion"], rank="abs", model=TINY, device="cpu", results=elsewhere),
                        quiet=True)
    assert signed.folder != absolute.folder and not (out / "evaluations").exists()
    both = summarize(out, results=elsewhere)
    assert sorted(r.rank for r in both) == ["abs", "signed"]
    just_abs = json.loads(run_cli("evaluate", str(out), "--summary", "--json", "--rank", "abs", "--results",
                                  str(elsewhere)).stdout)
    assert [r["aggregate"] for r in just_abs["results"]] == [json.loads(json.dumps(absolute.aggregate))]


def test_the_registry_is_complete_and_listed(tmp_path):
    from igcli.metrics.catalog import METRICS, all_metrics, list_metrics

    values = [value.name for metric in all_metrics() for value in metric.values]
    assert len(values) == len(set(values))  # a value name says which metric it comes from
    for metric in all_metrics():
        assert metric.summary and metric.reference and metric.family and metric.values
        assert not (metric.recomputes and not metric.needs_model)
        for option in metric.options:
            assert option.convert(option.default, metric.name) == option.default
    listed = json.loads(run_cli("metrics", "--json").stdout)["metrics"]
    assert [m["name"] for m in listed] == list(METRICS) == [m["name"] for m in list_metrics()]
    assert run_cli("metrics", "nope*").returncode == 2
    help_text = run_cli("evaluate", "--help", env={"COLUMNS": "300"}).stdout
    assert all(name in help_text for name in METRICS)


def test_every_metric_runs_through_the_job(tmp_path):
    from igcli.metrics.catalog import METRICS

    make_images(tmp_path / "imgs", 3, size=16)
    masks = tmp_path / "masks"
    masks.mkdir()
    from PIL import Image

    for image in (tmp_path / "imgs").iterdir():
        mask = np.zeros((16, 16), np.uint8)
        mask[:8, :8] = 255
        Image.fromarray(mask).save(masks / f"{image.stem}.png")
    from igcli.jobs import AttributeJob, run_attribute
    from igcli.metrics.catalog import get_metric

    run_attribute(AttributeJob(inputs=[str(tmp_path / "imgs")], out=tmp_path / "out", model=TINY, steps=4,
                               preprocessing={"resize": 16, "crop": 16}, device="cpu", workers=0), quiet=True)
    names = [m for m in METRICS if "msssim" not in m]  # MS-SSIM needs crops over 160 pixels
    result = evaluate(EvaluateJob(tmp_path / "out", names, model=TINY, device="cpu", masks=str(masks),
                                  options=["road.percentages=5", "mprt.layers=2"]), quiet=True)
    for name in names:
        for value in get_metric(name).value_names:
            assert result.aggregate[value]["count"] + result.aggregate[value].get("unscorable", 0) == 3, value


def test_the_readme_table_of_metrics_is_generated_from_the_registry():
    from igcli.metrics.catalog import readme_with_metrics

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_metrics(text) == text, "run python -m igcli.cli.docs"


def test_a_batch_without_ranked_maps_keeps_the_results_file_rectangular(tmp_path):
    """A batch whose maps are all constant gives the ranking metrics no rows (no curves): the file it shares
    with other batches gets NaN there, and the merged curves stay aligned with their rows."""
    from PIL import Image

    from test_evaluate import REGION, write_output

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i in range(4):
        paths.append(folder / f"img{i}.png")
        Image.fromarray(rng.integers(150, 256, (16, 16, 3), dtype=np.uint8)).save(paths[-1])
    maps = rng.random((4, 3, 16, 16))
    maps[0] = 0.5  # constant: no ranking, and alone in its batch
    write_output(tmp_path / "out", paths, maps, "ig")
    result = evaluate(EvaluateJob(tmp_path / "out", ["insertion", "gini"], model=REGION, device="cpu", batch_size=1),
                      quiet=True)
    assert result.unrankable == 1 and result.aggregate["insertion"]["count"] == 3
    assert result.aggregate["gini"]["count"] == 4  # gini needs no ranking
    assert result.curves["insertion"].shape == (4, 21) and np.isnan(result.curves["insertion"][0]).all()
    assert np.isfinite(result.curves["insertion"][1:]).all()


def test_the_seed_reaches_every_torch_draw_and_seed_0_draws_as_before():
    """A torch CPU generator keeps the low 32 bits of its seed: --seed (the high bits of a path seed) changed
    nothing before igcli folded it in (uniform baselines, max-sensitivity, closed-path, infidelity, ROAD)."""
    import torch

    from igcli.metrics.max_sensitivity import sensitivity_noise
    from igcli.text import path_seed, torch_seed

    seeds = {seed: [path_seed(seed, "img.png")] for seed in (0, 7, 8)}
    draws = {seed: sensitivity_noise(values, (3, 4, 4), 2, 0.05) for seed, values in seeds.items()}
    assert not torch.equal(draws[7], draws[8]) and not torch.equal(draws[0], draws[7])
    before = torch.rand((2, 3, 4, 4), generator=torch.Generator().manual_seed(path_seed(0, "img.png")))
    assert torch.equal(draws[0][0], (before * 2 - 1) * 0.05)  # seed 0: the draws of earlier versions
    assert torch_seed(path_seed(7, "a")) != torch_seed(path_seed(8, "a"))
    from igcli.batch_baselines import _uniform_baselines
    from igcli.models import LoadedModel, Preprocessing

    loaded = LoadedModel("m", torch.nn.Identity(), Preprocessing.from_dict(
        {"resize": 4, "crop": 4, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear"}))
    uniform = {seed: _uniform_baselines(["img.png"], seed, torch.Size((3, 4, 4)), loaded, torch.device("cpu"))
               for seed in (7, 8)}
    assert not torch.equal(uniform[7], uniform[8])  # --baseline uniform --seed S: the seed is heard


def test_overwrite_in_parts_replaces_a_run_split_another_way(attributed, tmp_path):
    """The hostile tester's case: --overwrite --shard 1/2 after a one-part run left that run's file, whose rows
    of part 1's images won the merge over the new ones."""
    out = _copy(attributed, tmp_path)
    first = evaluate(EvaluateJob(out, ["gini"], options=["gini.features=pixels"]), quiet=True)
    for i in range(2):
        again = evaluate(EvaluateJob(out, ["gini"], options=["gini.features=pixels"], shard=f"{i}/2",
                                     overwrite=True), quiet=True)
    assert again.complete and again.rows == first.rows
    files = list_results(again.folder)
    assert len(files) == 2 and {check_results_file(p).settings["part_count"] for p in files} == {2}
