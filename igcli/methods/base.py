"""What a method is: its options, what it needs, and how it walks from its path start to the input.

Every method is path x schedule x rule (README, "What is computed, exactly"). A :class:`Method` declares the
path part and everything callers need to know about it; the schedule and the rule are the caller's. This
module is torch-free (``igcli attribute`` checks a method's options before it imports torch); the methods
import torch inside the functions that compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ..errors import InvalidArgumentError
from ..text import coerce

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..baselines import Normalization
    from ..engine import Engine
    from ..schedules import Schedule


@dataclass(frozen=True)
class Option:
    """One option of a method.

    Attributes:
        name: as the library takes it (``max_sigma``); the CLI spells it ``--max-sigma`` or ``--option
            max_sigma=VALUE``.
        default: used when the option is not given (the value of the method's reference implementation).
        kind: ``float``, ``int``, ``str`` or ``bool``: what a value is converted to (the CLI's text too).
        help: one sentence, with the unit.
        choices: the allowed values, when they are few.
        check: ``check(value)`` returns a problem ("must be > 0") or None.
    """

    name: str
    default: Any
    kind: type = float
    help: str = ""
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None

    def convert(self, value: Any, method: str) -> Any:
        """``value`` as ``kind`` (text from the command line included), checked; InvalidArgumentError otherwise."""
        try:
            converted = coerce(value, self.kind)
        except ValueError:
            raise InvalidArgumentError(
                f"{self.name} of method {method} must be {self.kind.__name__}, got {value!r}") from None
        if self.choices is not None and converted not in self.choices:
            raise InvalidArgumentError(f"{self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        problem = self.check(converted) if self.check is not None else None
        if problem:
            raise InvalidArgumentError(f"{self.name} {problem}, got {value!r}")
        return converted


def positive(value: float) -> str | None:
    # Infinity passes "> 0" but no kernel or path can be built from it (Blur IG's radius is 4 sigma pixels).
    return None if math.isfinite(value) and value > 0 else "must be a finite number > 0"


# Names a method's option cannot take: the run recipe stores options beside these keys (a clash loses one of
# the two values), and igcli.attribute / probe_derivative take options as keywords beside these parameters
# (a clash is a TypeError). tests/test_methods.py keeps the list complete.
RESERVED_OPTION_NAMES = frozenset({
    # the run recipe's own keys (igcli.recipe.Recipe's fields, its format keys, Split IG's settings)
    "method", "model", "rule", "path", "output", "options", "steps", "schedule", "alphas", "schedule_weights",
    "boundaries", "baseline", "seed", "weights", "weights_sha256", "preprocessing", "target", "labels", "dtype",
    "reduce", "amp", "part_count", "schedule_file", "schedule_sha256", "extra", "command", "igcli_version",
    "torch_version", "device", "recipe", "option_names", "psi", "psis", "tolerance", "step_tolerance", "min_steps",
    "max_steps", "noise_samples", "noise_level", "noise_aggregate", "baseline_dir", "baseline_dir_sha256",
    "baseline_samples",
    # the parameters of igcli.attribute and igcli.probe_derivative
    "images", "batch_size", "normalization", "progress", "check_completeness", "probe_steps", "statistic",
    "references", "keys",
})


def declaration_problem(method: "Method") -> str | None:
    """What is wrong with a method's declared options (a plugin's: igcli's own are right), or None."""
    names = [option.name for option in method.options if isinstance(option, Option)]
    if len(names) != len(method.options):
        return "its options must be igcli.methods.Option objects"
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            return f"option name {name!r} is not a Python identifier (--option NAME=VALUE could not name it)"
        if name in RESERVED_OPTION_NAMES:
            return f"option {name!r} clashes with igcli's own setting {name!r}; rename the option"
    if len(set(names)) != len(names):
        return "it declares an option twice"
    return None


BASELINE_SIGMA = Option("baseline_sigma", 50.0, float, "Sigma of the blur baseline, pixels.", check=positive)


class Method:
    """A way to walk from a path start to the input; subclass it (one file per method) and register it.

    Class attributes:
        name: what ``--method`` takes.
        title: how pictures and summaries name it ("Blur IG").
        summary: one line for ``--help`` and the method listing.
        reference: the paper (authors, year) whose reference implementation the defaults reproduce.
        options: the method's own options, with defaults.
        path: the recorded path kind (``straight``, ``blur``, ``guided``...); None for a method without a path
            (a plain gradient): no schedule, no rule, no baseline score.
        takes_baseline: whether ``--baseline`` applies (the path starts at a baseline).
        calibratable: whether ``igcli calibrate`` can make a RiemannOpt schedule for it.
        joins_any_two_points: whether the path can be walked between any two points (``closed-path`` metric).
        fixed_path: whether the path is known before any gradient (then it is sampled in any order, batched
            over images x points, and :meth:`make_path` builds it); False for adaptive paths (Guided IG), which
            override :meth:`integrate` and :meth:`probe`.
        stochastic_samples: for a method that is itself an average over random samples (Expected Gradients),
            the name of its option counting them per image; the ensemble driver draws each sample's baseline
            and alpha and calls :meth:`sample_maps`. Such a method has no path to schedule (``path`` None).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    path: ClassVar[str | None] = None
    takes_baseline: ClassVar[bool] = False
    calibratable: ClassVar[bool] = True
    joins_any_two_points: ClassVar[bool] = False
    fixed_path: ClassVar[bool] = True
    stochastic_samples: ClassVar[str | None] = None

    @property
    def has_path(self) -> bool:
        return self.path is not None

    def defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """This method's options: defaults updated with ``given``, each converted and checked; unknown names
        are refused, naming the ones that apply."""
        known = {option.name: option for option in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            valid = ", ".join(sorted(known)) or "none"
            raise InvalidArgumentError(
                f"option(s) {', '.join(unknown)} do not apply to method {self.name}; it takes: {valid}")
        resolved = {name: option.convert(given.get(name, option.default), self.name) for name, option in known.items()}
        self.check_options(resolved)
        return resolved

    def check_options(self, options: dict[str, Any]) -> None:
        """Checks across options (each option is checked alone by its :class:`Option`)."""

    def check_steps(self, options: dict[str, Any], steps: int) -> None:
        """Checks of the options against the schedule's step count (its boundaries less one);
        InvalidArgumentError names the problem."""

    # -- the computation (torch) --------------------------------------------------------------------------

    def make_baselines(self, spec: Any, inputs: "torch.Tensor", normalization: "Normalization", seed: int,
                       options: dict[str, Any]) -> "torch.Tensor | None":
        """(B, C, H, W) path starts in model-input space.

        ``spec`` is ``--baseline``: a name (``black``...) for methods that ``take_baseline``, or a tensor in
        model-input space, an explicit start that always wins (``igcli evaluate --metric closed-path`` walks a
        path between two given points). Otherwise the start is the method's own: :meth:`start`.
        ``normalization``: the model's input normalisation (identity when the caller gave none).
        """
        import torch

        from ..baselines import make_baseline

        if isinstance(spec, torch.Tensor) or self.takes_baseline:
            return make_baseline(spec, inputs, normalization, blur_sigma=options.get("baseline_sigma", 50.0),
                                 seed=seed)
        return self.start(inputs, normalization, options)

    def start(self, inputs: "torch.Tensor", normalization: "Normalization", options: dict[str, Any]
              ) -> "torch.Tensor | None":
        """The path start of a method that takes no baseline, (B, C, H, W) in model-input space; None when its
        path knows its own start (Blur IG's fully blurred image)."""
        return None

    def make_path(self, inputs: "torch.Tensor", baselines: "torch.Tensor | None", options: dict[str, Any]):
        """The fixed path for B images: an object with ``points(image_index, alphas)`` and
        ``points_and_velocity(image_index, alphas)`` (see :class:`igcli.paths.StraightPath`)."""
        raise NotImplementedError(f"method {self.name} has no fixed path")

    def integrate(self, engine: "Engine", inputs: "torch.Tensor", baselines: "torch.Tensor | None",
                  schedule: "Schedule", rule: Any, targets: "torch.Tensor", scores: "torch.Tensor",
                  options: dict[str, Any]) -> "torch.Tensor":
        """Accumulate the path integral of every image into ``rule.attributions``; return (B,) f at the path
        start. ``scores``: (B,) f(x), already computed."""
        from ..integrate import integrate_fixed_path

        path = self.make_path(inputs, baselines, options)
        boundary_scores = integrate_fixed_path(engine, path, schedule, rule, targets, {schedule.steps: scores})
        return boundary_scores[:, 0]

    def probe(self, engine: "Engine", inputs: "torch.Tensor", baselines: "torch.Tensor | None", grid: Any,
              targets: "torch.Tensor", scores: "torch.Tensor", statistic: str, options: dict[str, Any]):
        """RiemannOpt's probe (Swain and Singhi 2024, Algorithm 1): ((B, J) reduced |g'| estimates, (J,) the
        alphas where they sit) on the equispaced ``grid`` of k alphas."""
        from ..calibrate import probe_fixed_path

        per_image = probe_fixed_path(engine, self.make_path(inputs, baselines, options), grid, targets, statistic)
        return per_image, (grid[:-1] + grid[1:]) / 2

    def sample_maps(self, engine: "Engine", inputs: "torch.Tensor", baselines: "torch.Tensor",
                    alphas: "torch.Tensor", targets: "torch.Tensor", options: dict[str, Any]) -> "torch.Tensor":
        """One random sample's map per row, for a method with ``stochastic_samples``: (R, C, H, W) from rows of
        inputs, their drawn baselines (R, C, H, W) and alphas (R,) float64 uniform in [0, 1)."""
        raise NotImplementedError(f"method {self.name} draws no samples")

    def __repr__(self) -> str:
        return f"<igcli method {self.name!r}>"
