"""``--steps auto`` against hostile inputs: shards whose per-row columns or recorded limits were tampered with are
caught as damaged (one line, never a traceback), and the refinement's weak spots the hostile tester found: a
completeness gap at the floating-point floor of f, Blur IG's finite-difference velocity, numpy scalars as
limits."""

import shutil

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import igcli
from igcli.jobs import AttributeJob, run_attribute
from igcli.store import list_shards
from igcli.validate import DamagedShardError, check_settings, check_shard

from cli_helpers import TINY, make_images, run_cli
from conftest import tiny_convnet

# Tight enough that the tiny model refines past the first mesh, capped so that some maps stop short of it.
AUTO = dict(steps="auto", step_tolerance=0.0005, min_steps=4, max_steps=30, output="logit")


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """One auto run over three images in one shard; the path of that shard."""
    folder = tmp_path_factory.mktemp("hostile")
    make_images(folder / "imgs", 3)
    job = AttributeJob(inputs=[str(folder / "imgs")], out=folder / "out", model=TINY, device="cpu",
                       preprocessing={"resize": 16, "crop": 16}, workers=0, batch_size=3, **AUTO)
    assert run_attribute(job, quiet=True).exit_code == 0
    (path,) = list_shards(folder / "out")
    return path


def tampered(shard, tmp_path, name, change):
    """A copy of the output folder holding ``shard`` whose dataset ``name`` is replaced by ``change(values)``."""
    out = tmp_path / "out"
    shutil.copytree(shard.parent, out)
    copy = out / shard.name
    with h5py.File(copy, "r+") as handle:
        values = change(handle[name][:])
        del handle[name]
        handle.create_dataset(name, data=values)
    (out / "index.h5").unlink(missing_ok=True)
    return copy


def test_an_untampered_auto_shard_passes_every_check(shard):
    info = check_shard(shard, read_data=True)
    with h5py.File(shard) as handle:
        met = handle["tolerance_met"][:]
    assert info.rows == 3 and 0 < met.sum() < 3  # some maps met the tolerance, some hit the cap: both are valid


@pytest.mark.parametrize(("name", "change", "message"), [
    ("gradient_evaluations", lambda v: -v, "'gradient_evaluations' holds counts outside 1 to max_steps = 30"),
    ("gradient_evaluations", lambda v: 0 * v, "'gradient_evaluations' holds counts outside 1 to max_steps = 30"),
    ("gradient_evaluations", lambda v: v + 1000, "'gradient_evaluations' holds counts outside 1 to max_steps = 30"),
    ("tolerance_met", lambda v: v + 6, "'tolerance_met' holds values other than 0 and 1"),
    ("error_estimate", lambda v: np.full_like(v, np.nan), "'error_estimate' holds NaN or negative values"),
    ("error_estimate", lambda v: -v, "'error_estimate' holds NaN or negative values"),
])
def test_a_tampered_count_flag_or_estimate_is_caught_in_one_line(shard, tmp_path, name, change, message):
    copy = tampered(shard, tmp_path, name, change)
    with pytest.raises(DamagedShardError) as caught:
        check_shard(copy)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("change", [
    lambda p: p + 5,  # outside [0, 1]
    lambda p: np.where(np.isnan(p), np.nan, 1 - p),  # descending
    lambda p: np.where(np.arange(p.shape[1]) < 3, p, np.nan),  # fewer points than the gradients counted
    lambda p: np.concatenate([np.full((p.shape[0], 1), np.nan), p[:, :-1]], axis=1),  # NaN before the points
])
def test_step_points_that_contradict_their_count_are_caught_when_the_data_is_read(shard, tmp_path, change):
    copy = tampered(shard, tmp_path, "step_points", change)
    with pytest.raises(DamagedShardError, match="'step_points' row 0: not"):
        check_shard(copy, read_data=True)


def settings_of(shard):
    import json

    with h5py.File(shard) as handle:
        return json.loads(handle.attrs["settings_json"])


