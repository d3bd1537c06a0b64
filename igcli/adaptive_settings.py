"""What ``--steps auto`` asks for, and where it applies (:mod:`igcli.adaptive` does the work).

Torch-free, so that ``igcli attribute`` refuses bad settings before it imports torch and loads a model.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .errors import InvalidArgumentError

DEFAULT_TOLERANCE = 0.05
DEFAULT_MIN_STEPS = 8
DEFAULT_MAX_STEPS = 256

@dataclass(frozen=True)
class AdaptiveSteps:
    """What ``--steps auto`` asks for.

    Attributes:
        tolerance: the estimated relative L1 error of each map to reach, ||error||_1 / ||map||_1, in (0, 1).
        min_steps: gradient evaluations of the first, uniform partition (rounded up to whole cells: ``riemann``
            takes 2n + 1 for n cells, ``idgi`` 2n, since f at the input is known).
        max_steps: the most gradient evaluations spent on one image.
    """

    tolerance: float = DEFAULT_TOLERANCE
    min_steps: int = DEFAULT_MIN_STEPS
    max_steps: int = DEFAULT_MAX_STEPS

    def initial_cells(self, rule: str) -> int:
        """Cells of the first partition for ``rule``."""
        if rule == "idgi":
            return max(1, math.ceil(self.min_steps / 2))
        return max(1, math.ceil((self.min_steps - 1) / 2))

    def initial_evaluations(self, rule: str) -> int:
        cells = self.initial_cells(rule)
        return 2 * cells if rule == "idgi" else 2 * cells + 1

    def checked(self, rule: str, spelled: dict[str, str] | None = None) -> "AdaptiveSteps":
        """These settings with their types checked; InvalidArgumentError names the one that is wrong, as
        ``spelled`` spells it (the CLI's ``--max-steps``; default the library's ``max_steps``)."""
        from .schedules import MAX_STEPS

        name = {"tolerance": "tolerance", "min_steps": "min_steps", "max_steps": "max_steps", **(spelled or {})}
        tolerance = self.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not (
                math.isfinite(tolerance) and 0 < tolerance < 1):
            raise InvalidArgumentError(
                f"{name['tolerance']} must be a number between 0 and 1 (a relative L1 error), got {tolerance!r}")
        for key in ("min_steps", "max_steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= MAX_STEPS:
                raise InvalidArgumentError(f"{name[key]} must be an integer from 1 to {MAX_STEPS}, got {value!r}")
        first = self.initial_evaluations(rule)
        if self.max_steps < first:
            raise InvalidArgumentError(
                f"{name['max_steps']} {self.max_steps} is below the first partition's {first} gradient evaluations "
                f"({name['min_steps']} {self.min_steps}, rule {rule}); raise {name['max_steps']} or lower "
                f"{name['min_steps']}")
        return AdaptiveSteps(float(tolerance), int(self.min_steps), int(self.max_steps))


# How the library and the CLI spell what a refusal names.
LIBRARY_WORDS = {"auto": "steps='auto'", "steps": "a number of steps", "schedule": "the schedule",
                 "tolerance": "tolerance", "min_steps": "min_steps", "max_steps": "max_steps"}
CLI_WORDS = {"auto": "--steps auto", "steps": "--steps N", "schedule": "--schedule",
             "tolerance": "--tolerance", "min_steps": "--min-steps", "max_steps": "--max-steps"}


def check_auto_steps(method, rule: str, schedule_given: bool, ensemble: str | None, settings: AdaptiveSteps,
                     words: dict[str, str] = LIBRARY_WORDS) -> AdaptiveSteps:
    """``settings`` checked for ``method`` (a :class:`~igcli.methods.Method`) and ``rule``; InvalidArgumentError,
    in one line spelled with ``words`` (:data:`LIBRARY_WORDS` or :data:`CLI_WORDS`), where steps auto cannot
    apply: a method without a fixed path (its points would move with its gradients: an ODE step-size problem,
    not quadrature), a schedule given, or an ensemble (``ensemble`` names what makes one)."""
    if not method.has_path or not method.fixed_path:
        why = "its path follows the gradients" if method.has_path else "it has no path"
        raise InvalidArgumentError(f"{words['auto']} refines a fixed path per image; method {method.name} cannot "
                                   f"({why}): use ig or blurig, or give {words['steps']}")
    if schedule_given:
        raise InvalidArgumentError(f"{words['auto']} places its own points per image; drop {words['schedule']} (or "
                                   f"give {words['steps']})")
    if ensemble:
        raise InvalidArgumentError(f"{words['auto']} integrates one path per image; {ensemble} makes an ensemble of "
                                   f"many: give {words['steps']} with it")
    return settings.checked(rule, {key: words[key] for key in ("tolerance", "min_steps", "max_steps")})


def is_auto(steps: object) -> bool:
    """Whether ``steps`` asks for adaptive steps (``"auto"``, in any case, as the CLI takes it)."""
    return isinstance(steps, str) and steps.strip().lower() == "auto"
