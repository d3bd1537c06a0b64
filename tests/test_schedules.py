import numpy as np
import pytest

from igcli.errors import InvalidArgumentError
from igcli.schedules import Schedule, make_schedule

KINDS = ["left", "right", "midpoint", "trapezoid", "gauss-legendre"]


def integrate(schedule: Schedule, function) -> float:
    return float(np.sum(schedule.weights * function(schedule.points)))


@pytest.mark.parametrize("kind", KINDS)
def test_every_schedule_is_a_valid_quadrature(kind):
    schedule = make_schedule(kind, 7)
    assert schedule.weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert schedule.boundaries[0] == 0.0 and schedule.boundaries[-1] == 1.0
    assert np.all(schedule.boundaries[:-1] <= schedule.points + 1e-12)
    assert np.all(schedule.points <= schedule.boundaries[1:] + 1e-12)
    assert schedule.steps == (8 if kind == "trapezoid" else 7)


@pytest.mark.parametrize(("kind", "order"), [("left", 1), ("right", 1), ("midpoint", 2), ("trapezoid", 2)])
def test_error_falls_at_the_order_of_the_rule(kind, order):
    exact = 1 - np.cos(1.0)  # integral of sin on [0, 1]
    errors = [abs(integrate(make_schedule(kind, n), np.sin) - exact) for n in (8, 16, 32, 64)]
    slopes = -np.diff(np.log2(errors))
    assert np.allclose(slopes, order, atol=0.1), slopes


def test_gauss_legendre_is_exact_for_polynomials_of_degree_2n_minus_1():
    schedule = Schedule.gauss_legendre(4)
    for degree in range(8):
        assert integrate(schedule, lambda t: t**degree) == pytest.approx(1 / (degree + 1), abs=1e-14)
    assert abs(integrate(schedule, lambda t: t**8) - 1 / 9) > 1e-8


def test_alphas_make_a_left_sum_over_the_partition():
    schedule = make_schedule([0.0, 0.1, 0.5, 1.0], steps=99)
    assert schedule.points.tolist() == [0.0, 0.1, 0.5]
    assert np.allclose(schedule.weights, [0.1, 0.4, 0.5])
    assert schedule.boundary_index_of_points().tolist() == [0, 1, 2]


def test_boundary_index_links_points_to_cell_ends():
    assert make_schedule("right", 4).boundary_index_of_points().tolist() == [1, 2, 3, 4]
    assert make_schedule("left", 4).boundary_index_of_points().tolist() == [0, 1, 2, 3]
    assert make_schedule("midpoint", 4).boundary_index_of_points().tolist() == [-1, -1, -1, -1]


def test_explicit_points_with_equal_weights():
    schedule = Schedule.explicit(np.linspace(0, 1, 5))
    assert np.allclose(schedule.weights, 0.2)
    assert np.all(schedule.boundaries[:-1] <= schedule.points) and np.all(schedule.points <= schedule.boundaries[1:])


@pytest.mark.parametrize(
    "spec",
    ["simpson", [0.0, 0.5], [0.1, 1.0], [0.0, 0.6, 0.4, 1.0], [0.0, float("nan"), 1.0], "right-ish", object()],
)
def test_bad_schedules_raise_one_clear_error(spec):
    with pytest.raises(InvalidArgumentError):
        make_schedule(spec, 8)


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_bad_step_counts_are_refused(steps):
    with pytest.raises(InvalidArgumentError, match="steps"):
        make_schedule("right", steps)


def test_a_schedule_file_says_which_end_of_each_cell_its_gradients_sit_at(tmp_path):
    # The paper's RiemannOpt is a left sum (Swain and Singhi 2024, Eq. 6); the authors' code sums at the right
    # end. igcli writes "left"; a file saying "right" is read as such; a file without the field (igcli before
    # it) is a left sum.
    import json

    from igcli.schedules import ScheduleFileError, read_schedule_file, write_schedule_file

    alphas = [0.0, 0.1, 0.4, 1.0]
    path = write_schedule_file(tmp_path / "s.json", model="m", weights_sha256=None, method="ig", alphas=alphas,
                               calibration={}, igcli_version="test")
    document = json.loads(path.read_text())
    assert document["gradient_at"] == "left"
    left, _ = read_schedule_file(path)
    np.testing.assert_array_equal(left.points, alphas[:-1])
    for value, points in (("right", alphas[1:]), (None, alphas[:-1])):
        changed = {**document, "gradient_at": value} if value else {k: v for k, v in document.items() if k != "gradient_at"}
        path.write_text(json.dumps(changed))
        schedule, _ = read_schedule_file(path)
        np.testing.assert_array_equal(schedule.points, points)
        np.testing.assert_array_equal(schedule.boundaries, alphas)
        np.testing.assert_allclose(schedule.weights, np.diff(alphas))
    path.write_text(json.dumps({**document, "gradient_at": "middle"}))
    with pytest.raises(ScheduleFileError, match="'gradient_at' must be left or right, got 'middle'"):
        read_schedule_file(path)
