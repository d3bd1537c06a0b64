"""The public library API: ``igcli.attribute``.

Every method is path x schedule x rule (README, "What is computed, exactly"): ``ig`` walks the straight line
from a baseline, ``blurig`` the blur path, ``gig`` Guided IG's adaptive path; ``riemann`` or ``idgi`` turns the
gradients met on the way into attributions. ``vg`` is the plain gradient at the input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .adaptive import integrate_adaptive
from .adaptive_settings import (
    DEFAULT_MAX_STEPS, DEFAULT_MIN_STEPS, DEFAULT_TOLERANCE, AdaptiveSteps, check_auto_steps, is_auto,
)
from .baselines import BaselineSpec, Normalization
from .completeness import CompletenessWarning, GapTally
from .errors import ShapeError
from .ensembles import EnsembleSpec, ReferenceSource, attribute_ensemble, check_ensemble
from .ensembles.draws import content_keys
from .ensembles.references import as_reference_source
from .methods import Method, as_method, check_method, resolve_method
from .methods.registry import plugin_faults
from .prologue import TargetSpec, prepared_batch
from .rules import make_rule
from .schedules import Schedule, ScheduleSpec, default_schedule, make_schedule
from .transfer import to_device


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
        relative_se: (B,) float32, the error bar of a map averaged over random draws (noise, drawn references,
            Expected Gradients' samples): ||SE|| / ||map||, the standard error of the map relative to its size
            (README, "Ensembles"); NaN for a map that drew nothing or too few draws to tell.
        evaluations, error_estimate, tolerance_met, step_points: with ``steps="auto"`` only (None otherwise):
            (B,) int64 gradient evaluations spent per image; (B,) float32 estimated relative L1 error of the map;
            (B,) bool whether it and the completeness gap are within the tolerance; (B, P) float64 the sorted alphas where gradients were
            taken, NaN-padded after each image's last (P: the most of any image in the batch).
    """

    attributions: torch.Tensor
    targets: torch.Tensor
    scores: torch.Tensor
    baseline_scores: torch.Tensor
    completeness_gap: torch.Tensor
    settings: dict[str, Any] = field(default_factory=dict)
    relative_se: torch.Tensor | None = None
    evaluations: torch.Tensor | None = None
    error_estimate: torch.Tensor | None = None
    tolerance_met: torch.Tensor | None = None
    step_points: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.relative_se is None:
            self.relative_se = torch.full_like(self.scores, float("nan"))

    def __len__(self) -> int:
        return int(self.attributions.shape[0])


