"""``igcli evaluate``: the registry's metrics over saved shards, as a job on the pipeline, in parts.

For each stored map it reloads the input image (where it is now: :func:`igcli.output.locate_image`,
``--root``), preprocesses it as the run did, ranks pixels by the map (``--rank``) and scores it with every
metric asked for (:mod:`igcli.jobs.evaluate_batch`). Per-image results are written as they come, atomically,
into the evaluation's folder (:mod:`igcli.jobs.evaluate_folder`, :mod:`igcli.results_store`); parts
(``--shard i/n``, SLURM arrays, torchrun ranks) take every n-th image; ``--resume`` scores only what no run
scored yet; the summary merges every part's results (:func:`summarize` re-reads it without computing).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from .. import __version__
from ..data import select_part
from ..distributed import resolve_part
from ..engine import Engine, default_batch_size, resolve_device
from ..errors import InvalidArgumentError, first_line
from ..locking import FolderLock
from ..metrics.catalog import get_metric, parse_metric_options, parse_metrics
from ..metrics.ranking import RANKINGS
from ..metrics.webp import default_workers, make_pool, shutdown
from ..models import LoadedModel, ModelLoadError, Preprocessing, load_model
from ..output import DRAW_KEYS, IMAGE_PATHS, Output
from ..recipe import Recipe
from ..results_store import ResultsWriter, next_results_sequence, read_results
from ..signals import deferred
from ..validate import OutputError
from .evaluate_batch import Scorer, score_rows
from .evaluate_folder import (
    evaluation_name,
    evaluations_root,
    find_evaluations,
    make_evaluation_folder,
    prepare_evaluation,
    source_digest,
)
from .evaluate_results import EvaluateResult, from_stored
from .pipeline import Job, delivered, run_job

PUBLISH_SECONDS = 120.0  # an open results file is completed at least this often: a SIGKILL loses at most this
RESULTS_FILE_ROWS = 1000


@dataclass
class EvaluateJob:
    """What ``igcli evaluate`` is asked to do (one output)."""

    source: str | os.PathLike
    metrics: Sequence[str] = ("insertion", "deletion")
    rank: str = "signed"
    model: str | None = None  # default: the model named in the shards
    weights: str | None = None
    masks: str | None = None
    boxes: str | None = None
    batch_size: int | None = None
    device: str | None = None
    limit: int | None = None  # the first N stored maps (rows)
    seed: int = 0  # per-image noise of the metrics: seeded from (seed, path)
    trust_model_file: bool = False  # let --model FILE be a pickled whole module (runs its code)
    root: str | os.PathLike | None = None  # --root: where the input images are now (igcli.output.locate_image)
    min_pred: float | None = None  # SIC/AIC: not scored below this score of the original (PAIR's min_pred_value)
    options: Sequence[str] | dict[str, dict[str, Any]] | None = None  # -O METRIC.OPTION=VALUE
    shard: str | None = None  # --shard i/n (default: SLURM array variables, torchrun ranks)
    resume: bool = False
    overwrite: bool = False
    results: str | os.PathLike | None = None  # where evaluation folders go (default OUT/evaluations)
    file_rows: int = RESULTS_FILE_ROWS
    encode_workers: int | None = None  # SIC/AIC's WebP encoding processes (default: the cores the model leaves; 0: none)
    command: str = ""
    environ: dict[str, str] | None = field(default=None, repr=False)


def _overrides(stored: dict[str, Any]) -> dict[str, Any]:
    """Recorded preprocessing as load_model overrides."""
    return {key: stored[key] for key in ("resize", "crop", "mean", "std", "interpolation") if key in stored}


class EvaluateRun(Job):
    """``evaluate`` on the pipeline for this process's part."""

    label = "igcli evaluate"
    keeps_partial_work = True

    def __init__(self, job: EvaluateJob) -> None:
        self.job = job
        self.lock: FolderLock | None = None
        self.writer: ResultsWriter | None = None
        self.scored_now = 0
        self.late_interrupt = False
        self._notes: list[str] = []
        self._opened = time.monotonic()  # when the open results file got its first rows
        self._last: str | None = None  # the path of the last row scored

    def open(self) -> int:
        job = self.job
        names = parse_metrics(job.metrics)
        options = parse_metric_options(job.options, names)
        if job.rank not in RANKINGS:
            raise InvalidArgumentError(f"--rank {job.rank!r}: choose from {', '.join(RANKINGS)}")
        if job.min_pred is not None and not 0.0 <= job.min_pred <= 1.0:
            raise InvalidArgumentError(f"--min-pred {job.min_pred}: must be in [0, 1]")
        if job.file_rows < 1:
            raise InvalidArgumentError(f"file_rows must be at least 1, got {job.file_rows}")
        if job.encode_workers is not None and job.encode_workers < 0:
            raise InvalidArgumentError(f"encode_workers must be 0 (encode in this process) or more, "
                                       f"got {job.encode_workers}")
        self.part = part = resolve_part(job.shard, job.environ)
        self.output = output = Output(job.source, root=job.root)
        recipe = output.recipe
        metrics = [get_metric(name) for name in names]
        if any(m.recomputes or m.needs_module for m in metrics):
            recipe.method_object()  # a plugin's method must be installed to recompute: say so before loading
        for metric in metrics:
            if metric.check is not None:
                metric.check(recipe)
        truth = None
        if any(m.needs_truth for m in metrics):
            from ..metrics.ground_truth import GroundTruth

            truth = GroundTruth(job.masks, job.boxes, Preprocessing.from_dict(recipe.preprocessing))
        import torch

        cuda_rank = f"cuda:{part.local_rank}" if part.world_size > 1 and torch.cuda.is_available() else None
        device = resolve_device(job.device or cuda_rank)
        batch_size = job.batch_size or default_batch_size(device)
        self.batch_size = batch_size
        engine = recompute = rebuild = module = None
        weights_sha256 = None
        if any(m.needs_model for m in metrics):
            loaded = _load_recipe_model(job, recipe)
            weights_sha256 = loaded.weights_sha256
            module = loaded.module.eval().to(device)
            # Metrics score in float32 whatever the run's --amp: amp changed how the maps were computed, not
            # what is measured about them. NaN rows come back as NaN values (the image is skipped alone).
            engine = Engine(module, output="prob", batch_size=batch_size, device=device, amp=False)
            if any(m.recomputes or m.needs_module for m in metrics):
                try:
                    recompute = recipe.attribution_function(loaded, device, batch_size)
                except (InvalidArgumentError, KeyError, TypeError, ValueError) as error:
                    raise OutputError(f"{output.shards[0]}: its settings cannot rebuild the attribution method "
                                      f"({first_line(error)})") from None

                def rebuild_for(other: Any) -> Any:
                    return recipe.attribution_function(replace(loaded, module=other), device, batch_size)
                rebuild = rebuild_for
        self.scorer = Scorer(metrics, options, job.rank, job.seed, device, Preprocessing.from_dict(recipe.preprocessing),
                             engine=engine, recompute=recompute, rebuild=rebuild, module=module, truth=truth,
                             root=job.root, min_pred=job.min_pred)
        self.settings = evaluation_settings(job, names, options, output, weights_sha256, part.count)
        self.folder = evaluations_root(Path(output.shards[0]).parent, job.results) / evaluation_name(self.settings)
        make_evaluation_folder(self.folder, self.settings, "--results" if job.results else "OUT")
        self.lock = FolderLock(self.folder, part.index, part.count, job.command, option="evaluation folder")
        self.lock.acquire()
        prepare_evaluation(self.folder, part, self.settings, resume=job.resume, overwrite=job.overwrite,
                           notes=self._notes)
        # Another part's damaged file is that part's to repair (its --resume); its images are not this part's.
        done = read_results(self.folder, damaged=[]).keys() if job.resume else set()
        self.plan, self.keys = _plan(output, job.limit, part.index, part.count, done)
        self.writer = ResultsWriter(self.folder, part.index, self.settings, job.file_rows,
                                    next_results_sequence(self.folder, part.index))
        self.label += f" part {part.label}" if part.count > 1 else ""
        self.scorer.pool = _encode_pool(job.encode_workers, names, device)  # last: nothing can refuse the run now
        return sum(len(dict.fromkeys(paths)) for _, _, paths in self.plan)

    def notes(self) -> list[str]:
        return self._notes

    def batches(self) -> Iterator[dict[str, Any]]:
        columns = ["attributions", "paths", "abs_paths", IMAGE_PATHS, DRAW_KEYS, "targets", "completeness_gap"]
        for shard, rows, _ in self.plan:
            for begin in range(0, len(rows), self.batch_size):
                yield self.output.shard_rows(shard, columns, rows[begin:begin + self.batch_size])

    def step(self, rows: dict[str, Any]) -> tuple[int, int]:
        scored = score_rows(self.scorer, rows, self.reporter.message)
        with deferred():  # a batch's rows and its skips land in one file, together
            if scored.columns["paths"]:
                self.writer.write(scored.columns)
            for path, reason in scored.skipped:
                self.writer.skip(path, reason)
            if self.writer.open_rows and time.monotonic() - self._opened >= PUBLISH_SECONDS:
                self.writer.finish_shard()
        if not self.writer.open_rows:
            self._opened = time.monotonic()
        # An image's topK rows may span two batches: it counts where its first row is.
        started = _first_rows(rows["paths"], self._last)
        self._last = rows["paths"][-1] if len(rows["paths"]) else self._last
        lost = {path for path, _ in scored.skipped} - set(scored.columns["paths"])
        self.scored_now += sum(path not in lost for path in started)
        return sum(path not in lost for path in started), sum(path in lost for path in started)

    def close(self) -> None:
        if self.writer is not None:
            self.late_interrupt = delivered(self.writer.close)

    def release(self) -> None:
        # Also after an interrupt (SIGINT, SIGTERM): queued encodes are cancelled and the workers waited for.
        scorer = getattr(self, "scorer", None)
        if scorer is not None and scorer.pool is not None:
            shutdown(scorer.pool)
            scorer.pool = None
        if self.lock is not None:
            self.lock.release()

    def summary(self, interrupted: bool, seconds: float, loop_seconds: float) -> EvaluateResult:
        damaged: list[Any] = []
        result = from_stored(read_results(self.folder, damaged=damaged), str(self.job.source), self.output.settings,
                             self.keys)
        result.warnings = [f"{error}: left out of this summary; rerun its part with --resume" for error in damaged]
        result.folder = str(self.folder)
        result.part = self.part.label
        result.scored_now = self.scored_now
        result.images_per_second = round(self.scored_now / loop_seconds, 4) if loop_seconds > 0 else 0.0
        result.seconds = round(seconds, 3)
        result.rows_total = len(self.keys)
        result.interrupted = interrupted or self.late_interrupt
        return result



