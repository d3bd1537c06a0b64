"""The public library API: ``igcli.attribute``.

Every method is path x schedule x rule (README, "What is computed, exactly"): ``ig`` walks the straight line
from a baseline, ``blurig`` the blur path, ``gig`` Guided IG's adaptive path; ``riemann`` or ``idgi`` turns the
gradients met on the way into attributions. ``vg`` is the plain gradient at the input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .baselines import BaselineSpec, Normalization
from .completeness import CompletenessWarning, GapTally
from .methods import Method, as_method, check_method, resolve_method
from .methods.registry import plugin_faults
from .prologue import TargetSpec, prepared_batch
from .rules import make_rule
from .schedules import Schedule, ScheduleSpec, default_schedule, make_schedule


@dataclass
class AttributionResult:
    """Attributions for a batch, with the numbers needed to judge them.

    Attributes:
        attributions: (B, C, H, W) in the images' dtype (float32 normally), in the model's input space, on the
            images' device.
        targets: (B,) int64, the class explained per image.
        scores: (B,) float32, f(x): the target's softmax probability (``output="prob"``) or logit.
        baseline_scores: (B,) float32, f at the path start (the baseline; the fully blurred image for Blur IG);
            NaN for ``vg``.
        completeness_gap: (B,) float32, |sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')|;
            NaN for ``vg`` and where f(x) = f(x').
        settings: the method, rule, schedule and options that produced the maps.
    """

    attributions: torch.Tensor
    targets: torch.Tensor
    scores: torch.Tensor
    baseline_scores: torch.Tensor
    completeness_gap: torch.Tensor
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.attributions.shape[0])


def attribute(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    target: TargetSpec = None,
    *,
    method: str | Method = "ig",
    rule: str = "riemann",
    steps: int = 32,
    schedule: ScheduleSpec | None = None,
    baseline: BaselineSpec = "black",
    output: str = "prob",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    normalization: Normalization | None = None,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    check_completeness: bool = True,
    **method_options: Any,
) -> AttributionResult:
    """Attribute the model's score for ``target`` to every input feature of every image.

    Args:
        model: a classifier mapping (R, C, H, W) to (R, classes) logits. It is moved to ``device`` and used in
            eval mode with frozen parameters; its mode and ``requires_grad`` flags are restored afterwards.
        images: (B, C, H, W) float tensor, already preprocessed for the model.
        target: class per image: None (the predicted class), an int for all, or a sequence/tensor of B ints.
        method: ``vg``, ``ig``, ``blurig``, ``gig``, a plugin's name (``igcli.method_names()``) or a
            :class:`~igcli.methods.Method` object; ``idgi`` is short for ``ig`` with ``rule="idgi"``.
        rule: ``riemann`` or ``idgi`` (any path method).
        steps: gradient evaluations along the path (the trapezoid schedule uses steps + 1).
        schedule: ``left``, ``right``, ``midpoint``, ``trapezoid``, ``gauss-legendre``, n + 1 alphas (a left
            sum over that partition, e.g. a RiemannOpt schedule) or a :class:`~igcli.schedules.Schedule`;
            None: each rule's reference, ``right`` for ``riemann`` and ``left`` for ``idgi`` (Algorithm 1 takes
            the gradient at the start of each step).
        baseline: for ``ig``/``gig``: ``black``, ``white``, ``blur``, ``uniform`` (in pixel space, see
            ``normalization``) or a (C, H, W)/(B, C, H, W) tensor in model-input space.
        output: ``prob`` (softmax probability of the target) or ``logit``.
        batch_size: most rows per forward/backward pass (default: 32 on CUDA, 4 on CPU).
        device: ``cuda``, ``cpu``, ... (default: CUDA when available).
        amp: autocast the model (bfloat16 on CPU, float16 on CUDA).
        normalization: the model's input normalisation, so pixel-space baselines are right; identity if None.
        seed: seed for random baselines.
        progress: called after every forward + backward chunk with the fraction (0 to 1] of this call's
            gradient evaluations done (counted on the host: it never waits for the device).
        check_completeness: issue one :class:`~igcli.completeness.CompletenessWarning` when the median
            completeness gap exceeds 5% (Sundararajan et al. 2017 §3), or maps explain no change; reads the gaps
            on the host once per call (one device sync on a GPU).
        **method_options: ``max_sigma``, ``blur_padding`` (``reflect``/``constant``), ``blur_derivative``
            (``exact``/``finite``) for ``blurig``; ``fraction``, ``max_dist``, ``anchors`` for ``gig``;
            ``baseline_sigma`` for the ``blur`` baseline.

    Returns:
        An :class:`AttributionResult`.

    Raises:
        InvalidArgumentError, ShapeError, TargetError, NonFiniteError (all :class:`~igcli.errors.IgcliError`).
    """
    schedule = _schedule_or_default(schedule, method, rule)
    chosen = as_method(method)
    path_schedule = make_schedule(schedule, steps) if chosen.has_path else None  # built once, described too
    settings = describe(method, rule, steps=steps, schedule=path_schedule or schedule, baseline=baseline,
                        output=output, seed=seed, **method_options)
    rule = settings["rule"]
    options = {option.name: settings[option.name] for option in chosen.options}
    with prepared_batch(model, images, target, output=output, batch_size=batch_size, device=device,
                        amp=amp) as batch:
        engine, inputs, targets, scores = batch.engine, batch.inputs, batch.targets, batch.scores
        if progress is not None:
            rows = inputs.shape[0] * (path_schedule.steps if path_schedule else 1)
            engine.on_rows = _progress_counter(progress, rows)
        if not chosen.has_path:
            _, gradients = engine.scores_and_gradients_chunked(inputs, targets)
            engine.raise_if_nonfinite()
            nan = torch.full_like(scores, float("nan"))
            return AttributionResult(gradients.to(device=images.device, dtype=images.dtype), targets.to(images.device),
                                     scores.to(images.device), nan.to(images.device), nan.to(images.device), settings)
        accumulator = make_rule(rule, inputs.shape, batch.device)
        with plugin_faults(chosen):
            baselines = chosen.make_baselines(baseline, inputs, normalization or Normalization(), seed, options)
            baseline_scores = chosen.integrate(engine, inputs, baselines, path_schedule, accumulator, targets,
                                               scores, options)
        engine.raise_if_nonfinite()

    attributions = accumulator.attributions
    change = scores.to(torch.float64) - baseline_scores.to(torch.float64)
    gap = (attributions.flatten(1).sum(dim=1) - change).abs() / change.abs()
    gap = torch.where(change != 0, gap, torch.full_like(gap, float("nan")))
    result = AttributionResult(
        attributions.to(device=images.device, dtype=images.dtype),
        targets.to(images.device),
        scores.float().to(images.device),
        baseline_scores.float().to(images.device),
        gap.float().to(images.device),
        settings,
    )
    if check_completeness:
        tally = GapTally()
        tally.add(result.completeness_gap.cpu().numpy())
        kind = schedule if isinstance(schedule, str) else "custom"  # alphas or a Schedule: perhaps calibrated
        for line in tally.messages(cli=False, output=output, schedule=kind):
            warnings.warn(line.removeprefix("warning: "), CompletenessWarning, stacklevel=2)
    return result


def _schedule_or_default(schedule: ScheduleSpec | None, method: str | Method, rule: str) -> ScheduleSpec:
    """``schedule``, or when None the default of the rule the method runs with (``idgi`` is IG's IDGI rule)."""
    return default_schedule(resolve_method(method, rule)[1]) if schedule is None else schedule


def _progress_counter(progress: Callable[[float], None], total: int) -> Callable[[int], None]:
    """The engine's per-chunk row counter turned into ``progress(fraction done)``, ``total`` rows in all."""
    done = 0

    def count(rows: int) -> None:
        nonlocal done
        done += rows
        progress(min(1.0, done / total))

    return count


def describe(
    method: str | Method = "ig",
    rule: str = "riemann",
    *,
    steps: int = 32,
    schedule: ScheduleSpec | None = None,
    baseline: BaselineSpec = "black",
    output: str = "prob",
    seed: int = 0,
    **method_options: Any,
) -> dict[str, Any]:
    """Validate a method's settings and return them as :func:`attribute` records them (JSON-serialisable).

    Keys: ``method``, ``rule`` (None for ``vg``), ``path``, ``output``, the method's options with defaults
    filled in, and for path methods ``steps``, ``schedule`` (name) and ``alphas`` (the sample points, a list of
    floats in [0, 1]); ``baseline`` (``"tensor"`` for a tensor) for ``ig``/``gig`` and ``seed`` with the
    ``uniform`` baseline. Raises :class:`InvalidArgumentError` for anything :func:`attribute` would refuse.
    """
    chosen = as_method(method)
    schedule = _schedule_or_default(schedule, method, rule)
    method, rule, options = check_method(method, rule, output, method_options)
    path_schedule = make_schedule(schedule, steps) if chosen.has_path else None
    if path_schedule is not None:
        chosen.check_steps(options, len(path_schedule.boundaries) - 1)
    return _settings(
        chosen,
        rule if chosen.has_path else None,
        path_schedule,
        baseline if chosen.takes_baseline else None,
        output,
        options,
        seed,
    )


def _settings(
    method: Method,
    rule: str | None,
    schedule: Schedule | None,
    baseline: BaselineSpec | None,
    output: str,
    options: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    settings: dict[str, Any] = {"method": method.name, "rule": rule, "path": method.path, "output": output, **options}
    if schedule is not None:
        settings.update(steps=schedule.steps, schedule=schedule.name, alphas=schedule.points.tolist(),
                        schedule_weights=schedule.weights.tolist(), boundaries=schedule.boundaries.tolist())
    if isinstance(baseline, torch.Tensor):
        settings["baseline"] = "tensor"
    elif baseline is not None:
        settings["baseline"] = baseline
        if baseline == "uniform":
            settings["seed"] = seed
    return settings

