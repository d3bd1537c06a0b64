"""Quadrature schedules: where along a path (alpha in [0, 1]) gradients are sampled, and with what weight.

A schedule is data (as in Captum): ``points`` t_k at which the integrand is evaluated, ``weights`` w_k with
sum 1, and ``boundaries`` 0 = a_0 < ... < a_m = 1 that cut [0, 1] into one cell per point, with
a_k <= t_k <= a_{k+1}. The Riemann rule uses (points, weights): sum_k w_k g(t_k). The IDGI rule uses the
cells: cell k explains f(gamma(a_{k+1})) - f(gamma(a_k)) with the gradient at t_k (IDGI paper, Algorithm 1,
where the gradient is taken at the cell's left end). Boundaries are the running sums of the weights, which
for every schedule here brackets each point (for Gauss-Legendre this is the Chebyshev-Markov-Stieltjes
separation theorem).

RiemannOpt schedules (Swain and Singhi 2024, Eq. 6) are left sums over a chosen partition: ``from_alphas``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from .errors import IgcliError, InvalidArgumentError
from .text import encode_text

SCHEDULE_NAMES = ("left", "right", "midpoint", "trapezoid", "gauss-legendre")
# The schedule each rule's reference uses when none is given: IDGI's Algorithm 1 (Yang et al. 2023) takes the
# gradient at the start x_j of every step (left); IG's Riemann sum in PAIR's and Captum's default, the right end.
DEFAULT_SCHEDULES = {"riemann": "right", "idgi": "left"}
GRADIENT_ENDS = ("left", "right")  # where a partition's gradients sit in each cell (schedule files' gradient_at)


def default_schedule(rule: str | None) -> str:
    """The schedule used when none is given: ``left`` for the IDGI rule (its reference), ``right`` otherwise."""
    return DEFAULT_SCHEDULES.get(rule or "riemann", "right")

# Points closer than this to a boundary are treated as lying on it, so that a gradient evaluation there also
# supplies the boundary's score f(gamma(a)) to the IDGI rule.
_SAME_POINT_TOLERANCE = 1e-12
# One cap on gradient evaluations for every way of asking for steps (--steps, alphas, schedule files, settings
# read back from shards): more is almost surely a mistake, and 10^7 points would take gigabytes.
MAX_STEPS = 100_000
# A schedule file with MAX_STEPS alphas, weights and a calibration record is a few MB; refuse far larger ones
# before parsing them.
MAX_SCHEDULE_FILE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Schedule:
    """Sample points and weights on [0, 1] for a path integral.

    Attributes:
        name: how the schedule was made ("right", "gauss-legendre", "alphas", a file name, ...).
        points: (m,) float64, the alphas where gradients are evaluated.
        weights: (m,) float64, non-negative, summing to 1.
        boundaries: (m + 1,) float64, 0 = a_0 < ... < a_m = 1, with a_k <= points[k] <= a_{k+1}.
    """

    name: str
    points: np.ndarray
    weights: np.ndarray
    boundaries: np.ndarray

    def __post_init__(self) -> None:
        _check_count(self.name, len(self.points))
        points = np.asarray(self.points, dtype=np.float64)
        weights = np.asarray(self.weights, dtype=np.float64)
        boundaries = np.asarray(self.boundaries, dtype=np.float64)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "boundaries", boundaries)
        m = points.shape[0]
        if points.ndim != 1 or m < 1 or weights.shape != (m,) or boundaries.shape != (m + 1,):
            raise InvalidArgumentError(
                f"schedule {self.name!r}: need m >= 1 points, m weights and m + 1 boundaries, "
                f"got {points.shape}, {weights.shape}, {boundaries.shape}"
            )
        if not (np.all(np.isfinite(points)) and np.all(np.isfinite(weights)) and np.all(np.isfinite(boundaries))):
            raise InvalidArgumentError(f"schedule {self.name!r}: points, weights and boundaries must be finite")
        if abs(boundaries[0]) > 1e-12 or abs(boundaries[-1] - 1.0) > 1e-9 or np.any(np.diff(boundaries) < 0):
            raise InvalidArgumentError(
                f"schedule {self.name!r}: boundaries must rise from 0 to 1, got {boundaries[0]}..{boundaries[-1]}"
            )
        tolerance = 1e-9
        if np.any(points < boundaries[:-1] - tolerance) or np.any(points > boundaries[1:] + tolerance):
            raise InvalidArgumentError(f"schedule {self.name!r}: every point must lie inside its cell")
        if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-9:
            raise InvalidArgumentError(f"schedule {self.name!r}: weights must be >= 0 and sum to 1")

    @property
    def steps(self) -> int:
        """Number of gradient evaluations (m)."""
        return int(self.points.shape[0])

    def boundary_index_of_points(self) -> np.ndarray:
        """(m,) int64: for each point, the index of the boundary it coincides with, or -1 for none."""
        index = np.full(self.steps, -1, dtype=np.int64)
        for k, t in enumerate(self.points):
            for candidate in (k, k + 1):
                if abs(self.boundaries[candidate] - t) <= _SAME_POINT_TOLERANCE:
                    index[k] = candidate
                    break
        return index

    def to_dict(self) -> dict:
        """A JSON-ready description (points, weights, boundaries as lists)."""
        return {
            "name": self.name,
            "points": self.points.tolist(),
            "weights": self.weights.tolist(),
            "boundaries": self.boundaries.tolist(),
        }

    # Constructors -------------------------------------------------------------------------------------------

    @classmethod
    def uniform(cls, kind: str, steps: int) -> "Schedule":
        """Uniform Riemann sums with ``steps`` cells: ``left``, ``right``, ``midpoint`` or ``trapezoid``.

        The trapezoid rule evaluates ``steps + 1`` points (both ends), weights h/2, h, ..., h, h/2.
        """
        _check_steps(steps)
        edges = np.linspace(0.0, 1.0, steps + 1)
        h = np.full(steps, 1.0 / steps)
        if kind == "left":
            return cls(kind, edges[:-1], h, edges)
        if kind == "right":
            return cls(kind, edges[1:], h, edges)
        if kind == "midpoint":
            return cls(kind, (edges[:-1] + edges[1:]) / 2, h, edges)
        if kind == "trapezoid":
            weights = np.full(steps + 1, 1.0 / steps)
            weights[0] = weights[-1] = 0.5 / steps
            return cls(kind, edges, weights, _boundaries_from_weights(weights))
        raise InvalidArgumentError(f"unknown uniform schedule {kind!r}; choose from left, right, midpoint, trapezoid")

    @classmethod
    def gauss_legendre(cls, steps: int) -> "Schedule":
        """Gauss-Legendre quadrature with ``steps`` nodes mapped to [0, 1] (exact for polynomials of degree
        2 * steps - 1)."""
        _check_steps(steps)
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return cls("gauss-legendre", (nodes + 1) / 2, weights / 2, _boundaries_from_weights(weights / 2))

    @classmethod
    def from_alphas(cls, alphas: Sequence[float], name: str = "alphas", gradient_at: str = "left") -> "Schedule":
        """Left Riemann sum over the partition ``alphas`` (n + 1 values from 0 to 1): the gradient at
        alpha_i weighted by alpha_{i+1} - alpha_i (Swain and Singhi 2024, Eq. 6). This is how a calibrated
        RiemannOpt schedule is used. ``gradient_at="right"``: the gradient at alpha_{i+1} instead, as the
        authors' code (``newig.py``) sums."""
        if gradient_at not in GRADIENT_ENDS:
            raise InvalidArgumentError(f"schedule {name!r}: gradient_at must be left or right, got {gradient_at!r}")
        _check_count(name, len(alphas) - 1)
        edges = np.asarray(alphas, dtype=np.float64)
        if edges.ndim != 1 or edges.shape[0] < 2:
            raise InvalidArgumentError(f"schedule {name!r}: need at least two alphas (0 and 1)")
        if abs(edges[0]) > 1e-12 or abs(edges[-1] - 1.0) > 1e-9:
            raise InvalidArgumentError(f"schedule {name!r}: alphas must start at 0 and end at 1")
        if np.any(np.diff(edges) <= 0):
            raise InvalidArgumentError(f"schedule {name!r}: alphas must be strictly increasing")
        edges = edges.copy()
        edges[0], edges[-1] = 0.0, 1.0
        return cls(name, edges[:-1] if gradient_at == "left" else edges[1:], np.diff(edges), edges)

    @classmethod
    def explicit(cls, points: Sequence[float], weights: Sequence[float] | None = None, name: str = "explicit") -> "Schedule":
        """Any quadrature: ``points`` in [0, 1] (increasing) and ``weights`` (default equal, 1/m each)."""
        _check_count(name, len(points))
        t = np.asarray(points, dtype=np.float64)
        if t.ndim != 1 or t.shape[0] < 1:
            raise InvalidArgumentError(f"schedule {name!r}: need at least one point")
        w = np.full(t.shape[0], 1.0 / t.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        if np.any(np.diff(t) < 0) or t[0] < 0 or t[-1] > 1:
            raise InvalidArgumentError(f"schedule {name!r}: points must increase within [0, 1]")
        if w.shape != t.shape:
            raise InvalidArgumentError(f"schedule {name!r}: {t.shape[0]} points but {w.shape} weights")
        total = w.sum()
        if total <= 0:
            raise InvalidArgumentError(f"schedule {name!r}: weights must have a positive sum")
        w = w / total
        boundaries = _boundaries_from_weights(w)
        # Running sums of equal weights need not bracket arbitrary points; use midpoints between neighbours then.
        if np.any(t < boundaries[:-1] - 1e-9) or np.any(t > boundaries[1:] + 1e-9):
            boundaries = np.concatenate([[0.0], (t[:-1] + t[1:]) / 2, [1.0]])
        return cls(name, t, w, boundaries)


ScheduleSpec = Union[str, Schedule, Sequence[float]]


def schedule_name(spec: Any) -> str | None:
    """The built-in schedule ``spec`` names (one of :data:`SCHEDULE_NAMES`; case, ``_``/``-`` and the
    aliases ``gausslegendre``/``gl`` aside), or None. A name always means the built-in schedule, even when a
    file of that name exists: ``--schedule``'s default is ``right``, and a file ``right`` in the current folder
    must not change every run (give such a file as ``./right``)."""
    if not isinstance(spec, str):
        return None
    name = spec.strip().lower().replace("_", "-")
    if name in ("gausslegendre", "gl"):
        return "gauss-legendre"
    return name if name in SCHEDULE_NAMES else None


def make_schedule(spec: ScheduleSpec, steps: int) -> Schedule:
    """Build a :class:`Schedule` from a name (``left``, ``right``, ``midpoint``, ``trapezoid``,
    ``gauss-legendre``), a sequence of n + 1 alphas (a left sum over that partition; ``steps`` is then
    ignored), or a ready :class:`Schedule`."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        name = schedule_name(spec)
        if name == "gauss-legendre":
            return Schedule.gauss_legendre(steps)
        if name is not None:
            return Schedule.uniform(name, steps)
        raise InvalidArgumentError(
            f"unknown schedule {spec!r}; choose from {', '.join(SCHEDULE_NAMES)}, or pass a list of alphas"
        )
    try:
        alphas = [float(a) for a in spec]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"schedule must be a name or a sequence of alphas, got {spec!r}") from None
    return Schedule.from_alphas(alphas)


def _boundaries_from_weights(weights: np.ndarray) -> np.ndarray:
    edges = np.concatenate([[0.0], np.cumsum(weights)])
    edges[-1] = 1.0
    return edges


def _check_steps(steps: int) -> None:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise InvalidArgumentError(f"steps must be a positive integer, got {steps!r}")
    if steps > MAX_STEPS:
        raise InvalidArgumentError(f"steps={steps} is more than {MAX_STEPS}; that is almost surely a mistake")


def _check_count(name: str, points: int) -> None:
    """The cap of :func:`_check_steps` for schedules given as points (the trapezoid rule adds one point)."""
    if points > MAX_STEPS + 1:
        raise InvalidArgumentError(f"schedule {name!r}: {points} points is more than {MAX_STEPS} steps; that is "
                                   "almost surely a mistake")


def _numbers(name: str, key: str, values: Any, limit: int) -> list[float]:
    """A JSON list of at most ``limit`` numbers (not strings, not booleans) as floats."""
    if not isinstance(values, list):
        raise ScheduleFileError(f"--schedule {name}: corrupt ({key!r} is not a list of numbers)")
    if len(values) > limit:
        raise ScheduleFileError(f"--schedule {name}: {len(values)} {key} is more than {MAX_STEPS} steps allow")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ScheduleFileError(f"--schedule {name}: corrupt ({key!r} holds something other than numbers)")
    return [float(v) for v in values]



# -- calibrated schedule files (README, igcli calibrate) -------------------------------------------------------------

SCHEDULE_FORMAT = "igcli-schedule/1"


class ScheduleFileError(InvalidArgumentError):
    """A schedule file is unreadable, corrupt, or made for another model, method or step count."""


class ScheduleWriteError(IgcliError):
    """A schedule file cannot be written (full disk, no permission); exit code 6 like any output."""

    exit_code = 6


def schedule_cache_dir() -> Path:
    """Where calibrated schedules are cached: ``$IGCLI_CACHE``, default ``~/.cache/igcli/schedules``."""
    return Path(os.environ.get("IGCLI_CACHE") or Path.home() / ".cache" / "igcli" / "schedules").expanduser()


def cached_schedule_path(model: str, method: str, steps: int) -> Path:
    """The cache file for (model, method, steps); the model spec is made filename-safe (with a short hash of
    the full spec when it had to change, so different specs never share a file)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_") or "model"
    if slug != model:
        slug = f"{slug[-60:]}-{hashlib.sha256(encode_text(model)).hexdigest()[:8]}"
    return schedule_cache_dir() / f"{slug}-{method}-{steps}.json"


def write_schedule_file(
    path: str | os.PathLike,
    *,
    model: str,
    weights_sha256: str | None,
    method: str,
    alphas: Sequence[float],
    calibration: dict[str, Any],
    igcli_version: str,
) -> Path:
    """Write a calibrated partition (n + 1 alphas; weights are their differences) atomically as JSON."""
    partition = Schedule.from_alphas(alphas, name=str(path)).boundaries  # validates
    document = {
        "format": SCHEDULE_FORMAT,
        "model": model,
        "weights_sha256": weights_sha256,
        "method": method,
        "steps": int(partition.shape[0] - 1),
        "alphas": [float(a) for a in partition],
        "weights": [float(w) for w in np.diff(partition)],
        "gradient_at": "left",  # the paper's Riemann sum (Eq. 6); "right" is the authors' code's
        "calibration": calibration,
        "igcli_version": igcli_version,
    }
    target = Path(path)
    if target.is_dir():
        raise InvalidArgumentError(f"-o {target}: is a folder; give the schedule file's name (e.g. {target}/ig.json)")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ScheduleWriteError(f"{target}: cannot write the schedule ({error.strerror or error})") from None
    return target


def read_schedule_file(
    path: str | os.PathLike,
    *,
    model: str | None = None,
    weights_sha256: str | None = None,
    method: str | None = None,
    steps: int | None = None,
) -> tuple[Schedule, dict[str, Any]]:
    """Load a schedule file as a :class:`Schedule` over its partition and its JSON document: a left sum (Swain and
    Singhi 2024, Eq. 6) unless the file's ``gradient_at`` says ``right`` (the authors' code's sum).

    The expectations given (model spec, weights hash, path method, steps) must match the file's, or
    :class:`ScheduleFileError` says which does not.
    """
    name = str(path)
    try:
        if not Path(path).is_file():
            raise FileNotFoundError(path)
        if Path(path).stat().st_size > MAX_SCHEDULE_FILE_BYTES:
            raise ScheduleFileError(f"--schedule {name}: {Path(path).stat().st_size} bytes is far larger than any "
                                    f"schedule of at most {MAX_STEPS} steps")
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScheduleFileError(f"--schedule {name}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ScheduleFileError(f"--schedule {name}: not a readable JSON schedule file ({error})") from None
    if not isinstance(document, dict) or document.get("format") != SCHEDULE_FORMAT:
        raise ScheduleFileError(f"--schedule {name}: not an igcli schedule (format must be {SCHEDULE_FORMAT!r})")
    file_steps = document.get("steps")
    if not isinstance(file_steps, int) or isinstance(file_steps, bool) or file_steps < 1:
        raise ScheduleFileError(f"--schedule {name}: corrupt ('steps' must be a positive integer, got {file_steps!r})")
    if file_steps > MAX_STEPS:
        raise ScheduleFileError(f"--schedule {name}: steps={file_steps} is more than {MAX_STEPS}")
    alphas = _numbers(name, "alphas", document.get("alphas"), MAX_STEPS + 1)
    weights = np.asarray(_numbers(name, "weights", document.get("weights"), MAX_STEPS))
    if len(alphas) != file_steps + 1 or weights.shape != (file_steps,):
        raise ScheduleFileError(
            f"--schedule {name}: corrupt ({len(alphas)} alphas and {weights.shape[0]} weights for {file_steps} steps)"
        )
    gradient_at = document.get("gradient_at", "left")  # files from before the field: the paper's left sums
    if gradient_at not in GRADIENT_ENDS:
        raise ScheduleFileError(f"--schedule {name}: corrupt ('gradient_at' must be left or right, got {gradient_at!r})")
    schedule = Schedule.from_alphas(alphas, name=f"file:{Path(path).name}", gradient_at=gradient_at)
    if not np.allclose(weights, schedule.weights, rtol=0, atol=1e-9):
        raise ScheduleFileError(f"--schedule {name}: corrupt (weights are not the differences of the alphas)")
    checks = [("model", model, document.get("model")), ("method", method, document.get("method")),
              ("steps", steps, file_steps)]
    if weights_sha256 and document.get("weights_sha256"):
        checks.append(("weights_sha256", weights_sha256, document.get("weights_sha256")))
    for key, expected, found in checks:
        if expected is not None and expected != found:
            raise ScheduleFileError(
                f"--schedule {name}: calibrated for {key} {found!r}, but this run has {key} {expected!r}; "
                f"calibrate for it (igcli calibrate ... --{'model' if key == 'weights_sha256' else key})"
            )
    return schedule, document


def schedule_from_settings(settings: dict[str, Any]) -> Schedule:
    """The schedule a run recorded (``alphas``, ``schedule_weights``, ``boundaries``; older records: by name or
    boundaries), so a metric can recompute attributions exactly as the run did."""
    if "schedule_weights" in settings and "alphas" in settings:
        return Schedule(settings.get("schedule", "recorded"), settings["alphas"], settings["schedule_weights"],
                        settings["boundaries"])
    name = settings.get("schedule")
    if name in SCHEDULE_NAMES:
        return make_schedule(name, int(settings["steps"]))
    if "boundaries" in settings:
        return Schedule.from_alphas(settings["boundaries"], name=str(name))
    raise InvalidArgumentError(f"cannot rebuild schedule {name!r} from the recorded settings")