def evaluate(job: EvaluateJob, *, quiet: bool = False) -> EvaluateResult:
    """Score this process's part of ``job.source`` (an OUT folder, its index or shards) with ``job.metrics``;
    the result merges every part's results so far (``complete`` says whether all are in)."""
    return run_job(EvaluateRun(job), quiet=quiet)


def summarize(source: str | os.PathLike, *, metrics: Sequence[str] | None = None, rank: str | None = None,
              results: str | os.PathLike | None = None, limit: int | None = None) -> list[EvaluateResult]:
    """The merged results of every evaluation of ``source`` found (those with exactly ``metrics`` / ``rank``
    when given), computing nothing: ``igcli evaluate OUT --summary``."""
    output = Output(source)
    root = evaluations_root(Path(output.shards[0]).parent, results)
    names = parse_metrics(metrics) if metrics is not None else None
    folders = find_evaluations(root, source_digest(output.settings, output.input_root), names, rank)
    found = []
    _, keys = _plan(output, limit, 0, 1, set())
    for folder in folders:
        stored = read_results(folder)
        if stored.settings is None:
            continue  # made, but no result written yet
        result = from_stored(stored, str(source), output.settings, keys)
        result.folder, result.rows_total = str(folder), len(keys)
        found.append(result)
    if not found:
        wanted = f" with --metric {','.join(names)}" if names else ""
        raise OutputError(f"{source}: no evaluation results{wanted} under {root}; run igcli evaluate {source} first")
    return found


