"""``steps="auto"``: error-controlled path integration per image (igcli/adaptive.py), against integrals known in
closed form, fine fixed schedules, and the stored points' own schedules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import igcli
from igcli.errors import InvalidArgumentError
from igcli.schedules import Schedule

from conftest import CountingModel, SineModel, tiny_convnet


class SteepSigmoid(nn.Module):
    """logit_0(x) = sigmoid(k (w.x - c)): along the straight path from 0 it rises at alpha* = c / (w.x), over a
    width of about 1 / (k w.x); IG_i = w_i x_i / (w.x) (f(x) - f(0)) exactly (the gradient keeps its direction)."""

    def __init__(self, weights: torch.Tensor, steepness: float, offset: float) -> None:
        super().__init__()
        self.weights, self.steepness, self.offset = weights, steepness, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = torch.sigmoid(self.steepness * ((self.weights * x).flatten(1).sum(dim=1) - self.offset))
        return torch.stack([value, torch.zeros_like(value)], dim=1)

    def exact_ig(self, x: torch.Tensor) -> torch.Tensor:
        dot = (self.weights * x).flatten(1).sum(dim=1)
        change = self.forward(x)[:, 0] - self.forward(torch.zeros_like(x))[:, 0]
        return self.weights * x / dot.view(-1, 1, 1, 1) * change.view(-1, 1, 1, 1)


class Square(nn.Module):
    """logit_0(x) = (w.x + 1)^2: the gradient keeps its direction (and is never zero) along a path from 0, and
    f(alpha x) = (alpha w.x + 1)^2 is quadratic in alpha."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.linspace(0.5, 1.5, x[0].numel(), dtype=x.dtype).view(x.shape[1:])
        value = ((weights * x).flatten(1).sum(dim=1) + 1).square()
        return torch.stack([value, torch.zeros_like(value)], dim=1)


def x_square() -> torch.Tensor:
    return torch.rand((3, 1, 4, 4), generator=torch.Generator().manual_seed(8), dtype=torch.float64)


