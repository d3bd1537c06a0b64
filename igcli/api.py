"""The public library API: ``igcli.attribute``.

Every method is path x schedule x rule (README, "What is computed, exactly"): ``ig`` walks the straight line
from a baseline, ``blurig`` the blur path, ``gig`` Guided IG's adaptive path; ``riemann`` or ``idgi`` turns the
gradients met on the way into attributions. ``vg`` is the plain gradient at the input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Union

import torch
from torch import nn

from .baselines import BaselineSpec, Normalization, make_baseline
from .completeness import CompletenessWarning, GapTally
from .engine import Engine, default_batch_size, prepared_model, resolve_device
from .errors import InvalidArgumentError, NonFiniteError, ShapeError, TargetError
from .integrate import integrate_fixed_path, integrate_guided_path
from .methods import METHOD_NAMES, METHOD_OPTIONS, check_method
from .methods import resolve_method as _resolve_method, resolve_options as _resolve_options  # noqa: F401 (used by runner, calibrate)
from .paths import BlurPath, StraightPath
from .rules import make_rule
from .schedules import Schedule, ScheduleSpec, make_schedule

TargetSpec = Union[None, int, Sequence[int], torch.Tensor]


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
    method: str = "ig",
    rule: str = "riemann",
    steps: int = 32,
    schedule: ScheduleSpec = "right",
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
        method: ``vg``, ``ig``, ``blurig``, ``gig``; ``idgi`` is short for ``ig`` with ``rule="idgi"``.
        rule: ``riemann`` or ``idgi`` (any path method).
        steps: gradient evaluations along the path (the trapezoid schedule uses steps + 1).
        schedule: ``left``, ``right``, ``midpoint``, ``trapezoid``, ``gauss-legendre``, n + 1 alphas (a left
            sum over that partition, e.g. a RiemannOpt schedule) or a :class:`~igcli.schedules.Schedule`.
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
    settings = describe(method, rule, steps=steps, schedule=schedule, baseline=baseline, output=output, seed=seed,
                        **method_options)
    method, rule = settings["method"], settings["rule"]
    options = {key: settings[key] for key in METHOD_OPTIONS[method]}
    _check_images(images)
    run_device = resolve_device(device)
    if batch_size is None:
        batch_size = default_batch_size(run_device)
    engine = Engine(model, output=output, batch_size=batch_size, device=run_device, amp=amp)
    path_schedule = make_schedule(schedule, steps) if method != "vg" else None
    if progress is not None:
        engine.on_rows = _progress_counter(progress, images.shape[0] * (path_schedule.steps if path_schedule else 1))

    result_device = images.device
    inputs = _to_device(images, run_device)
    with prepared_model(model, run_device):
        logits = engine.predict(inputs)
        engine.raise_if_nonfinite()
        targets = _resolve_targets(target, logits, inputs.shape[0], run_device)
        engine.check_targets(targets)
        scores = engine.target_scores(logits, targets)

        if method == "vg":
            _, gradients = engine.scores_and_gradients_chunked(inputs, targets)
            engine.raise_if_nonfinite()
            attributions = gradients.to(images.dtype)
            nan = torch.full_like(scores, float("nan"))
            return AttributionResult(
                attributions.to(result_device),
                targets.to(result_device),
                scores.to(result_device),
                nan.to(result_device),
                nan.to(result_device),
                settings,
            )

        accumulator = make_rule(rule, inputs.shape, run_device)
        steps_total = path_schedule.steps
        if method == "blurig":
            path = BlurPath(
                inputs, options["max_sigma"], padding=options["blur_padding"], derivative=options["blur_derivative"]
            )
            boundary_scores = integrate_fixed_path(engine, path, path_schedule, accumulator, targets, {steps_total: scores})
            baseline_scores = boundary_scores[:, 0]
        else:
            baselines = make_baseline(
                baseline, inputs, normalization, blur_sigma=options["baseline_sigma"], seed=seed
            )
            if method == "ig":
                path = StraightPath(inputs, baselines)
                boundary_scores = integrate_fixed_path(
                    engine, path, path_schedule, accumulator, targets, {steps_total: scores}
                )
                baseline_scores = boundary_scores[:, 0]
            else:
                baseline_scores = integrate_guided_path(
                    engine,
                    inputs,
                    baselines,
                    path_schedule,
                    accumulator,
                    targets,
                    scores,
                    fraction=options["fraction"],
                    max_dist=options["max_dist"],
                    anchors=options["anchors"],
                )
        engine.raise_if_nonfinite()

    attributions = accumulator.attributions
    change = scores.to(torch.float64) - baseline_scores.to(torch.float64)
    gap = (attributions.flatten(1).sum(dim=1) - change).abs() / change.abs()
    gap = torch.where(change != 0, gap, torch.full_like(gap, float("nan")))
    result = AttributionResult(
        attributions.to(device=result_device, dtype=images.dtype),
        targets.to(result_device),
        scores.float().to(result_device),
        baseline_scores.float().to(result_device),
        gap.float().to(result_device),
        settings,
    )
    if check_completeness:
        tally = GapTally()
        tally.add(result.completeness_gap.cpu().numpy())
        kind = schedule if isinstance(schedule, str) else "custom"  # alphas or a Schedule: perhaps calibrated
        for line in tally.messages(cli=False, output=output, schedule=kind):
            warnings.warn(line.removeprefix("warning: "), CompletenessWarning, stacklevel=2)
    return result


def _progress_counter(progress: Callable[[float], None], total: int) -> Callable[[int], None]:
    """The engine's per-chunk row counter turned into ``progress(fraction done)``, ``total`` rows in all."""
    done = 0

    def count(rows: int) -> None:
        nonlocal done
        done += rows
        progress(min(1.0, done / total))

    return count