def evaluation_settings(job: EvaluateJob, metrics: list[str], options: dict[str, dict[str, Any]], output: Output,
                        weights_sha256: str | None, part_count: int) -> dict[str, Any]:
    """What the results files record: everything that decides the numbers, and who made them."""
    return {
        "format": "igcli-evaluation/1", "metrics": metrics, "options": options, "rank": job.rank, "seed": job.seed,
        "min_pred": job.min_pred, "model": job.model or output.recipe.model, "weights_sha256": weights_sha256,
        "masks": os.path.abspath(job.masks) if job.masks else None,
        "boxes": os.path.abspath(job.boxes) if job.boxes else None,
        "source": os.path.realpath(Path(output.shards[0]).parent),
        "source_sha256": source_digest(output.settings, output.input_root),
        "part_count": part_count, "igcli_version": __version__, "command": job.command,
    }


def _plan(output: Output, limit: int | None, index: int, count: int,
          done: set[tuple[str, int]]) -> tuple[list[tuple[int, list[int], list[str]]], dict[tuple[str, int], int]]:
    """(per shard: its row numbers this part scores and their paths; every (path, target) the evaluation covers,
    with its position in the output).
    Images, not rows, are split between parts (round-robin in stored order): one image's topK rows stay in one
    part."""
    small = []
    remaining = limit if limit is not None else len(output)
    for shard, total in enumerate(output.shard_row_counts()):
        if remaining <= 0 or not total:
            continue
        rows = output.shard_rows(shard, ["paths", "targets"])
        take = min(total, remaining)
        remaining -= take
        small.append((shard, rows["paths"][:take], [int(t) for t in rows["targets"][:take]]))
    images = list(dict.fromkeys(path for _, paths, _ in small for path in paths))
    mine = set(select_part(images, index, count))
    plan: list[tuple[int, list[int], list[str]]] = []
    covered: dict[tuple[str, int], int] = {}
    for shard, paths, targets in small:
        chosen = []
        for row, (path, target) in enumerate(zip(paths, targets)):
            covered.setdefault((path, target), len(covered))
            if path in mine and (path, target) not in done:
                chosen.append(row)
        if chosen:
            plan.append((shard, chosen, [paths[row] for row in chosen]))
    return plan, covered