@pytest.mark.parametrize(("change", "message"), [
    (dict(min_steps=400), "'min_steps' 400 is above 'max_steps' 30"),
    (dict(step_tolerance=None), "'schedule' is auto (steps chosen per image) without 'step_tolerance'"),
    (dict(steps=32), "'steps' is 32 in a run that chose its steps per image"),
    (dict(schedule="gauss-legendre"), "'schedule' is 'gauss-legendre' in a run that chose its steps per image"),
])
def test_recorded_limits_that_contradict_steps_auto_are_refused(shard, change, message):
    settings = settings_of(shard)
    assert check_settings(settings) is None
    assert check_settings({**settings, **change}) == message


def test_the_cli_names_a_tampered_shard_in_one_line(shard, tmp_path):
    tampered(shard, tmp_path, "gradient_evaluations", lambda v: -v)
    result = run_cli("render", str(tmp_path / "out"), "-o", str(tmp_path / "png"), "--bare")
    assert result.returncode == 6 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "gradient_evaluations" in result.stderr


class SumOfSines(nn.Module):
    """logit_0(x) = sum_i sin(3 x_i), evaluated in float64 and returned in the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = torch.sin(3 * x.double()).flatten(1).sum(dim=1)
        return torch.stack([value, -value], dim=1).to(x.dtype)


def test_a_gap_at_the_rounding_floor_of_f_does_not_spend_the_budget():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((1, 1, 4, 4), generator=generator, dtype=torch.float64).float()
    for shift in (3e-6, 1e-5, 3e-5):  # f(x) - f(x') of 2e-6 to 2e-5, while the map's L1 norm is 5
        baseline = x.flip(-1).flip(-2).clone()  # the same values elsewhere: f(x') = f(x) ...
        baseline[0, 0, 0, 0] += shift  # ... up to the shift
        exact = torch.sin(3 * x.double()) - torch.sin(3 * baseline.double())
        result = igcli.attribute(SumOfSines(), x, 0, steps="auto", tolerance=0.01, baseline=baseline,
                                 output="logit", max_steps=256)
        error = float((result.attributions.double() - exact).abs().sum() / exact.abs().sum())
        assert error < 1e-4  # the map is accurate at the first mesh already
        assert result.evaluations.item() < 64 and bool(result.tolerance_met.item()), shift


def test_blur_ig_with_a_finite_difference_velocity_stops_when_its_map_is_accurate():
    torch.manual_seed(0)
    model = tiny_convnet().double()
    x = torch.rand((2, 3, 16, 16), dtype=torch.float64)
    options = dict(method="blurig", max_sigma=5.0, blur_derivative="finite", output="logit", batch_size=256)
    result = igcli.attribute(model, x, 0, steps="auto", tolerance=0.002, max_steps=256, **options)
    reference = igcli.attribute(model, x, 0, steps=1024, schedule="gauss-legendre", **options).attributions
    error = (result.attributions - reference).abs().flatten(1).sum(1) / reference.abs().flatten(1).sum(1)
    assert bool((error < 0.002).all())
    assert result.evaluations.max().item() < 128 and bool(result.tolerance_met.all())


def test_numpy_scalars_are_accepted_as_limits_like_steps():
    model, x = tiny_convnet(), torch.rand((1, 3, 8, 8))
    result = igcli.attribute(model, x, 0, steps="auto", tolerance=np.float32(0.05), min_steps=np.int64(4),
                             max_steps=np.int64(64))
    assert result.evaluations.item() <= 64


def test_the_evaluate_job_function_is_importable_from_the_jobs_package():
    """``igcli.jobs.evaluate`` names the module once it is imported: the function is ``run_evaluate``."""
    import igcli.jobs.evaluate as module
    from igcli.jobs import EvaluateJob, run_evaluate

    assert run_evaluate is module.evaluate and EvaluateJob is module.EvaluateJob
