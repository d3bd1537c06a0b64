"""RiemannOpt calibration: the |g'| estimate against a closed form, the optimiser, the schedule file."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from cli_helpers import TINY_ARGS, make_images, run_cli
from fixtures.analytic import TanhRidge
from igcli.calibrate import ErrorBound, density_start, interpolator, optimize_partition, probe_derivative
from igcli.schedules import ScheduleFileError, read_schedule_file, write_schedule_file


@pytest.fixture
def ridge():
    model = TanhRidge()
    x = torch.rand((1, 3, 6, 6), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    total = float((x * model.w).sum().detach())
    model.c = 0.6 * total  # the ridge is crossed at alpha = 0.6 ...
    model.a = 20.0 / abs(total)  # ... within about 0.05 of it
    return model, x


def test_the_probe_matches_the_closed_form_derivative(ridge):
    model, x = ridge
    probe = probe_derivative(model, x, 0, method="ig", probe_steps=257, output="logit", device="cpu", batch_size=64)
    assert probe.per_image.shape == (1, 256)
    exact = model.exact_mean_abs_derivative(x, probe.alphas)
    # Centred difference quotients: second-order accurate at the interval midpoints.
    np.testing.assert_allclose(probe.per_image[0], exact, rtol=2e-3, atol=1e-4 * exact.max())
    median = probe_derivative(model, x, 0, method="ig", probe_steps=33, statistic="median", output="logit", device="cpu")
    assert median.per_image.shape == (1, 32) and np.all(median.per_image >= 0)


def test_guided_ig_on_the_straight_line_probes_like_ig(ridge):
    model, x = ridge
    ig = probe_derivative(model, x, 0, method="ig", probe_steps=17, output="logit", device="cpu")
    gig = probe_derivative(model, x, 0, method="gig", probe_steps=17, output="logit", device="cpu", max_dist=0.0,
                           fraction=1.0)
    # Guided IG's integrand is taken per step (k - 1 of them), so it has one difference fewer.
    np.testing.assert_allclose(gig.alphas, ig.alphas[:-1])
    np.testing.assert_allclose(gig.per_image[0], ig.per_image[0, :-1], rtol=1e-9)


def test_schedule_concentrates_where_the_integrand_changes_and_beats_uniform(ridge):
    model, x = ridge
    probe = probe_derivative(model, x, 0, method="ig", probe_steps=129, output="logit", device="cpu", batch_size=64)
    curve = interpolator(probe.alphas, probe.per_image[0])
    result = optimize_partition(curve, 16)
    assert result.objective_powell <= result.objective_start <= result.objective_uniform
    assert result.objective == min(result.objective_powell, result.objective_start, result.objective_uniform)
    assert result.objective < 0.5 * result.objective_uniform
    widths = np.diff(result.alphas)
    near_ridge = (result.alphas[:-1] > 0.45) & (result.alphas[:-1] < 0.75)
    assert widths[near_ridge].mean() < 0.5 * widths[~near_ridge].mean()  # denser where |g'| is large
    assert result.alphas[0] == 0.0 and result.alphas[-1] == 1.0 and np.all(widths > 0)


def test_closed_form_start_is_the_inverse_cdf_of_sqrt_derivative():
    # |g'| = (1 + alpha)^2: sqrt is 1 + alpha, CDF (alpha + alpha^2 / 2) / 1.5, inverse -1 + sqrt(1 + 3u).
    partition = density_start(lambda a: (1 + np.asarray(a)) ** 2, 10)
    expected = -1 + np.sqrt(1 + 3 * np.linspace(0, 1, 11))
    np.testing.assert_allclose(partition, expected, atol=1e-6)
    # A flat |g'| gives the uniform partition, and nothing beats it.
    flat = optimize_partition(lambda a: np.ones_like(np.asarray(a, dtype=float)), 8)
    np.testing.assert_allclose(flat.alphas, np.linspace(0, 1, 9), atol=1e-4)
    assert flat.objective <= flat.objective_uniform
    constant = ErrorBound(lambda a: np.full_like(np.asarray(a, dtype=float), 2.0))
    assert constant(np.linspace(0, 1, 5)) == pytest.approx(0.5 * 2 * 4 * (1 / 16))  # = Eq. 9 for constant |g'|
    assert constant.eq9(np.linspace(0, 1, 5)) == pytest.approx(0.25)


def test_the_bound_cannot_be_gamed_by_skipping_a_ridge():
    # |g'| is 0 at alpha = 0 and large on [0.5, 0.6]: Eq. 9 verbatim scores one cell [0, 0.95] plus tiny ones
    # near 1 as almost free; the remainder form charges the ridge inside the big cell.
    ridge = lambda a: np.where((np.asarray(a) > 0.5) & (np.asarray(a) < 0.6), 100.0, 0.0)  # noqa: E731
    bound = ErrorBound(ridge)
    gamed = np.concatenate([[0.0], np.linspace(0.95, 1.0, 8)])
    assert bound.eq9(gamed) == 0.0 and bound(gamed) > 1.0
    result = optimize_partition(ridge, 8)
    inside = (result.alphas > 0.49) & (result.alphas < 0.61)
    assert inside.sum() >= 4 and result.objective < 0.3 * result.objective_uniform


def test_schedule_files_round_trip_and_refuse_mismatches(tmp_path):
    alphas = [0.0, 0.1, 0.5, 1.0]
    path = write_schedule_file(tmp_path / "s.json", model="m", weights_sha256="abc", method="ig", alphas=alphas,
                               calibration={"images": 3}, igcli_version="0")
    schedule, document = read_schedule_file(path, model="m", weights_sha256="abc", method="ig", steps=3)
    np.testing.assert_array_equal(schedule.boundaries, alphas)
    np.testing.assert_array_equal(schedule.points, alphas[:-1])
    assert document["weights"] == pytest.approx([0.1, 0.4, 0.5])
    for expectation, message in [({"model": "other"}, "calibrated for model 'm'"),
                                 ({"method": "blurig"}, "calibrated for method 'ig'"),
                                 ({"steps": 4}, "calibrated for steps 3"),
                                 ({"weights_sha256": "def"}, "weights_sha256")]:
        with pytest.raises(ScheduleFileError, match=message):
            read_schedule_file(path, **expectation)
    broken = json.loads(path.read_text())
    broken["weights"][0] = 0.2
    (tmp_path / "bad.json").write_text(json.dumps(broken))
    with pytest.raises(ScheduleFileError, match="weights are not the differences"):
        read_schedule_file(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ScheduleFileError, match="not a readable JSON"):
        read_schedule_file(tmp_path / "junk.json")
    with pytest.raises(ScheduleFileError, match="no such file"):
        read_schedule_file(tmp_path / "none.json")


def test_cli_same_seed_same_file_and_attribute_uses_exactly_those_alphas(tmp_path):
    make_images(tmp_path / "imgs", 6)
    common = ["calibrate", str(tmp_path / "imgs"), *TINY_ARGS, "--method", "ig", "--steps", "6", "--probe-steps",
              "17", "--images", "4", "--seed", "7", "--quiet"]
    first = run_cli(*common, "-o", str(tmp_path / "a.json"), "--json", "--plot", str(tmp_path / "plot.png"))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["images"] == 4 and summary["objective"] <= summary["objective_uniform"]
    assert (tmp_path / "plot.png").stat().st_size > 1000
    cache = {"IGCLI_CACHE": str(tmp_path / "cache")}
    assert run_cli(*common, env=cache).returncode == 0  # the same seed again, into the cache: the same file
    (cached,) = (tmp_path / "cache").rglob("*.json")
    assert (tmp_path / "a.json").read_bytes() == cached.read_bytes()
    saved = json.loads((tmp_path / "a.json").read_text())["alphas"]
    for schedule, extra in [(str(tmp_path / "a.json"), []), ("auto", ["--steps", "6"])]:
        out = tmp_path / f"out-{len(extra)}"
        result = run_cli("attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--schedule", schedule, *extra, "-o",
                         str(out), "--quiet", env=cache)
        assert result.returncode == 0, result.stderr
        with h5py.File(out / "shard-00000-00000.h5") as shard:
            assert shard.attrs["boundaries"].tolist() == saved  # exactly, not re-derived
            assert shard.attrs["alphas"].tolist() == saved[:-1]  # a left sum: gradients at the left ends
            assert shard.attrs["steps"] == 6
    mismatch = run_cli("attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--schedule", str(tmp_path / "a.json"),
                       "--steps", "8", "-o", str(tmp_path / "o3"))
    assert mismatch.returncode == 2 and "calibrated for steps 6" in mismatch.stderr
    absent = run_cli("attribute", str(tmp_path / "imgs"), *TINY_ARGS, "--schedule", "auto", "--method", "blurig",
                     "-o", str(tmp_path / "o4"), env=cache)
    assert absent.returncode == 2 and "igcli calibrate" in absent.stderr


def test_a_skipped_name_cannot_forge_lines_on_stderr(tmp_path):
    make_images(tmp_path / "imgs", 2)
    (tmp_path / "imgs" / "x\nskipped fake.jpg: forged\x1b[31m\u202e.jpg").write_bytes(b"not an image")
    result = run_cli("calibrate", str(tmp_path / "imgs"), *TINY_ARGS, "--steps", "4", "--probe-steps", "9",
                     "--images", "3", "-o", str(tmp_path / "s.json"), "--quiet")
    assert result.returncode == 5, result.stderr  # calibrated on the two images; one input skipped
    lines = result.stderr.splitlines()
    assert not any(line.startswith("skipped fake.jpg") for line in lines)
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert any(line.startswith("skipped ") and "x\\nskipped fake.jpg" in line and "\\x1b" in line for line in lines)


def test_the_schedule_file_records_option_values_as_used_not_as_typed(tmp_path):
    """``--option max_sigma=30`` is text on the command line; the file records the number the probe used."""
    make_images(tmp_path / "imgs", 2)
    result = run_cli("calibrate", str(tmp_path / "imgs"), *TINY_ARGS, "--method", "blurig", "--steps", "3",
                     "--probe-steps", "5", "--images", "1", "--option", "max_sigma=30", "--option",
                     "blur-padding=constant", "-o", str(tmp_path / "s.json"), "--quiet")
    assert result.returncode == 0, result.stderr
    options = json.loads((tmp_path / "s.json").read_text())["calibration"]["options"]
    assert options == {"max_sigma": 30.0, "blur_padding": "constant"}
    assert isinstance(options["max_sigma"], float)
