import torch

from igcli.paths.guided import advance, plan_steps


def walk(start, end, gradient_of, steps, fraction=0.25, max_dist=0.02):
    """Follow the guided path with a gradient function; returns the list of points."""
    x = start.clone()
    points = [x]
    for step in plan_steps([i / steps for i in range(steps + 1)], anchors=0):
        x = advance(x, gradient_of(x), start, end, step.alpha, fraction, max_dist)
        points.append(x)
    return points


def random_batch(seed=0, shape=(3, 2, 6, 7)):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) for _ in range(3))


def test_path_ends_at_the_input_and_has_the_straight_lines_l1_length():
    start, end, weights = random_batch()
    points = walk(start, end, lambda x: torch.sin(5 * x) * weights, steps=10, max_dist=1.0)
    assert torch.allclose(points[-1], end, atol=1e-12)
    length = sum((b - a).abs().flatten(1).sum(1) for a, b in zip(points, points[1:]))
    assert torch.allclose(length, (end - start).abs().flatten(1).sum(1), rtol=1e-10)


def test_each_step_reaches_its_scheduled_l1_distance():
    start, end, weights = random_batch(1)
    points = walk(start, end, lambda x: x * weights, steps=8)
    total = (end - start).abs().flatten(1).sum(1)
    for k, point in enumerate(points):
        remaining = (end - point).abs().flatten(1).sum(1)
        assert torch.allclose(remaining, total * (1 - k / 8), rtol=1e-8, atol=1e-9)


def test_max_dist_zero_is_the_straight_line():
    start, end, weights = random_batch(2)
    points = walk(start, end, lambda x: torch.cos(3 * x) * weights, steps=5, max_dist=0.0)
    for k, point in enumerate(points):
        assert torch.allclose(point, start + (end - start) * (k / 5), atol=1e-12)


def test_features_with_small_gradients_move_first():
    start = torch.zeros(1, 1, 1, 8, dtype=torch.float64)
    end = torch.ones(1, 1, 1, 8, dtype=torch.float64)
    gradients = torch.arange(1.0, 9.0, dtype=torch.float64).view(1, 1, 1, 8)
    x = advance(start, gradients, start, end, alpha=0.25, fraction=0.25, max_dist=1.0)
    # a quarter of the L1 length is covered by the two features with the smallest |gradient|
    assert x.flatten().tolist() == [1.0, 1.0, 0, 0, 0, 0, 0, 0]


def test_bound_keeps_every_feature_within_max_dist_of_the_line():
    start, end, weights = random_batch(3)
    points = walk(start, end, lambda x: torch.sin(7 * x) * weights, steps=10, max_dist=0.1)
    for k, point in enumerate(points[1:], start=1):
        alpha = (point - start) / (end - start)
        assert float(alpha.min()) >= k / 10 - 0.1 - 1e-9
        assert float(alpha.max()) <= k / 10 + 0.1 + 1e-9


def test_images_in_a_batch_do_not_influence_each_other():
    start, end, weights = random_batch(4)
    gradient_of = lambda x: torch.sin(4 * x) * weights  # noqa: E731
    together = walk(start, end, gradient_of, steps=6, max_dist=0.5)[-2]
    for b in range(3):
        alone = walk(start[b : b + 1], end[b : b + 1], lambda x: torch.sin(4 * x) * weights[b : b + 1], 6, max_dist=0.5)
        assert torch.equal(alone[-2], together[b : b + 1])


def test_a_zero_length_segment_stays_put():
    start = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    end = start.clone()
    end[1] += 1
    x = advance(start, torch.ones_like(start), start, end, 0.5, 0.25, 0.02)
    assert torch.equal(x[0], start[0])
    assert not torch.equal(x[1], start[1])


def test_anchor_plan_spreads_steps_over_segments():
    plan = plan_steps([i / 7 for i in range(8)], anchors=2)
    assert len(plan) == 7
    assert [step.segment for step in plan] == [0, 0, 0, 1, 1, 2, 2]
    assert [step.alpha for step in plan if step.segment == 1] == [0.5, 1.0]
    assert plan[-1].segment_end == 1.0
