"""``igcli calibrate`` as a job: RiemannOpt schedules probed on a sample of image folders, saved as files.

It streams images through the jobs' shared pieces (inputs, model, labels, baselines: :mod:`igcli.jobs.streaming`,
:mod:`igcli.batch_baselines`) and hands the probes to :mod:`igcli.calibrate` (Bhattacharya et al. 2024, RiemannOpt, Algorithm 1 and Eq. 9).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

from .. import __version__
from ..batch_baselines import baseline_from_spec, batch_baseline
from ..data import discover_inputs
from ..engine import resolve_device
from ..errors import InvalidArgumentError
from ..methods import check_method, get_method, resolve_method
from ..models import load_model
from ..preprocessing import check_preprocessing
from ..progress import make_reporter
from ..schedules import cached_schedule_path
from ..text import shown_path
from .checks import DEFAULT_STEPS, check_baseline, check_labels, parse_target
from .pipeline import EXIT_SKIPPED
from .streaming import label_resolver, stream_images


@dataclass
class CalibrateJob:
    """What ``igcli calibrate`` is asked to do (the CLI options, by the same names)."""

    inputs: Sequence[str]
    model: str = "resnet50"
    weights: str | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    method: str = "ig"
    steps: int = DEFAULT_STEPS
    probe_steps: int = 128
    images: int = 64
    seed: int = 0
    statistic: str = "mean"
    output: str = "prob"
    baseline: str = "black"
    method_options: dict[str, Any] = field(default_factory=dict)
    target: str = "pred"
    labels: str | None = None
    batch_size: int | None = None
    workers: int | None = None
    device: str | None = None
    amp: bool = False
    out: Path | None = None  # None: the user cache (schedules.schedule_cache_dir)
    plot: Path | None = None
    null: bool = False
    trust_model_file: bool = False


@dataclass
class CalibrateSummary:
    """What a calibration produced: the schedule file and the objective (Eq. 9) at each stage."""

    file: str
    model: str
    method: str
    steps: int
    images: int
    skipped: list[dict[str, str]]
    probe_steps: int
    statistic: str
    objective_uniform: float
    objective_start: float
    objective_powell: float
    objective: float
    chosen: str
    alphas: list[float]
    seconds: float
    plot: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.skipped else 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}


def run_calibrate(job: CalibrateJob, *, stdin: TextIO | None = None, quiet: bool = False,
                  progress_stream: TextIO | None = None) -> CalibrateSummary:
    """RiemannOpt for ``job``: probe |g'| on a seeded sample of the inputs, optimise, save the schedule file."""
    import random

    from ..calibrate import average_probes, optimize_partition, interpolator, probe_derivative
    from ..schedules import write_schedule_file

    started = time.perf_counter()
    method, _ = resolve_method(job.method, "riemann")
    chosen = get_method(method)
    if not chosen.calibratable:
        raise InvalidArgumentError(f"--method {method} has no path to calibrate; use ig, blurig or gig")
    target_mode, target_value = parse_target(job.target)
    if target_mode == "top":
        raise InvalidArgumentError("--target topK: calibrate explains one class per image; use pred, label or INDEX")
    check_preprocessing(job.preprocessing)
    if job.images < 1:
        raise InvalidArgumentError(f"--images must be at least 1, got {job.images}")
    if not isinstance(job.steps, int) or job.steps < 1:
        raise InvalidArgumentError(f"--steps must be a positive integer, got {job.steps}")
    _, _, options = check_method(method, "riemann", job.output, job.method_options)  # before the model is loaded
    if chosen.takes_baseline:
        check_baseline(job.baseline, job.preprocessing.get("crop"))
    if target_mode == "label" and job.labels is not None:
        check_labels(job.labels, job.model)
    all_inputs = discover_inputs(job.inputs, stdin, null=job.null)
    sample = sorted(random.Random(job.seed).sample(all_inputs, min(job.images, len(all_inputs))))
    loaded = load_model(job.model, job.weights, preprocessing=job.preprocessing,
                        trust_model_file=job.trust_model_file)
    device = resolve_device(job.device)
    loaded.module.to(device)
    labels = label_resolver(job.labels, loaded, device) if target_mode == "label" else None
    baseline = baseline_from_spec(job.baseline, loaded, device) if chosen.takes_baseline else "black"
    probes, skipped = [], []
    with make_reporter(len(sample), "igcli calibrate", quiet=quiet, stream=progress_stream) as reporter:

        def skip(path: str, reason: str) -> None:
            skipped.append({"path": path, "reason": reason})
            reporter.message(f"skipped {shown_path(path)}: {reason}")

        with contextlib.closing(stream_images(sample, loaded, device, labels=labels, batch_size=job.batch_size,
                                              workers=job.workers, on_skip=skip)) as batches:
            for images, batch_labels, paths, skips in batches:
                if paths:
                    targets = {"pred": None, "label": batch_labels, "index": target_value}[target_mode]
                    probes.append(probe_derivative(
                        loaded.module, images, targets, method=method, probe_steps=job.probe_steps,
                        statistic=job.statistic, output=job.output,
                        baseline=batch_baseline(baseline, paths, job.seed, images.shape[1:], loaded, device),
                        normalization=loaded.preprocessing.normalization, batch_size=job.batch_size, device=device,
                        amp=job.amp, seed=job.seed, **job.method_options,
                    ))
                reporter.advance(len(paths), skips)
    alphas, derivative = average_probes(probes)
    curve = interpolator(alphas, derivative)
    optimized = optimize_partition(curve, job.steps)
    used = sum(p.per_image.shape[0] for p in probes)
    calibration = {
        "images": used,
        "sampled_from": len(all_inputs),
        "skipped": len(skipped),
        "seed": job.seed,
        "probe_steps": job.probe_steps,
        "statistic": job.statistic,
        "output": job.output,
        "baseline": job.baseline if chosen.takes_baseline else None,
        "target": job.target,
        "options": {name: options[name] for name in job.method_options},  # as used: --option's text converted
        "preprocessing": loaded.preprocessing.as_dict(),
        "objective": "Swain and Singhi 2024, Eq. 9 in remainder form: "
                     "sum_i int_{a_i}^{a_{i+1}} (a_{i+1} - t) |g'(t)| dt",
        "objective_before": optimized.objective_uniform,
        "objective_start": optimized.objective_start,
        "objective_powell": optimized.objective_powell,
        "objective_after": optimized.objective,
        "chosen": optimized.chosen,
        "powell_evaluations": optimized.evaluations,
        "eq9_verbatim": optimized.eq9,
        "derivative": {"alphas": [float(a) for a in alphas], "values": [float(v) for v in derivative]},
    }
    target_file = job.out or cached_schedule_path(job.model, method, job.steps)
    written = write_schedule_file(target_file, model=job.model, weights_sha256=loaded.weights_sha256, method=method,
                                  alphas=optimized.alphas, calibration=calibration, igcli_version=__version__)
    plot = None
    if job.plot is not None:
        from ..figures import plot_schedule

        plot = str(plot_schedule(job.plot, alphas, derivative, optimized.alphas,
                                 title=f"{job.model} {method}: |g'(alpha)| and {job.steps} sample points"))
    return CalibrateSummary(
        file=str(written), model=job.model, method=method, steps=job.steps, images=used, skipped=skipped,
        probe_steps=job.probe_steps, statistic=job.statistic, objective_uniform=optimized.objective_uniform,
        objective_start=optimized.objective_start, objective_powell=optimized.objective_powell,
        objective=optimized.objective, chosen=optimized.chosen, alphas=[float(a) for a in optimized.alphas],
        seconds=round(time.perf_counter() - started, 3), plot=plot,
    )
