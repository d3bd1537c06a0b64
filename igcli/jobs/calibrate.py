"""``igcli calibrate`` as a job: RiemannOpt schedules probed on a sample of image folders, saved as files.

It streams images through the jobs' shared pieces (inputs, model, labels, baselines: :mod:`igcli.jobs.streaming`,
:mod:`igcli.batch_baselines`) and hands the probes to :mod:`igcli.calibrate` (Bhattacharya et al. 2024, RiemannOpt, Algorithm 1 and Eq. 9).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

from .. import __version__
from ..batch_baselines import baseline_from_spec, batch_baseline
from ..data import discover_inputs
from ..engine import resolve_device
from ..errors import InvalidArgumentError
from ..methods import check_method, get_method, resolve_method
from ..models import load_model
from ..preprocessing import check_preprocessing
from ..schedules import cached_schedule_path
from ..text import shown_path
from .checks import DEFAULT_STEPS, check_baseline, check_labels, parse_target
from .pipeline import EXIT_SKIPPED, Job, run_job
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


class CalibrateRun(Job):
    """RiemannOpt on the pipeline: open (checks, the seeded sample, the model), probe |g'| batch by batch,
    then optimise the partition and write the schedule file (:meth:`summary`)."""

    label = "igcli calibrate"

    def __init__(self, job: CalibrateJob, stdin: TextIO | None) -> None:
        self.job, self.stdin = job, stdin
        self.probes: list[Any] = []
        self.skipped: list[dict[str, str]] = []

    def open(self) -> int:
        import random

        job = self.job
        method, _ = resolve_method(job.method, "riemann")
        self.method = get_method(method)
        if not self.method.calibratable:
            raise InvalidArgumentError(f"--method {method} has no path to calibrate; use ig, blurig or gig")
        self.target_mode, self.target_value = parse_target(job.target)
        if self.target_mode == "top":
            raise InvalidArgumentError("--target topK: calibrate explains one class per image; use pred, label or INDEX")
        check_preprocessing(job.preprocessing)
        if job.images < 1:
            raise InvalidArgumentError(f"--images must be at least 1, got {job.images}")
        if not isinstance(job.steps, int) or job.steps < 1:
            raise InvalidArgumentError(f"--steps must be a positive integer, got {job.steps}")
        _, _, self.options = check_method(method, "riemann", job.output, job.method_options)  # before the model loads
        if self.method.takes_baseline:
            check_baseline(job.baseline, job.preprocessing.get("crop"))
        if self.target_mode == "label" and job.labels is not None:
            check_labels(job.labels, job.model)
        self.all_inputs = discover_inputs(job.inputs, self.stdin, null=job.null)
        self.sample = sorted(random.Random(job.seed).sample(self.all_inputs, min(job.images, len(self.all_inputs))))
        self.loaded = load_model(job.model, job.weights, preprocessing=job.preprocessing,
                                 trust_model_file=job.trust_model_file)
        self.device = resolve_device(job.device)
        self.loaded.module.to(self.device)
        self.labels = label_resolver(job.labels, self.loaded, self.device) if self.target_mode == "label" else None
        self.baseline = (baseline_from_spec(job.baseline, self.loaded, self.device) if self.method.takes_baseline
                         else "black")
        return len(self.sample)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})
        self.reporter.message(f"skipped {shown_path(path)}: {reason}")

    def batches(self) -> Iterator[Any]:
        return stream_images(self.sample, self.loaded, self.device, labels=self.labels, batch_size=self.job.batch_size,
                             workers=self.job.workers, on_skip=self.skip)

    def step(self, batch: Any) -> tuple[int, int]:
        from ..calibrate import probe_derivative

        images, labels, paths, skips = batch
        job, loaded = self.job, self.loaded
        if paths:
            targets = {"pred": None, "label": labels, "index": self.target_value}[self.target_mode]
            self.probes.append(probe_derivative(
                loaded.module, images, targets, method=self.method.name, probe_steps=job.probe_steps,
                statistic=job.statistic, output=job.output,
                baseline=batch_baseline(self.baseline, paths, job.seed, images.shape[1:], loaded, self.device),
                normalization=loaded.preprocessing.normalization, batch_size=job.batch_size, device=self.device,
                amp=job.amp, seed=job.seed, **job.method_options,
            ))
        return len(paths), skips

    def summary(self, interrupted: bool, seconds: float, loop_seconds: float) -> CalibrateSummary:
        """Optimise the partition on the averaged probes, write the schedule file (and the plot)."""
        from ..calibrate import average_probes, interpolator, optimize_partition
        from ..schedules import write_schedule_file

        job, loaded, probes, skipped, method = self.job, self.loaded, self.probes, self.skipped, self.method.name
        chosen, all_inputs, started = self.method, self.all_inputs, time.perf_counter() - seconds
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
            "options": {name: self.options[name] for name in job.method_options},  # as used: --option's text converted
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


def run_calibrate(job: CalibrateJob, *, stdin: TextIO | None = None, quiet: bool = False,
                  progress_stream: TextIO | None = None) -> CalibrateSummary:
    """RiemannOpt for ``job``: probe |g'| on a seeded sample of the inputs, optimise, save the schedule file."""
    return run_job(CalibrateRun(job, stdin), quiet=quiet, progress_stream=progress_stream)