def attribute(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    target: TargetSpec = None,
    *,
    method: str | Method = "ig",
    rule: str = "riemann",
    steps: int | str = 32,
    schedule: ScheduleSpec | None = None,
    baseline: BaselineSpec | Sequence[BaselineSpec] = "black",
    output: str = "prob",
    tolerance: float = DEFAULT_TOLERANCE,
    min_steps: int = DEFAULT_MIN_STEPS,
    max_steps: int = DEFAULT_MAX_STEPS,
    noise_samples: int = 0,
    noise_level: float | None = None,
    noise_aggregate: str | None = None,
    references: torch.Tensor | ReferenceSource | None = None,
    baseline_samples: int | None = None,
    keys: Sequence[str] | None = None,
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
        steps: gradient evaluations along the path (the trapezoid schedule uses steps + 1), or ``"auto"``: per
            image, the partition of [0, 1] is refined where the integrand changes fastest until the estimated
            relative L1 error of the map and its completeness gap are both within ``tolerance``, or
            ``max_steps`` gradients are spent
            (:mod:`igcli.adaptive`; fixed paths only: ``ig``, ``blurig``, plugins with a fixed path; no
            ``schedule`` and no ensemble).
        schedule: ``left``, ``right``, ``midpoint``, ``trapezoid``, ``gauss-legendre``, n + 1 alphas (a left
            sum over that partition, e.g. a RiemannOpt schedule) or a :class:`~igcli.schedules.Schedule`;
            None: each rule's reference, ``right`` for ``riemann`` and ``left`` for ``idgi`` (Algorithm 1 takes
            the gradient at the start of each step).
        baseline: for ``ig``/``gig``/``eg``: ``black``, ``white``, ``blur``, ``uniform`` (in pixel space, see
            ``normalization``) or a (C, H, W)/(B, C, H, W) tensor in model-input space; a list of several
            averages the method over them (a baseline ensemble). For ``eg``, the distribution its samples draw
            from (``uniform``: a fresh draw per sample) unless ``references`` are given.
        output: ``prob`` (softmax probability of the target) or ``logit``.
        tolerance, min_steps, max_steps: with ``steps="auto"``: the relative L1 error to reach, in (0, 1); the
            gradient evaluations of the first uniform partition (rounded up to whole cells); the most per image.
        noise_samples: N > 0 averages the method over N noisy copies of each input, x + N(0, sigma^2) with
            sigma = ``noise_level`` x (max(x) - min(x)) per image (SmoothGrad; default level 0.15), combined by
            ``noise_aggregate``: ``smoothgrad`` (mean, the default), ``smoothgrad-sq`` (mean of squares) or
            ``vargrad`` (variance).
        references: (R, C, H, W) reference inputs in model-input space (or a
            :class:`~igcli.ensembles.ReferenceSource`) that baselines are drawn from: ``baseline_samples`` K
            distinct ones per image for ``ig``/``gig``, one per sample for ``eg``.
        keys: one string per image seeding its random draws (noise, references, alphas): the same key gives
            the same draws whatever the batch (the CLI passes the image's path); default: a hash of the image's
            values, so an image gets the same draws alone or in any batch (one copy of the images to the host).
        batch_size: most rows per forward/backward pass (default: 32 on CUDA, 4 on CPU).
        device: ``cuda``, ``cpu``, ... (default: CUDA when available).
        amp: autocast the model (bfloat16 on CPU, float16 on CUDA).
        normalization: the model's input normalisation, so pixel-space baselines are right; identity if None.
        seed: seed for random baselines and every ensemble draw.
        progress: called after every forward + backward chunk with the fraction (0 to 1] of this call's
            gradient evaluations done (counted on the host: it never waits for the device).
        check_completeness: issue one :class:`~igcli.completeness.CompletenessWarning` when the median
            completeness gap exceeds 5% (Sundararajan et al. 2017 §3), or maps explain no change; reads the gaps
            on the host once per call (one device sync on a GPU).
        **method_options: ``max_sigma``, ``blur_padding`` (``reflect``/``constant``), ``blur_derivative``
            (``exact``/``finite``) for ``blurig``; ``fraction``, ``max_dist``, ``anchors`` for ``gig``;
            ``samples`` for ``eg``; ``baseline_sigma`` for the ``blur`` baseline.

    Returns:
        An :class:`AttributionResult`.

    Raises:
        InvalidArgumentError, ShapeError, TargetError, NonFiniteError (all :class:`~igcli.errors.IgcliError`).
    """
    adaptive = is_auto(steps)
    if not adaptive:
        schedule = _schedule_or_default(schedule, method, rule)
    chosen = as_method(method)
    path_schedule = make_schedule(schedule, steps) if chosen.has_path and not adaptive else None  # built once
    baselines = _baseline_list(baseline)
    settings, ensemble = _described(method, rule, steps=steps, schedule=path_schedule or schedule,
                                    tolerance=tolerance, min_steps=min_steps, max_steps=max_steps,
                                    baseline=baselines, output=output, seed=seed, noise_samples=noise_samples,
                                    noise_level=noise_level, noise_aggregate=noise_aggregate,
                                    references=references is not None, baseline_samples=baseline_samples,
                                    **method_options)
    rule = settings["rule"]
    options = {option.name: settings[option.name] for option in chosen.options}
    if ensemble.active:
        source = as_reference_source(references, images.shape)
        if keys is not None and len(keys) != images.shape[0]:
            raise ShapeError(f"keys: {len(keys)} for {images.shape[0]} images; give one per image")
    with prepared_batch(model, images, target, output=output, batch_size=batch_size, device=device,
                        amp=amp) as batch:
        engine, inputs, targets, scores = batch.engine, batch.inputs, batch.targets, batch.scores
        if adaptive:
            return _attribute_adaptive(chosen, engine, inputs, targets, scores, images, baselines[0], settings,
                                       normalization, seed, options, progress, check_completeness, output)
        if progress is not None:
            per_member = path_schedule.steps if path_schedule else 1
            members = max(1, ensemble.noise_samples) * ensemble.members_per_noise_draw if ensemble.active else 1
            engine.on_rows = _progress_counter(progress, inputs.shape[0] * per_member * members)
        if ensemble.active:
            with plugin_faults(chosen):
                maps = attribute_ensemble(
                    chosen, ensemble, engine, inputs, targets, scores, schedule=path_schedule, rule=rule,
                    baselines=baselines, references=source, normalization=normalization or Normalization(),
                    seed=seed, keys=[str(key) for key in keys] if keys is not None else content_keys(images),
                    options=options)
            engine.raise_if_nonfinite()
            return _result(images, maps.attributions, targets, scores, maps.start_scores, maps.score_change, settings,
                           maps.relative_se, check_completeness and chosen.has_path and ensemble.linear, output,
                           schedule)
        if not chosen.has_path:
            _, gradients = engine.scores_and_gradients_chunked(inputs, targets)
            engine.raise_if_nonfinite()
            nan = torch.full_like(scores, float("nan"))
            return AttributionResult(gradients.to(device=images.device, dtype=images.dtype), targets.to(images.device),
                                     scores.to(images.device), nan.to(images.device), nan.to(images.device), settings)
        accumulator = make_rule(rule, inputs.shape, batch.device)
        with plugin_faults(chosen):
            baselines_made = chosen.make_baselines(baselines[0], inputs, normalization or Normalization(), seed,
                                                   options)
            baseline_scores = chosen.integrate(engine, inputs, baselines_made, path_schedule, accumulator, targets,
                                               scores, options)
        engine.raise_if_nonfinite()

    change = scores.to(torch.float64) - baseline_scores.to(torch.float64)
    return _result(images, accumulator.attributions, targets, scores, baseline_scores, change, settings, None,
                   check_completeness, output, schedule)


def _attribute_adaptive(method: Method, engine: Any, inputs: torch.Tensor, targets: torch.Tensor,
                        scores: torch.Tensor, images: torch.Tensor, baseline: Any, settings: dict[str, Any],
                        normalization: Normalization | None, seed: int, options: dict[str, Any],
                        progress: Callable[[float], None] | None, check_completeness: bool, output: str
                        ) -> AttributionResult:
    """:func:`attribute` with ``steps="auto"`` inside its prepared batch (:mod:`igcli.adaptive`)."""
    auto = AdaptiveSteps(settings["step_tolerance"], settings["min_steps"], settings["max_steps"])
    with plugin_faults(method):
        baselines = method.make_baselines(baseline, inputs, normalization or Normalization(), seed, options)
        path = method.make_path(inputs, baselines, options)
        found = integrate_adaptive(engine, path, settings["rule"], targets, scores, auto, on_round=progress)
    engine.raise_if_nonfinite()
    change = scores.to(torch.float64) - found.start_scores
    result = _result(images, found.attributions, targets, scores, found.start_scores, change, settings, None,
                     check_completeness, output, "auto")
    device = images.device  # host arrays, queued to the caller's device without waiting
    result.evaluations = to_device(found.evaluations.astype(np.int64), device)
    result.error_estimate = to_device(found.error_estimate.astype(np.float32), device)
    result.tolerance_met = to_device(found.tolerance_met.astype(bool), device)
    result.step_points = to_device(found.padded_points(), device)
    return result


def _result(images: torch.Tensor, attributions: torch.Tensor, targets: torch.Tensor, scores: torch.Tensor,
            baseline_scores: torch.Tensor, change: torch.Tensor, settings: dict[str, Any],
            relative_se: torch.Tensor | None, check_completeness: bool, output: str, schedule: Any
            ) -> AttributionResult:
    """The result on the images' device, with the completeness gap |sum(attr) - change| / |change| per image
    (NaN where the change is 0 or unknown), warning once when the median gap is large."""
    gap = (attributions.flatten(1).sum(dim=1) - change).abs() / change.abs()
    gap = torch.where(change != 0, gap, torch.full_like(gap, float("nan")))
    result = AttributionResult(
        attributions.to(device=images.device, dtype=images.dtype),
        targets.to(images.device),
        scores.float().to(images.device),
        baseline_scores.float().to(images.device),
        gap.float().to(images.device),
        settings,
        relative_se.float().to(images.device) if relative_se is not None else None,
    )
    if check_completeness:
        tally = GapTally()
        tally.add(result.completeness_gap.cpu().numpy())
        kind = schedule if isinstance(schedule, str) else "custom"  # alphas or a Schedule: perhaps calibrated
        for line in tally.messages(cli=False, output=output, schedule=kind):
            warnings.warn(line.removeprefix("warning: "), CompletenessWarning, stacklevel=3)
    return result


def _baseline_list(baseline: Any) -> list[Any]:
    """``baseline`` as a list of specs (one name or tensor is a list of one)."""
    if isinstance(baseline, (str, torch.Tensor)):
        return [baseline]
    try:
        specs = list(baseline)
    except TypeError:
        return [baseline]  # refused by make_baseline, naming it
    return specs


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
    baseline: BaselineSpec | Sequence[BaselineSpec] = "black",
    output: str = "prob",
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    min_steps: int = DEFAULT_MIN_STEPS,
    max_steps: int = DEFAULT_MAX_STEPS,
    noise_samples: int = 0,
    noise_level: float | None = None,
    noise_aggregate: str | None = None,
    references: bool = False,
    baseline_samples: int | None = None,
    **method_options: Any,
) -> dict[str, Any]:
    """Validate a method's settings and return them as :func:`attribute` records them (JSON-serialisable).

    Keys: ``method``, ``rule`` (None without a path), ``path``, ``output``, the method's options with defaults
    filled in, and for path methods ``steps``, ``schedule`` (name) and ``alphas`` (the sample points, a list of
    floats in [0, 1]); ``baseline`` (a name, ``"tensor"`` for a tensor, a list of those for several) for
    methods that take one, and ``seed`` where anything is drawn; ``noise_samples``, ``noise_level`` and
    ``noise_aggregate`` with a noise ensemble, ``baseline_samples`` with drawn references (``references``: whether
    they are given). With ``steps="auto"``: ``schedule`` is ``"auto"`` and ``step_tolerance``, ``min_steps``,
    ``max_steps`` replace ``steps`` and the schedule's lists. Raises :class:`InvalidArgumentError` for anything
    :func:`attribute` would refuse.
    """
    return _described(method, rule, steps=steps, schedule=schedule, baseline=baseline, output=output, seed=seed,
                      tolerance=tolerance, min_steps=min_steps, max_steps=max_steps,
                      noise_samples=noise_samples, noise_level=noise_level, noise_aggregate=noise_aggregate,
                      references=references, baseline_samples=baseline_samples, **method_options)[0]


def _described(method: str | Method, rule: str, *, steps: int | str, schedule: ScheduleSpec | None, baseline: Any,
               output: str, seed: int, tolerance: float, min_steps: int, max_steps: int, noise_samples: int,
               noise_level: float | None, noise_aggregate: str | None, references: bool,
               baseline_samples: int | None, **method_options: Any
               ) -> tuple[dict[str, Any], EnsembleSpec]:
    """:func:`describe`'s settings and the checked :class:`~igcli.ensembles.EnsembleSpec` they ask for."""
    chosen = as_method(method)
    adaptive = is_auto(steps)
    if not adaptive:
        schedule = _schedule_or_default(schedule, method, rule)
    method, rule, options = check_method(method, rule, output, method_options)
    baselines = _baseline_list(baseline)
    ensemble = check_ensemble(chosen, noise_samples=noise_samples, noise_level=noise_level,
                              noise_aggregate=noise_aggregate, baselines=baselines, references=references,
                              baseline_samples=baseline_samples,
                              method_samples=int(options[chosen.stochastic_samples]) if chosen.stochastic_samples else 0)
    auto = None
    if adaptive:
        what = ("noise_samples" if noise_samples else "references" if references else
                "several baselines" if ensemble.active else None)  # what makes it an ensemble
        auto = check_auto_steps(chosen, rule, schedule is not None, what,
                                AdaptiveSteps(tolerance, min_steps, max_steps))
    path_schedule = make_schedule(schedule, steps) if chosen.has_path and not adaptive else None
    if path_schedule is not None:
        chosen.check_steps(options, len(path_schedule.boundaries) - 1)
    settings = _settings(
        chosen,
        rule if chosen.has_path else None,
        path_schedule,
        baselines if chosen.takes_baseline and not references else None,  # references replace them
        output,
        options,
        seed,
    )
    if auto is not None:
        settings.update(schedule="auto", step_tolerance=auto.tolerance, min_steps=auto.min_steps,
                        max_steps=auto.max_steps)
    settings.update(ensemble.settings())
    if ensemble.has_noise or ensemble.stochastic_members:
        settings["seed"] = seed
    return settings, ensemble


def _settings(
    method: Method,
    rule: str | None,
    schedule: Schedule | None,
    baselines: list[BaselineSpec] | None,
    output: str,
    options: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    settings: dict[str, Any] = {"method": method.name, "rule": rule, "path": method.path, "output": output, **options}
    if schedule is not None:
        settings.update(steps=schedule.steps, schedule=schedule.name, alphas=schedule.points.tolist(),
                        schedule_weights=schedule.weights.tolist(), boundaries=schedule.boundaries.tolist())
    if baselines:
        names = ["tensor" if isinstance(spec, torch.Tensor) else spec for spec in baselines]
        settings["baseline"] = names[0] if len(names) == 1 else names
        if "uniform" in names:
            settings["seed"] = seed
    return settings
