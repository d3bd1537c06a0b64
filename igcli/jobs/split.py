"""``igcli split`` as a job: Split IG over image folders into shards, with the paper's statistics and figures.

It runs on the shard-writing pipeline (:mod:`igcli.jobs.sharded`) (inputs, parts, resume, shards, progress) with a
different per-batch computation, so every option of ``attribute`` that applies means the same here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..output import Output
from ..recipe import SPLIT_IG
from ..split import STATISTICS, parse_psis, split
from ..validate import OutputError
from .checks import AttributeJob
from .sharded import AttributeSummary, ShardStep, run_sharded


@dataclass
class SplitJob(AttributeJob):
    """``igcli split`` options: those of ``attribute`` (straight path only) plus the thresholds."""

    psis: Any = "0.9"
    tolerance: float = 1e-4
    plot: Path | None = None
    output: str = "logit"


class SplitStep(ShardStep):
    """Per batch: Split IG for every psi, written as extra per-row datasets beside the full IG."""

    label = "igcli split"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.psis = parse_psis(self.job.psis)
        self.curve_sums: dict[str, np.ndarray] = {}
        self.curve_count = 0
        self.plotted = 0

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None, paths: Sequence[str]) -> Any:
        return split(
            self.loaded.module, images, targets, psis=self.psis, steps=self.steps, schedule=self.schedule,
            rule=self.job.rule, baseline=self.batch_baselines(images, paths), output=self.job.output, tolerance=self.job.tolerance,
            normalization=self.loaded.preprocessing.normalization, batch_size=self.batch_size, device=self.device,
            amp=self.job.amp, seed=self.job.seed,
            baseline_sigma=self.recipe.options["baseline_sigma"],
        )

    def write(self, result: Any, paths: list[str], ranks: np.ndarray, images: torch.Tensor) -> None:
        change = (result.scores - result.baseline_scores).double()
        gap = ((result.full.flatten(1).double().sum(1) - change).abs() / change.abs()).float()
        columns = {
            "attributions": self.stored_maps(result.full),
            "left": self.stored_maps(result.left),
            "right": self.stored_maps(result.right),
            "paths": paths,
            "targets": result.targets.cpu().numpy().astype(np.int64),
            "scores": result.scores.cpu().numpy().astype(np.float32),
            "baseline_scores": result.baseline_scores.cpu().numpy().astype(np.float32),
            "completeness_gap": gap.cpu().numpy(),
            "alpha_star": result.alpha_star.astype(np.float64),
            "found": result.found.astype(np.uint8),
            "threshold_error": result.threshold_error.astype(np.float64),
            "curve_scores": result.curve_scores.astype(np.float32),
            "curve_gradient_norms": result.curve_gradient_norms.astype(np.float32),
            **{name: values.astype(np.float64) for name, values in result.statistics.items()},
        }
        if self.target_mode == "top":
            columns["target_rank"] = ranks
        self.store(columns)
        self._accumulate_curves(result)
        if self.job.plot is not None:
            self._plot_rows(result, paths, images)

    def _accumulate_curves(self, result: Any) -> None:
        """Running sums for the aggregate figure: f normalised to [f(x'), f(x)] -> [0, 1], gradient norm
        normalised by its mean along the path (images rising along the path only)."""
        rises = result.found[:, 0]
        if not rises.any():
            return
        scores = result.scores.double().cpu().numpy()[rises, None]
        start = result.baseline_scores.double().cpu().numpy()[rises, None]
        normalised = (result.curve_scores[rises] - start) / (scores - start)
        norms = result.curve_gradient_norms[rises]
        norms = norms / np.maximum(norms.mean(axis=1, keepdims=True), 1e-300)
        for name, values in (("f", normalised), ("grad", norms), ("alpha_star", result.alpha_star[rises])):
            self.curve_sums[name] = self.curve_sums.get(name, 0) + values.sum(axis=0)
        self.curve_count += int(rises.sum())
        self.curve_alphas = result.curve_alphas

    def _plot_rows(self, result: Any, paths: list[str], images: torch.Tensor) -> None:
        from ..captions import class_text, printable
        from ..figures import plot_split_image
        from ..render import safe_stem

        pixels = self.loaded.preprocessing.normalization.to_pixels(images).clamp(0, 1)
        for i, path in enumerate(paths):
            name = f"{self.rows - len(paths) + i:05d}-{safe_stem(path)}-t{int(result.targets[i])}.png"
            plot_split_image(
                Path(self.job.plot) / name,
                (pixels[i].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8),
                result.curve_alphas, result.curve_scores[i], result.curve_gradient_norms[i],
                float(result.baseline_scores[i]), float(result.scores[i]), result.psis, result.alpha_star[i],
                result.left[i].cpu().numpy(), result.right[i].cpu().numpy(), result.full[i].cpu().numpy(),
                title=(f"{printable(Path(path).name)}: {class_text(int(result.targets[i]), self.loaded.categories)}, "
                       f"{self.job.output} f(x) = {float(result.scores[i]):.3g}, f(x') = {float(result.baseline_scores[i]):.3g}"),
                score_name="probability" if self.job.output == "prob" else self.job.output,
            )

    def finish(self) -> None:
        if self.job.plot is not None and self.curve_count:
            from ..figures import plot_split_aggregate

            plot_split_aggregate(
                Path(self.job.plot) / "aggregate.png", self.curve_alphas, self.curve_sums["f"] / self.curve_count,
                self.curve_sums["grad"] / self.curve_count, self.psis, self.curve_sums["alpha_star"] / self.curve_count,
                count=self.curve_count,
            )


def run_split(job: SplitJob, **kwargs: Any) -> AttributeSummary:
    """Run Split IG for this process's part of ``job`` (see :func:`igcli.jobs.sharded.run_sharded` for kwargs)."""
    if job.method not in ("ig", "idgi"):
        raise InvalidArgumentError(f"Split IG walks the straight path; --method {job.method} does not apply")
    if job.steps == "auto":  # its curves share one set of points across images
        raise InvalidArgumentError("--steps auto is igcli attribute's; Split IG needs a step count: give --steps N")
    psis = parse_psis(job.psis)
    if not (0 < job.tolerance < 1):
        raise InvalidArgumentError(f"--tolerance must be in (0, 1), got {job.tolerance}")
    if job.plot is not None:
        Path(job.plot).mkdir(parents=True, exist_ok=True)
    extra = {"method": SPLIT_IG, "psi": psis.tolist(), "tolerance": job.tolerance}
    return run_sharded(job, SplitStep, extra=extra, **kwargs)


@dataclass
class SplitStatistics:
    """The paper's Tables 1-3 over an output: per psi, means over images where alpha* exists."""

    psis: list[float]
    images: int
    found: list[int]
    means: dict[str, list[float]] = field(default_factory=dict)  # statistic -> per psi; plus "alpha_star"
    medians: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"psis": self.psis, "images": self.images, "found": self.found, "means": self.means,
                "medians": self.medians}


def summarize_split(source: Any) -> SplitStatistics:
    """Average the per-image statistics stored in Split IG shards (an OUT folder, index or shards)."""
    output = Output(source)
    if output.recipe.method != SPLIT_IG:
        raise InvalidArgumentError(f"{source}: not Split IG output (method {output.recipe.method!r})")
    try:
        psis = [float(psi) for psi in output.recipe.extra["psi"]]
        if not len(output):  # every input was skipped: no rows, hence no statistics, and nothing damaged
            return SplitStatistics(psis, 0, [0] * len(psis))
        columns = {name: output.column(name) for name in ["found", "alpha_star", *STATISTICS]}
        found = columns["found"].astype(bool)
        if found.ndim != 2 or found.shape[1] != len(psis):
            raise ValueError(f"'found' has shape {found.shape}, not (rows, {len(psis)})")
        means, medians = {}, {}
        for name in ["alpha_star", *STATISTICS]:
            values = np.where(found, columns[name], np.nan)
            with np.errstate(all="ignore"):
                means[name] = [float(v) for v in np.nanmean(values, axis=0)] if found.any() else []
                medians[name] = [float(v) for v in np.nanmedian(values, axis=0)] if found.any() else []
        return SplitStatistics(psis, int(found.shape[0]),
                               [int(c) for c in found.sum(axis=0)], means, medians)
    except (KeyError, TypeError, ValueError) as error:  # a folder that only claims to be Split IG output
        raise OutputError(f"{source}: Split IG statistics missing or malformed ({error})") from None
