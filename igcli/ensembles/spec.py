"""What an ensemble is asked for, and every check on it (torch-free: the CLI checks before torch loads).

Two wrappers over any method (README, "Ensembles"):

- a **noise ensemble** averages the method over N noisy copies of the input, x + eps_n with eps_n ~ N(0, sigma^2)
  and sigma = noise_level x (max(x) - min(x)) per image (Smilkov et al. 2017, §3; PAIR's ``stdev_spread``), and
  combines the N maps with a :mod:`noise aggregate <igcli.ensembles.aggregates>`;
- a **baseline ensemble** averages the method over K baselines per input: several named ones (PAIR's black and
  white pair), or K reference images drawn per input from a folder.

Expected Gradients (``eg``) is a method whose own samples are a baseline ensemble with a random alpha each.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import InvalidArgumentError
from .aggregates import NOISE_AGGREGATE_NAMES

DEFAULT_NOISE_LEVEL = 0.15  # Smilkov et al. 2017 §3 found 10-20% best; PAIR's stdev_spread default
DEFAULT_NOISE_AGGREGATE = "smoothgrad"
# Most maps averaged per image (noise draws x members, each alone too): as --steps (schedules.MAX_STEPS), more is
# almost surely a mistake, and 10^13 would exhaust the host's memory in bookkeeping before the first gradient.
MAX_DRAWS = 100_000


@dataclass(frozen=True)
class EnsembleSpec:
    """The ensemble around one method: ``noise_samples`` N (0: none), ``noise_level`` (a fraction of each
    image's value range), ``noise_aggregate``, ``baseline_count`` listed baselines, ``references`` (whether
    references are drawn), ``baseline_samples`` K references per input, ``method_samples`` (the method's own
    samples, Expected Gradients' K; 0 for other methods)."""

    noise_samples: int = 0
    noise_level: float = DEFAULT_NOISE_LEVEL
    noise_aggregate: str = DEFAULT_NOISE_AGGREGATE
    baseline_count: int = 1
    references: bool = False
    baseline_samples: int = 0
    method_samples: int = 0

    @property
    def has_noise(self) -> bool:
        return self.noise_samples > 0

    @property
    def members_per_noise_draw(self) -> int:
        """Maps averaged for one (noisy) input: the method's samples, references drawn, or baselines listed."""
        return self.method_samples or self.baseline_samples or self.baseline_count

    @property
    def active(self) -> bool:
        """Whether anything but one plain run is asked for."""
        return self.has_noise or self.members_per_noise_draw > 1 or self.references or self.method_samples > 0

    @property
    def linear(self) -> bool:
        """Whether the map is a mean of member maps (completeness carries over from them)."""
        return not self.has_noise or self.noise_aggregate == "smoothgrad"

    @property
    def stochastic_members(self) -> bool:
        """Whether the members of one noise draw are random draws (references, Expected Gradients' samples)."""
        return self.references or self.method_samples > 0

    def settings(self) -> dict[str, Any]:
        """What the recipe records (only what is in use)."""
        recorded: dict[str, Any] = {}
        if self.has_noise:
            recorded.update(noise_samples=self.noise_samples, noise_level=self.noise_level,
                            noise_aggregate=self.noise_aggregate)
        if self.references and not self.method_samples:
            recorded["baseline_samples"] = self.baseline_samples
        return recorded


def check_ensemble(method: Any, *, noise_samples: int = 0, noise_level: float | None = None,
                   noise_aggregate: str | None = None, baselines: Sequence[Any] = ("black",),
                   references: bool = False, baseline_samples: int | None = None,
                   method_samples: int = 0) -> EnsembleSpec:
    """The :class:`EnsembleSpec` for ``method`` (a :class:`~igcli.methods.Method`), or InvalidArgumentError
    naming the option (as the CLI spells it) and what to do."""
    if not _is_count(noise_samples) or noise_samples < 0:
        raise InvalidArgumentError(f"--noise-samples must be an integer >= 0, got {noise_samples!r}")
    noise_samples = int(noise_samples)  # numpy's and torch's integers too, recorded as plain JSON
    if not noise_samples and (noise_level is not None or noise_aggregate is not None):
        given = "--noise-level" if noise_level is not None else "--noise-aggregate"
        raise InvalidArgumentError(f"{given} needs --noise-samples N (how many noisy copies to average)")
    level = DEFAULT_NOISE_LEVEL if noise_level is None else noise_level
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not math.isfinite(level) or level < 0:
        raise InvalidArgumentError(f"--noise-level must be a finite number >= 0, got {noise_level!r}")
    aggregate = DEFAULT_NOISE_AGGREGATE if noise_aggregate is None else str(noise_aggregate).strip().lower()
    if aggregate not in NOISE_AGGREGATE_NAMES:
        raise InvalidArgumentError(f"--noise-aggregate {noise_aggregate!r}: choose from {', '.join(NOISE_AGGREGATE_NAMES)}")
    if aggregate == "vargrad" and noise_samples == 1:
        raise InvalidArgumentError("--noise-aggregate vargrad is the variance of the noisy maps: give --noise-samples "
                                   "N >= 2")
    count = len(baselines)
    if count < 1:
        raise InvalidArgumentError("--baseline: give at least one")
    if (count > 1 or references) and not method.takes_baseline:
        what = "--baseline-dir" if references else "several --baseline"
        raise InvalidArgumentError(f"{what}: method {method.name} takes no baseline")
    if references and (count > 1 or not _is_black(baselines[0])):
        # black is the default: only another baseline is known to be given, and it would go unused
        raise InvalidArgumentError("--baseline-dir replaces --baseline; give one or the other")
    if method_samples:
        if count > 1:
            raise InvalidArgumentError(f"method {method.name} draws its baselines: give one --baseline (a "
                                       "distribution such as uniform) or --baseline-dir DIR, not several")
        if baseline_samples is not None:
            raise InvalidArgumentError(f"--baseline-samples: method {method.name} draws one reference per sample; "
                                       "set how many with --samples")
    elif references:
        if baseline_samples is None:
            raise InvalidArgumentError("--baseline-dir needs --baseline-samples K (references drawn per image)")
    elif baseline_samples is not None:
        raise InvalidArgumentError("--baseline-samples needs --baseline-dir DIR (the folder to draw references from)")
    if baseline_samples is not None and (not _is_count(baseline_samples) or baseline_samples < 1):
        raise InvalidArgumentError(f"--baseline-samples must be an integer >= 1, got {baseline_samples!r}")
    baseline_samples = None if baseline_samples is None else int(baseline_samples)
    _check_draws(noise_samples, baseline_samples or 0, method_samples)
    return EnsembleSpec(noise_samples=noise_samples, noise_level=float(level), noise_aggregate=aggregate,
                        baseline_count=count, references=references,
                        baseline_samples=0 if method_samples else (baseline_samples or 0),
                        method_samples=method_samples)


def _is_count(value: Any) -> bool:
    """An integer (Python's or numpy's: anything ``numbers.Integral``), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_black(spec: Any) -> bool:
    return isinstance(spec, str) and spec.strip().lower() == "black"


def _check_draws(noise_samples: int, baseline_samples: int, method_samples: int) -> None:
    """Refuse more than :data:`MAX_DRAWS` maps per image, naming the option(s) that ask for them."""
    for option, count in (("--noise-samples", noise_samples), ("--baseline-samples", baseline_samples),
                          ("--samples", method_samples)):
        if count > MAX_DRAWS:
            raise InvalidArgumentError(f"{option} {count} is more than {MAX_DRAWS}; that is almost surely a mistake")
    members = max(1, noise_samples) * max(1, baseline_samples or method_samples)
    if members > MAX_DRAWS:
        other = "--baseline-samples" if baseline_samples else "--samples"
        raise InvalidArgumentError(f"--noise-samples {noise_samples} x {other} {baseline_samples or method_samples} "
                                   f"is {members} maps per image, more than {MAX_DRAWS}; that is almost surely a mistake")