def _encode_pool(workers: int | None, metrics: Sequence[str], device: Any) -> Any:
    """The process pool for SIC/AIC's lossless WebP encodes (:mod:`igcli.metrics.webp`), or None when no metric
    of the run encodes or ``workers`` is 0."""
    from ..metrics.pic import PIC_NAMES, level_of

    if not any(name in PIC_NAMES and level_of(name) == "entropy" for name in metrics):
        return None
    if workers is None:
        import torch

        workers = default_workers(device.type, torch.get_num_threads())
    return make_pool(workers) if workers > 0 else None


def _first_rows(paths: Sequence[str], previous: str | None) -> list[str]:
    """The entries of ``paths`` that start an image (one image's topK rows are consecutive); ``previous``: the
    path of the row before them."""
    starts = []
    for path in paths:
        if path != previous:
            starts.append(path)
        previous = path
    return starts


def _load_recipe_model(job: EvaluateJob, recipe: Recipe) -> LoadedModel:
    """The model the maps were made with (``--model``/``--weights`` override it): loaded by the recipe's name,
    with its recorded weights file when it is here, and without running code a folder names (code-free)."""
    spec = job.model or recipe.model
    stored_weights = recipe.weights if job.model is None else None
    if stored_weights and not os.path.isfile(stored_weights):
        stored_weights = None  # made on another machine: load as the spec says, then compare hashes
    try:
        loaded = load_model(spec, job.weights or stored_weights, preprocessing=_overrides(recipe.preprocessing),
                            trust_model_file=job.trust_model_file, code_free=job.model is None)
    except ModelLoadError as error:
        if job.weights or not stored_weights:
            raise
        raise ModelLoadError(f"the weights file named by the output folder: {error}; pass --weights FILE") from None
    if job.model is None and recipe.weights_sha256 and loaded.weights_sha256 not in (None, recipe.weights_sha256):
        raise InvalidArgumentError(f"the weights of {spec} differ from those the maps were made with; pass --weights")
    return loaded
