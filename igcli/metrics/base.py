"""What a metric is: its name, the values it gives per image, what it needs, which way is better, its
reference, its options, and the function that scores a batch of images.

A metric is one :class:`Metric` object in its family's file and one entry in :mod:`igcli.metrics.catalog`;
``igcli evaluate`` (:mod:`igcli.jobs.evaluate`), its help, the results table, ``--json`` and the README's
metric list all read it from there. This module is torch-free so that ``igcli evaluate --help`` stays instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import InvalidArgumentError
from ..text import coerce

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from ..engine import Engine
    from ..models import Preprocessing
    from ..recipe import Recipe


@dataclass(frozen=True)
class Value:
    """One number a metric gives per image. ``higher_is_better``: which way a better map moves it."""

    name: str
    higher_is_better: bool
    help: str = ""


@dataclass(frozen=True)
class MetricOption:
    """One setting of a metric (``-O METRIC.NAME=VALUE`` on the command line), recorded with its results so
    that ``--resume`` and the merged summary only ever combine values computed alike."""

    name: str
    default: Any
    kind: type = float
    help: str = ""
    check: Callable[[Any], str | None] | None = None
    choices: tuple[Any, ...] | None = None

    def convert(self, value: Any, metric: str) -> Any:
        """``value`` (text from the command line too) as ``kind``, checked; InvalidArgumentError otherwise."""
        try:
            converted = coerce(value, self.kind)
        except (ValueError, OverflowError):
            raise InvalidArgumentError(
                f"-O {metric}.{self.name}: must be {self.kind.__name__}, got {value!r}") from None
        if self.choices is not None and converted not in self.choices:
            raise InvalidArgumentError(f"-O {metric}.{self.name}: choose from {', '.join(map(str, self.choices))}, "
                                       f"got {value!r}")
        if self.kind is int and not -2**63 <= converted < 2**63:
            raise InvalidArgumentError(f"-O {metric}.{self.name}: out of range, got {value!r}")
        if self.kind is float and not math.isfinite(converted):
            raise InvalidArgumentError(f"-O {metric}.{self.name}: must be a finite number, got {value!r}")
        problem = self.check(converted) if self.check is not None else None
        if problem:
            given = f", got {value!r}" if repr(value) not in problem else ""
            raise InvalidArgumentError(f"-O {metric}.{self.name}: {problem}{given}")
        return converted


def positive(value: float) -> str | None:
    return None if math.isfinite(value) and value > 0 else "must be a finite number > 0"


def at_least_one(value: int) -> str | None:
    return None if value >= 1 else "must be at least 1"


def fraction(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else "must be in (0, 1)"


@dataclass
class MetricBatch:
    """What a metric scores: B stored rows (images), with what it declared it needs.

    Attributes:
        maps: (B, C, H, W) or (B, H, W) float32 stored maps, on the host.
        scores: (B, H, W) float64 pixel scores from the maps and ``--rank`` (:mod:`igcli.metrics.ranking`).
        paths: the inputs as the run was given them (they name results and seed per-image noise).
        targets: (B,) int64 classes explained, on ``device``.
        images: (B, C, H, W) model inputs on ``device`` (None when no metric of the run needs the image).
        pixels: (B, 3, H, W) uint8 crops the model saw, on ``device`` (None as for ``images``).
        engine: softmax-probability Engine (``output="prob"``) for metrics that need the model.
        recompute: ``recompute(images, targets, start=None)`` -> maps as the run made them (recomputing
            metrics), on the host. ``images`` may hold M copies per image, image-major (rows i*M..i*M+M-1 are
            image i's): each copy gets image i's draws (an ensemble's noise), so pass all of a batch's perturbed
            copies in one call and the maps are computed in full engine chunks, as ``attribute`` does.
        module: the loaded model (a metric that changes it works on a copy: ``copy.deepcopy``).
        rebuild: ``rebuild(module) -> recompute`` for another module (model randomisation).
        truth: (B, H, W) bool object masks (localization metrics), else None.
        completeness_gap: (B,) the stored gaps.
        seed: ``--seed``; seeds: (B,) per-image seeds from (seed, path): results do not depend on batching.
        options: this metric's settings (defaults filled in).
    """

    maps: "torch.Tensor"
    scores: "torch.Tensor"
    paths: list[str]
    targets: "torch.Tensor"
    device: "torch.device"
    preprocessing: "Preprocessing"
    seeds: list[int]
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    images: "torch.Tensor | None" = None
    pixels: "torch.Tensor | None" = None
    engine: "Engine | None" = None
    recompute: Callable[..., "torch.Tensor"] | None = None
    module: Any = None
    truth: "torch.Tensor | None" = None
    completeness_gap: "np.ndarray | None" = None
    min_pred: float | None = None
    rebuild: Callable[[Any], Callable[..., "torch.Tensor"]] | None = None
    pool: Any = None  # a process pool for host work that overlaps the model (PIC's WebP encodes), or None
    wanted: tuple[str, ...] = ()  # every metric of the run (metrics of one family share work through `shared`)
    shared: dict[str, Any] = field(default_factory=dict)  # work done once per batch for several metrics

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class MetricScores:
    """What a metric gives for a batch.

    Attributes:
        values: value name -> (B,) float64. NaN where the image was not scored: with a reason in ``unscorable``
            it was unscorable by the metric's definition (an all-zero map for max-sensitivity); without one, and
            for a metric that needs the model, the model's outputs were not finite (the image is skipped for
            that metric, as ``attribute`` skips it).
        unscorable: value name -> per image the reason or None.
        curves: curve name -> (B, L) per-image curves (aggregated over images in the summary).
    """

    values: dict[str, "np.ndarray"]
    unscorable: dict[str, list[str | None]] = field(default_factory=dict)
    curves: dict[str, "np.ndarray"] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """One metric of ``igcli evaluate``.

    Attributes:
        name: ``--metric`` name.
        family: faithfulness, information curve, localization, robustness, sanity, complexity or path.
        summary: one line for the help and the README.
        reference: the paper (authors, year, section/equation) and the implementation it is checked against.
        values: the per-image values, in order.
        compute: ``compute(batch) -> MetricScores``.
        needs_model: scores images through the model (``batch.engine``, ``batch.images``).
        needs_truth: needs ``--masks`` or ``--boxes`` (``batch.truth``).
        recomputes: recomputes maps with the run's recipe (``batch.recompute``).
        needs_module: changes a copy of the model (``batch.module``; model randomisation).
        ranked: needs a pixel ranking: a constant map is counted unrankable and not given to it.
        curve_x: curve name -> ``curve_x(options)``, the x grid of its curves (for the aggregate curve and
            ``--plot``); ``options``: the metric's options.
        aggregate: value name -> ``aggregate(curves) -> (curve, headline)`` from the (N, L) finite per-image
            curves of the value's name, when the headline is not the mean of the per-image values (SIC: the area
            under the median curve). Other curves aggregate by their mean.
        options: the metric's settings.
        check: ``check(recipe)`` raises InvalidArgumentError when the maps cannot be scored by it.
    """

    name: str
    family: str
    summary: str
    reference: str
    values: tuple[Value, ...]
    compute: Callable[[MetricBatch], MetricScores]
    needs_model: bool = False
    needs_truth: bool = False
    recomputes: bool = False
    needs_module: bool = False
    ranked: bool = True
    curve_x: dict[str, Callable[[dict[str, Any]], Sequence[float]]] = field(default_factory=dict)
    aggregate: dict[str, Callable[[Any], tuple[Any, float]]] = field(default_factory=dict)
    options: tuple[MetricOption, ...] = ()
    check: Callable[["Recipe"], None] | None = None

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(value.name for value in self.values)

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults with ``given`` (name -> value, text included) converted and checked over them."""
        known = {option.name: option for option in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            choices = ", ".join(known) or "none"
            raise InvalidArgumentError(f"-O {self.name}.{unknown[0]}: {self.name} has no such option (it has: "
                                       f"{choices})")
        return {name: option.convert(given[name], self.name) if name in given else option.default
                for name, option in known.items()}
