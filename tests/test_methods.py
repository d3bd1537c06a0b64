"""The method registry's declarations and checks, called as the library calls them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import igcli
from igcli.errors import InvalidArgumentError
from igcli.paths.guided import plan_steps

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from tiny_model import tiny  # noqa: E402


@pytest.mark.parametrize("steps, anchors", [(4, 4), (4, 10), (3, 2**70)])
def test_guided_ig_refuses_more_anchors_than_steps_can_walk(steps, anchors):
    """K anchors make K + 1 segments, each walked in at least one step. With K >= steps the plan had empty
    segments, so the walk stopped short of the input (its maps summed to far less than f(x) - f(x')), and a
    huge K planned for ever."""
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InvalidArgumentError, match=f"anchors {anchors} cut the path into"):
        igcli.attribute(tiny(), images, method="gig", steps=steps, anchors=anchors, device="cpu")
    with pytest.raises(InvalidArgumentError, match="use fewer anchors or more steps"):
        plan_steps([i / steps for i in range(steps + 1)], anchors)


def test_guided_ig_with_one_step_per_segment_ends_at_the_input():
    """The most anchors a schedule allows (steps - 1): every segment has its step, and the last lands on x."""
    plan = plan_steps([0.0, 0.25, 0.5, 0.75, 1.0], 3)
    assert [(step.segment, step.alpha) for step in plan] == [(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]
    assert plan[-1].segment_end == 1.0
