"""``igcli attribute`` as a job: every image's maps for one part of a (distributed) run, into HDF5 shards.

Notebooks and scripts can call it too::

    from igcli.jobs import AttributeJob, run_attribute
    summary = run_attribute(AttributeJob(inputs=["imgs/"], out=Path("out"), model="efficientnet_lite0",
                                         method="ig", rule="idgi"))
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..api import AttributionResult, attribute
from .checks import AttributeJob
from .sharded import AttributeSummary, ShardStep, run_sharded


class AttributeStep(ShardStep):
    """Per batch: :func:`igcli.attribute` with the job's method, rule, schedule and baseline; one row per
    (image, target) with the map, the scores at both ends and the completeness gap."""

    label = "igcli attribute"

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None, paths: Sequence[str]) -> AttributionResult:
        return attribute(
            self.loaded.module, images, targets, method=self.recipe.method, rule=self.recipe.rule or "riemann",
            steps=self.steps, schedule=self.schedule,  # --steps auto: "auto" and None
            baseline=self.batch_baseline_list(images, paths),
            output=self.job.output, noise_samples=self.job.noise_samples, noise_level=self.job.noise_level,
            noise_aggregate=self.job.noise_aggregate, references=self.references,
            baseline_samples=self.job.baseline_samples, keys=self.draw_keys(paths), batch_size=self.batch_size, device=self.device,
            amp=self.job.amp,
            normalization=self.loaded.preprocessing.normalization, seed=self.job.seed, progress=self.on_progress,
            check_completeness=False,  # the run warns once at its end instead of once per batch
            **self.job.adaptive_settings(), **self.recipe.options,
        )

    def write(self, result: AttributionResult, paths: list[str], ranks: np.ndarray, images: torch.Tensor) -> None:
        columns: dict[str, Any] = {
            "attributions": self.stored_maps(result.attributions),
            "paths": paths,
            "targets": result.targets.cpu().numpy().astype(np.int64),
            "scores": result.scores.cpu().numpy().astype(np.float32),
            "baseline_scores": result.baseline_scores.cpu().numpy().astype(np.float32),
            "completeness_gap": result.completeness_gap.cpu().numpy().astype(np.float32),
        }
        if self.target_mode == "top":
            columns["target_rank"] = ranks
        if self.recipe.is_ensemble:
            columns["relative_se"] = result.relative_se.cpu().numpy().astype(np.float32)
        if self.job.adaptive:
            columns.update(adaptive_columns(result, self.recipe.max_steps))
        self.store(columns)


def adaptive_columns(result: AttributionResult, width: int) -> dict[str, np.ndarray]:
    """``--steps auto``'s per-row columns: ``gradient_evaluations`` (N,) int32, ``error_estimate`` (N,) float32,
    ``tolerance_met`` (N,) uint8 and ``step_points`` (N, ``width``) float64, the alphas where gradients were
    taken, NaN-padded to the run's ``max_steps`` so every shard of the run has the same width."""
    points = result.step_points.detach().cpu().numpy().astype(np.float64)
    if points.shape[1] > width:
        raise ValueError(f"step_points has {points.shape[1]} columns, more than max_steps={width}")
    padded = np.full((points.shape[0], width), np.nan)
    padded[:, : points.shape[1]] = points
    return {
        "gradient_evaluations": result.evaluations.detach().cpu().numpy().astype(np.int32),
        "error_estimate": result.error_estimate.detach().cpu().numpy().astype(np.float32),
        "tolerance_met": result.tolerance_met.detach().cpu().numpy().astype(np.uint8),
        "step_points": padded,
    }


def run_attribute(job: AttributeJob, **kwargs: Any) -> AttributeSummary:
    """Run ``job`` for this process's part and return what it did (keyword arguments: ``stdin``, ``quiet``,
    ``progress_stream``; see :func:`igcli.jobs.sharded.run_sharded`).

    Completed shards stay complete whatever happens; on KeyboardInterrupt (SIGINT, or SIGTERM turned into it
    by the CLI) the open shard is completed with the images finished so far, the index rebuilt, and the summary
    has ``interrupted=True``. Raises :class:`~igcli.errors.IgcliError` subclasses for bad input.
    """
    return run_sharded(job, AttributeStep, **kwargs)
