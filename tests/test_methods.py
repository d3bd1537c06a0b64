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


class _EntryPoint:
    """Stands in for an installed plugin's entry point (name, value, dist, load)."""

    def __init__(self, name, loaded):
        self.name, self.value, self.dist, self._loaded = name, f"fake_plugin:{name}", None, loaded

    def load(self):
        return self._loaded


def _plugin_with_options(name, *options):
    from igcli.methods.ig import IntegratedGradients

    return type("Plugin", (IntegratedGradients,), {"name": name, "options": options})


@pytest.fixture
def installed(monkeypatch):
    """``installed(name, loaded)`` makes ``loaded`` the entry point of plugin method ``name``."""
    from igcli.methods import registry

    entries = {}
    monkeypatch.setattr(registry, "_plugin_entry_points", lambda: entries)
    registry._load_plugin.cache_clear()
    yield lambda name, loaded: entries.__setitem__(name, _EntryPoint(name, loaded))
    registry._load_plugin.cache_clear()


@pytest.mark.parametrize("option, problem", [
    ("seed", "clashes with igcli's own setting 'seed'"),  # was: attribute() got multiple values for 'seed'
    ("steps", "clashes with igcli's own setting 'steps'"),  # was: the recipe stored one value for two settings
    ("option_names", "clashes with igcli's own setting"),
    ("max-sigma", "is not a Python identifier"),
])
def test_a_plugin_option_named_like_an_igcli_setting_is_refused_when_loaded(installed, option, problem):
    from igcli.methods import Option

    installed("clash", _plugin_with_options("clash", Option(option, 1)))
    with pytest.raises(InvalidArgumentError, match=f"method clash from fake_plugin:clash .*{problem}"):
        igcli.get_method("clash")


def test_a_plugin_with_its_own_option_names_loads_and_attributes(installed):
    from igcli.methods import Option

    installed("scaled", _plugin_with_options("scaled", Option("scale", 1.0)))
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    result = igcli.attribute(tiny(), images, method="scaled", steps=2, scale=3.0, device="cpu", seed=5,
                             check_completeness=False)
    assert result.settings["scale"] == 3.0 and result.settings["method"] == "scaled"


def test_reserved_option_names_cover_the_recipe_and_the_keyword_parameters():
    """Every recipe field and every parameter beside **method_options: a new one must be added to the list."""
    import dataclasses
    import inspect

    from igcli.calibrate import probe_derivative
    from igcli.methods.base import RESERVED_OPTION_NAMES
    from igcli.recipe import Recipe

    names = {field.name for field in dataclasses.fields(Recipe)}
    for function in (igcli.attribute, probe_derivative):
        names |= {name for name, parameter in inspect.signature(function).parameters.items()
                  if parameter.kind is not inspect.Parameter.VAR_KEYWORD}
    assert names <= RESERVED_OPTION_NAMES