def relative_l1(found: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    return (found.double() - exact.double()).abs().flatten(1).sum(1) / exact.double().abs().flatten(1).sum(1)


def steep_case(count: int = 3, steepness: float = 40.0):
    generator = torch.Generator().manual_seed(3)
    x = torch.rand((count, 1, 4, 4), generator=generator, dtype=torch.float64) + 0.5
    weights = torch.rand((1, 1, 4, 4), generator=generator, dtype=torch.float64)
    dot = (weights * x).flatten(1).sum(1)
    model = SteepSigmoid(weights, steepness, 0.4 * float(dot.mean()))
    return model, x, (model.offset / dot)


def sine_case(count: int = 3):
    generator = torch.Generator().manual_seed(4)
    x = 3 * torch.rand((count, 2, 4, 4), generator=generator, dtype=torch.float64)
    return SineModel((2, 4, 4)), x


def auto(model, x, target=0, **options):
    options = {"output": "logit", "device": "cpu", "batch_size": 16, "steps": "auto", **options}
    return igcli.attribute(model, x, target, **options)


@pytest.mark.parametrize("tolerance", [0.1, 0.01, 1e-3, 1e-4])
def test_the_true_map_error_is_below_the_tolerance_for_a_steep_and_a_smooth_integrand(tolerance):
    model, x, _ = steep_case()
    result = auto(model, x, tolerance=tolerance, max_steps=2000)
    assert result.tolerance_met.all()
    assert (result.error_estimate <= tolerance).all()
    assert (relative_l1(result.attributions, model.exact_ig(x)) < tolerance).all()
    sine, y = sine_case()
    result = auto(sine, y, tolerance=tolerance, max_steps=2000)
    exact = sine.exact_ig(y, torch.zeros_like(y), 0)
    assert result.tolerance_met.all() and (relative_l1(result.attributions, exact) < tolerance).all()


def test_a_wrong_map_fails_the_error_check():
    """The guard of the test above: the first partition alone is far off on the steep integrand."""
    model, x, _ = steep_case()
    coarse = auto(model, x, tolerance=0.5, min_steps=3, max_steps=3)
    assert (relative_l1(coarse.attributions, model.exact_ig(x)) > 0.1).all()
    assert not coarse.tolerance_met.any() and (coarse.error_estimate > 0.5).all()


def test_evaluations_grow_like_simpsons_error_as_the_tolerance_shrinks():
    """On a smooth integrand, Simpson's error falls like h^4, and so does the difference of two nested levels
    that estimates it: evaluations grow like T^(-1/4) (10x tighter: 1.78x the evaluations)."""
    sine, y = sine_case(1)
    tolerances = [1e-4, 1e-6, 1e-8]
    evaluations = [int(auto(sine, y, tolerance=t, max_steps=5000).evaluations[0]) for t in tolerances]
    slope = np.polyfit(np.log(tolerances), np.log(evaluations), 1)[0]
    assert -0.4 < slope < -0.15, (evaluations, slope)


def test_a_smooth_integrand_stops_at_min_steps_and_a_step_concentrates_the_points():
    sine, y = sine_case()
    for min_steps, expected in ((9, 9), (17, 17), (8, 9)):  # riemann: whole cells, 2n + 1
        result = auto(sine, y, tolerance=0.05, min_steps=min_steps)
        assert result.evaluations.tolist() == [expected] * 3
    # IDGI's integrand g^2 / ||g||^2 is constant where the gradient keeps its direction, and a quadratic f along
    # the path has a linear slope that the trapezoid rule explains exactly: nothing to refine
    result = auto(Square(), x_square(), tolerance=1e-6, min_steps=8, rule="idgi")
    assert result.evaluations.tolist() == [8] * 3  # idgi: 2n, f at the input is known

    model, x, where = steep_case(steepness=200.0)

    result = auto(model, x, tolerance=1e-3, max_steps=1000)
    for row in range(3):
        points = result.step_points[row][~result.step_points[row].isnan()].numpy()
        near = np.abs(points - float(where[row])) < 0.05  # a tenth of the path
        assert near.mean() > 0.6, (near.mean(), float(where[row]))
        assert result.evaluations[row] == len(points)


def test_the_stored_points_and_a_fixed_schedule_on_them_give_the_same_map():
    """The map is a quadrature on the stored points: for riemann the composite Simpson weights of the cells
    they form, for idgi Algorithm 1's left sums over the partition they make with alpha = 1."""
    model, x, _ = steep_case()
    for rule in ("riemann", "idgi"):
        result = auto(model, x, tolerance=0.01, rule=rule)
        for row in range(3):
            points = result.step_points[row][~result.step_points[row].isnan()].numpy()
            if rule == "riemann":
                weights = simpson_weights(points)
                schedule = Schedule("stored", points, weights, np.concatenate([[0.0], np.cumsum(weights)]))
            else:
                schedule = Schedule.from_alphas(np.concatenate([points, [1.0]]), name="stored")
            fixed = igcli.attribute(model, x[row : row + 1], 0, output="logit", device="cpu", rule=rule,
                                    steps=schedule.steps, schedule=schedule, check_completeness=False)
            torch.testing.assert_close(fixed.attributions[0], result.attributions[row], rtol=1e-10, atol=1e-13)


def simpson_weights(points: np.ndarray) -> np.ndarray:
    """Composite Simpson weights of sorted points that alternate cell end, midpoint, cell end..."""
    weights = np.zeros(len(points))
    for start in range(0, len(points) - 1, 2):
        h = points[start + 2] - points[start]
        assert abs(points[start + 1] - (points[start] + points[start + 2]) / 2) < 1e-15
        weights[start : start + 3] += (h / 6, 4 * h / 6, h / 6)
    return weights


def test_idgi_is_complete_and_converges_to_algorithm_1_on_a_fine_partition():
    model = tiny_convnet()
    x = torch.rand((2, 3, 8, 8), generator=torch.Generator().manual_seed(5))
    result = auto(model, x, tolerance=0.01, rule="idgi", output="prob", max_steps=512)
    assert result.completeness_gap.max() < 1e-5
    fine = igcli.attribute(model, x, result.targets, rule="idgi", steps=4096, output="prob", device="cpu",
                           batch_size=512)
    assert (relative_l1(result.attributions, fine.attributions) < 0.01).all()
    assert result.evaluations.max() < 200


def test_blur_ig_meets_the_tolerance_against_a_fine_gauss_legendre_map():
    model = tiny_convnet()
    x = torch.rand((2, 3, 16, 16), generator=torch.Generator().manual_seed(6))
    result = auto(model, x, method="blurig", tolerance=0.01, output="prob", max_sigma=4.0)
    fine = igcli.attribute(model, x, result.targets, method="blurig", steps=1024, schedule="gauss-legendre",
                           output="prob", device="cpu", batch_size=256, max_sigma=4.0)
    assert result.tolerance_met.all()
    assert (relative_l1(result.attributions, fine.attributions) < 0.01).all()


def test_batched_equals_one_image_at_a_time_and_runs_are_deterministic():
    model, x, _ = steep_case(4)
    together = auto(model, x, tolerance=0.001, batch_size=5)
    again = auto(model, x, tolerance=0.001, batch_size=5)
    assert torch.equal(together.attributions, again.attributions)
    assert torch.equal(together.step_points.nan_to_num(-1), again.step_points.nan_to_num(-1))
    for row in range(4):
        alone = auto(model, x[row : row + 1], tolerance=0.001, batch_size=3)
        assert torch.equal(alone.attributions[0], together.attributions[row])
        assert alone.evaluations[0] == together.evaluations[row]
        width = int(alone.evaluations[0])
        assert torch.equal(alone.step_points[0, :width], together.step_points[row, :width])
        assert together.step_points[row, width:].isnan().all()


def test_the_budget_caps_evaluations_and_the_model_sees_no_other_rows():
    model, x, _ = steep_case()
    counting = CountingModel(model)
    result = auto(counting, x, tolerance=1e-6, max_steps=41)
    assert (result.evaluations <= 41).all() and (result.evaluations >= 39).all()
    assert not result.tolerance_met.any() and (result.error_estimate > 1e-6).all()
    # f(x) once per image (the prologue), then exactly one forward + backward row per evaluation
    assert counting.rows == len(x) + int(result.evaluations.sum())


def test_a_converged_image_costs_nothing_more():
    """A flat image (zero map) is settled by the first partition while a steep one refines."""
    model, x, _ = steep_case(2)
    x = torch.cat([x[:1], torch.zeros_like(x[:1]) + 1e-3])  # the second barely leaves the baseline
    result = auto(model, x, tolerance=1e-3)
    assert result.evaluations[1] == 9 and result.evaluations[0] > 30


@pytest.mark.parametrize("settings, message", [
    ({"method": "gig"}, "fixed path"),
    ({"method": "vg"}, "fixed path"),
    ({"method": "eg"}, "fixed path"),
    ({"schedule": "gauss-legendre"}, "schedule"),
    ({"noise_samples": 2}, "ensemble"),
    ({"baseline": ["black", "white"]}, "ensemble"),
    ({"tolerance": 0.0}, "tolerance"),
    ({"tolerance": 1.0}, "tolerance"),
    ({"tolerance": float("nan")}, "tolerance"),
    ({"tolerance": "0.1"}, "tolerance"),
    ({"max_steps": 5}, "max_steps 5 is below"),
    ({"min_steps": 0}, "min_steps"),
    ({"max_steps": 10**9}, "max_steps"),
])
def test_steps_auto_refuses_what_it_cannot_do_in_one_line(settings, message):
    model = tiny_convnet()
    x = torch.rand((1, 3, 8, 8))
    with pytest.raises(InvalidArgumentError, match=message) as raised:
        igcli.attribute(model, x, steps="auto", device="cpu", **settings)
    assert "\n" not in str(raised.value)
    with pytest.raises(InvalidArgumentError, match=message):
        igcli.describe(steps="auto", **settings) if "method" not in settings else igcli.describe(
            settings["method"], steps="auto")


def test_describe_records_the_tolerance_and_limits_instead_of_a_schedule():
    settings = igcli.describe("ig", "idgi", steps="auto", tolerance=0.02, min_steps=6, max_steps=100)
    assert settings["schedule"] == "auto"
    assert (settings["step_tolerance"], settings["min_steps"], settings["max_steps"]) == (0.02, 6, 100)
    assert not {"steps", "alphas", "schedule_weights", "boundaries"} & set(settings)


def test_a_fixed_run_has_no_adaptive_fields():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = igcli.attribute(tiny_convnet(), torch.rand((1, 3, 8, 8)), steps=4, device="cpu")
    assert result.evaluations is None and result.step_points is None and result.tolerance_met is None


def test_memory_is_bounded_by_max_steps_per_image(monkeypatch):
    """The pool of integrand vectors grows with the points taken, never past max_steps + 1 per image."""
    from igcli import adaptive_cells

    capacities = []
    take = adaptive_cells.PointPool.take

    def watched(pool, count):
        slots = take(pool, count)
        capacities.append(pool.vectors.shape[0])
        return slots

    monkeypatch.setattr(adaptive_cells.PointPool, "take", watched)
    result = auto(tiny_convnet(), torch.rand((3, 3, 8, 8), generator=torch.Generator().manual_seed(7)),
                  tolerance=1e-9, max_steps=40, output="prob")
    assert (result.evaluations >= 39).all() and max(capacities) <= 3 * 41