def describe(
    method: str = "ig",
    rule: str = "riemann",
    *,
    steps: int = 32,
    schedule: ScheduleSpec = "right",
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
    method, rule, options = check_method(method, rule, output, method_options)
    path_schedule = make_schedule(schedule, steps) if method != "vg" else None
    return _settings(
        method,
        rule if method != "vg" else None,
        path_schedule,
        baseline if method in ("ig", "gig") else None,
        output,
        options,
        seed,
    )


# -- argument checking ---------------------------------------------------------------------------------------


def _check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise InvalidArgumentError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] == 0 or min(images.shape[1:]) == 0:
        raise ShapeError(f"images must have shape (B, C, H, W) with B, C, H, W > 0, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise InvalidArgumentError(f"images must be a float tensor (preprocessed for the model), got {images.dtype}")
    finite = torch.isfinite(images.flatten(1)).all(dim=1)
    if not bool(finite.all()):
        index = int((~finite).nonzero()[0, 0])
        raise NonFiniteError(f"image {index} contains NaN or infinity")


def _to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    if images.device == device:
        return images
    if device.type == "cuda" and images.device.type == "cpu":
        return images.pin_memory().to(device, non_blocking=True)
    return images.to(device)


def _resolve_targets(target: TargetSpec, logits: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    if target is None:
        return logits.argmax(dim=1)
    if isinstance(target, bool):
        raise TargetError(f"target must be a class index, got {target!r}")
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.int64, device=device)
    try:
        targets = torch.as_tensor(target, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise TargetError(f"target must be None, an int or {batch} ints, got {target!r}") from None
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TargetError(f"targets must be integers, got {targets.dtype}")
    targets = targets.to(torch.int64).reshape(-1)
    if targets.shape[0] == 1:
        return targets.expand(batch).clone()
    if targets.shape[0] != batch:
        raise ShapeError(f"{targets.shape[0]} targets for {batch} images")
    return targets


def _settings(
    method: str,
    rule: str | None,
    schedule: Schedule | None,
    baseline: BaselineSpec | None,
    output: str,
    options: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    path = {"vg": None, "ig": "straight", "blurig": "blur", "gig": "guided"}[method]
    settings: dict[str, Any] = {"method": method, "rule": rule, "path": path, "output": output, **options}
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

