"""Shard-writing jobs on the pipeline: discover the inputs, take this part, load the model, stream the images
in batches, apply the job's batch step, write shards, build the index, summarise.

``attribute`` and ``split`` are a :class:`ShardStep` each (what to compute for a batch and which columns to
write); everything else (parts, locks, ``--resume``, late signals, skips, the summary) is here, once.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

import numpy as np
import torch

from .. import __version__
from ..api import describe
from ..batch_baselines import baseline_from_spec, batch_baseline
from ..completeness import GapTally
from ..data import discover_inputs, input_root, select_part
from ..distributed import Part, ProcessGroup
from ..engine import Engine, default_batch_size, resolve_device
from ..ensembles.references import FolderReferences
from ..errors import InvalidArgumentError, NonFiniteError
from ..locking import FolderLock
from ..maps import lost_in_float16, reduce_channels
from ..methods import BASELINE_NAMES, get_method, resolve_method
from ..models import LoadedModel, file_sha256, load_model
from ..output import inherited_input_root
from ..progress import Reporter
from ..recipe import Recipe
from ..schedules import default_schedule, make_schedule, read_schedule_file
from ..signals import note_received
from ..store import INDEX_NAME, ShardWriter, build_index, list_shards, next_sequence
from ..text import absolute_path, draw_key, shown_path
from .checks import DEFAULT_STEPS, AttributeJob, check_attribute_job, is_schedule_file, parse_target, schedule_file_for
from .output_folder import make_output_folder, prepare_output
from .pipeline import EXIT_INTERRUPTED, EXIT_SKIPPED, Job, delivered, run_job
from .spreads import error_bar_spread, evaluation_spread
from .streaming import label_resolver, stream_images

@dataclass
class AttributeSummary:
    """What a run did. ``exit_code`` is 0, 5 when some inputs were skipped (listed in ``skipped``), or 130 when
    it was interrupted (the CLI's summary says 143 after SIGTERM: the process's exit status)."""

    out: str
    part: str
    inputs: int  # inputs of this part
    already_done: int  # found in complete shards (--resume)
    attributed: int  # images attributed now
    rows: int  # rows written now (images x top-K)
    skipped: list[dict[str, str]]
    seconds: float  # wall time of the whole run: checks, model loading, attribution, index
    images_per_second: float  # attributed / attribution_seconds
    shards: list[str]
    index: str | None
    interrupted: bool = False
    load_seconds: float = 0.0  # building the model and reading its weights
    attribution_seconds: float = 0.0  # streaming the images: decoding, attributing, writing shards
    # Ensembles: the spread of the maps' error bars (relative_se) written now: median, p90, max, count.
    relative_se: dict[str, float] | None = None
    # --steps auto: gradient evaluations per map written now (mean, median, p90, max, count) and the fraction
    # of those maps that met the tolerance (tolerance_met).
    gradient_evaluations: dict[str, float] | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.interrupted else EXIT_SKIPPED if self.skipped else 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}


def resolve_schedule(spec: Any, steps: int | str | None, method: str, rule: str, model: str,
                     weights_sha256: str | None) -> tuple[Any, int | str, dict[str, Any]]:
    """(schedule for the API, steps, recipe fields) for ``--schedule`` and ``--steps``.

    A ``.json`` file or ``auto`` (the cache entry for this model, method and steps) is a calibrated schedule:
    it must have been made for this model (and weights), path method and, when ``--steps`` is given, step
    count; without ``--steps`` the file's count is used. ``--steps auto`` has no schedule: (None, "auto", {}).
    """
    if steps == "auto":  # the points are chosen per image (check_attribute_job refused --schedule with it)
        return None, "auto", {}
    path_method, rule = resolve_method(method, rule)
    if spec is None:  # the rule's reference: right for riemann, left for idgi (its Algorithm 1)
        spec = default_schedule(rule)
    has_path = get_method(path_method).has_path
    if not is_schedule_file(spec):  # built once here, not again for every batch
        steps = steps or DEFAULT_STEPS
        return (make_schedule(spec, steps) if has_path else spec), steps, {}
    if not has_path:
        raise InvalidArgumentError(f"--schedule FILE/auto: {path_method} has no path to schedule")
    path = schedule_file_for(spec, model, path_method, steps)
    schedule, _ = read_schedule_file(path, model=model, weights_sha256=weights_sha256, method=path_method, steps=steps)
    return schedule, schedule.steps, {"schedule_file": str(path), "schedule_sha256": file_sha256(path)}


def job_recipe(job: AttributeJob, loaded: LoadedModel, schedule: Any, steps: int | str, part: Part,
               device: torch.device, schedule_fields: dict[str, Any], extra: dict[str, Any] | None = None,
               references: FolderReferences | None = None) -> Recipe:
    """The recipe of ``job`` once its model is loaded, its schedule resolved and its references read."""
    specs = job.baselines
    # --steps auto: steps="auto" with its tolerance and limits (describe checks them against the rule)
    described = describe(job.method, job.rule, steps=steps, schedule=schedule, **job.adaptive_settings(),
                         baseline=[spec if spec in BASELINE_NAMES else "black" for spec in specs], output=job.output,
                         seed=job.seed, noise_samples=job.noise_samples, noise_level=job.noise_level,
                         noise_aggregate=job.noise_aggregate, references=references is not None,
                         baseline_samples=job.baseline_samples, **job.method_options)
    method = get_method(described["method"])
    baseline = described.get("baseline")
    if baseline is not None:  # files by name: file:PATH
        shown = [spec if spec in BASELINE_NAMES else f"file:{spec}" for spec in specs]
        baseline = shown[0] if len(shown) == 1 else shown
    extra = dict(extra or {})
    return Recipe(
        method=extra.pop("method", method.name), model=job.model, rule=described["rule"], path=method.path,
        output=job.output, options={option.name: described[option.name] for option in method.options},
        steps=described.get("steps"), schedule=described.get("schedule"), alphas=described.get("alphas"),
        schedule_weights=described.get("schedule_weights"), boundaries=described.get("boundaries"),
        step_tolerance=described.get("step_tolerance"), min_steps=described.get("min_steps"),
        max_steps=described.get("max_steps"), baseline=baseline, seed=job.seed,
        noise_samples=described.get("noise_samples"),
        noise_level=described.get("noise_level"), noise_aggregate=described.get("noise_aggregate"),
        baseline_dir=references.folder if references is not None else None,
        baseline_dir_sha256=references.sha256 if references is not None else None,
        baseline_samples=described.get("baseline_samples"), weights=loaded.weights,
        weights_sha256=loaded.weights_sha256,
        preprocessing=loaded.preprocessing.as_dict(), target=job.target, labels=job.labels, dtype=job.dtype,
        reduce=job.reduce, amp=job.amp, part_count=part.count, extra=extra, command=job.command,
        igcli_version=__version__, torch_version=str(torch.__version__), device=device.type, **schedule_fields,
    )


class ShardStep:
    """A job's batch step: compute a batch's rows and write their columns. Subclasses implement
    :meth:`compute` and :meth:`write`; rows, skips, progress, float16 and completeness bookkeeping are here.
    One step object lives for one part's run."""

    label = "igcli attribute"

    def __init__(self, job: AttributeJob, loaded: LoadedModel, device: torch.device, recipe: Recipe,
                 writer: ShardWriter, reporter: Reporter, schedule: Any, steps: int | str) -> None:
        self.job, self.loaded, self.device, self.recipe = job, loaded, device, recipe
        self.schedule, self.steps = schedule, steps
        self.writer, self.reporter = writer, reporter
        self.target_mode, self.target_value = parse_target(job.target)
        self.method = get_method(recipe.path_method)
        self.baselines = ([baseline_from_spec(spec, loaded, device) for spec in job.baselines]
                          if self.method.takes_baseline else ["black"])
        self.baseline = self.baselines[0]
        self.references: FolderReferences | None = None  # set by the job when --baseline-dir is given
        self.batch_size = job.batch_size or default_batch_size(device)
        self.engine = Engine(loaded.module, output=job.output, batch_size=self.batch_size, device=device, amp=job.amp)
        self.attributed = 0
        self.rows = 0
        self.skipped: list[dict[str, str]] = []
        self.float16_warned = False
        self.error_bars: list[np.ndarray] = []
        self.evaluations: list[np.ndarray] = []  # --steps auto: per row, and whether it met the tolerance
        self.met: list[np.ndarray] = []
        # No path, or maps combined non-linearly (smoothgrad-sq, vargrad): no completeness to judge.
        linear = recipe.noise_aggregate in (None, "smoothgrad")
        self.gaps = GapTally() if self.method.has_path and linear else None
        self._progress_from, self._progress_images = 0, 0  # the batch (part) being computed, for progress

    # -- what a job implements ----------------------------------------------------------------------------

    def compute(self, images: torch.Tensor, targets: torch.Tensor | None, paths: Sequence[str]) -> Any:
        """The result for rows of (R, C, H, W) model inputs; ``targets`` (R,) or None for the prediction."""
        raise NotImplementedError

    def write(self, result: Any, paths: list[str], ranks: np.ndarray, images: torch.Tensor) -> None:
        """Write ``result``'s rows (call :meth:`store` with the columns)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the last batch (also after an interrupt)."""

    # -- shared -------------------------------------------------------------------------------------------

    def batch_baselines(self, images: torch.Tensor, paths: Sequence[str]) -> str | torch.Tensor:
        """The (first) baseline for a batch: ``uniform`` seeded per image from (seed, path)."""
        return batch_baseline(self.baseline, paths, self.job.seed, images.shape[1:], self.loaded, self.device)

    def draw_keys(self, paths: Sequence[str]) -> list[str]:
        """The keys seeding the rows' random draws: each path below the run's input root (as ``evaluate``
        computes them from a shard), so the spelling of an input or the folder it was given from never changes
        a map."""
        return [draw_key(path, absolute_path(path, self.writer.cwd), self.writer.input_root) for path in paths]

    def batch_baseline_list(self, images: torch.Tensor, paths: Sequence[str]) -> list[str | torch.Tensor]:
        """Every listed baseline for a batch. A method that draws its own baselines (Expected Gradients) gets
        ``uniform`` by name: it draws a fresh one per sample."""
        if self.method.stochastic_samples:
            return list(self.baselines)
        return [batch_baseline(spec, paths, self.job.seed, images.shape[1:], self.loaded, self.device)
                for spec in self.baselines]

    def warnings(self) -> list[str]:
        """Warnings about the run as a whole, said once at its end (completeness gaps)."""
        if self.gaps is None:
            return []
        spec = self.recipe.schedule if self.job.schedule is None else self.job.schedule
        kind = ("auto" if self.job.adaptive else "calibrated" if is_schedule_file(spec)
                else spec if isinstance(spec, str) else "custom")
        return self.gaps.messages(output=self.job.output, schedule=kind)

    def on_progress(self, fraction: float) -> None:
        """The library's progress callback: ``fraction`` of the current batch's gradient rows are done, so the
        bar moves (in images) chunk by chunk rather than batch by batch. Host-side counts only: no sync."""
        self.reporter.partial(self._progress_from + fraction * self._progress_images)

    def skip(self, path: str, reason: str) -> None:
        self.writer.skip(path, reason)
        self.skipped.append({"path": path, "reason": reason})
        self.reporter.message(f"skipped {shown_path(path)}: {reason}")

    def rows_for(self, images: torch.Tensor, labels: torch.Tensor, paths: list[str]):
        """Expand a batch into rows (one per image, K per image for topK): images, targets, paths, ranks."""
        count = images.shape[0]
        if self.target_mode == "pred":
            return images, None, paths, np.zeros(count, np.int64)
        if self.target_mode == "label":
            return images, labels.to(self.device), paths, np.zeros(count, np.int64)
        if self.target_mode == "index":
            targets = torch.full((count,), self.target_value, dtype=torch.int64, device=self.device)
            return images, targets, paths, np.zeros(count, np.int64)
        logits = self.engine.predict(images)
        k = min(self.target_value, logits.shape[1])
        targets = logits.topk(k, dim=1).indices.reshape(-1).clone()
        ranks = np.tile(np.arange(k, dtype=np.int64), count)
        return images.repeat_interleave(k, dim=0), targets, [p for p in paths for _ in range(k)], ranks

    def process(self, images: torch.Tensor, labels: torch.Tensor, paths: list[str], _offset: int = 0) -> None:
        """Compute one batch and write its rows; an image whose gradients go non-finite is skipped alone.
        ``_offset``: images of the loader batch before these (when a batch is retried image by image)."""
        rows_images, targets, row_paths, ranks = self.rows_for(images, labels, paths)
        self._progress_from, self._progress_images = _offset, len(paths)
        try:
            result = self.compute(rows_images, targets, row_paths)
        except NonFiniteError:
            if images.shape[0] == 1:
                self.skip(paths[0], "NaN or infinity in the model's outputs or gradients")
                return
            for i in range(images.shape[0]):  # find the culprit(s); keep the rest
                self.process(images[i : i + 1], labels[i : i + 1], paths[i : i + 1], _offset + i)
            return
        self.write(result, row_paths, ranks, rows_images)
        self.attributed += len(set(row_paths))

    def stored_maps(self, maps: torch.Tensor) -> np.ndarray:
        """(..., C, H, W) maps as stored: reduced over channels (--reduce) and cast (--dtype), on the host."""
        maps = reduce_channels(maps, self.job.reduce).detach().float().cpu().numpy()
        if self.job.dtype != "float16":
            return maps
        half = maps.astype(np.float16)
        lost, nonzero = lost_in_float16(maps, half)
        if not self.float16_warned and lost > 0.01 * max(1, nonzero):
            self.float16_warned = True
            self.reporter.message(
                f"warning: --dtype float16 loses {lost} of {nonzero} nonzero values in a batch (outside float16's "
                "range); use --dtype float32 or --output logit"
            )
        return half

    def store(self, columns: dict[str, Any]) -> None:
        """Write a batch's rows and count their completeness gaps (host arrays by now: no device sync)."""
        self.writer.write(columns)
        self.rows += len(columns["paths"])
        if self.gaps is not None:
            self.gaps.add(columns["completeness_gap"])
        if "relative_se" in columns:
            self.error_bars.append(np.asarray(columns["relative_se"], dtype=np.float64))
        if "gradient_evaluations" in columns:
            self.evaluations.append(np.asarray(columns["gradient_evaluations"], dtype=np.int64))
            self.met.append(np.asarray(columns["tolerance_met"], dtype=bool))

    def error_bar_spread(self) -> dict[str, float] | None:
        """Median, 90th percentile and maximum of the finite error bars written so far, and their count."""
        return error_bar_spread(self.error_bars)

    def evaluation_spread(self) -> dict[str, float] | None:
        """``--steps auto``: the spread of gradient evaluations per map written so far (see
        :func:`~igcli.jobs.spreads.evaluation_spread`); None otherwise."""
        return evaluation_spread(self.evaluations, self.met)


class ShardedJob(Job):
    """A shard-writing job for this process's part: ``attribute`` and ``split`` differ only in their step.

    Completed shards stay complete whatever happens; on an interrupt the open shard is completed with the
    images finished so far, the index rebuilt, and the summary has ``interrupted=True``.
    """

    keeps_partial_work = True

    def __init__(self, job: AttributeJob, step_class: type[ShardStep], stdin: TextIO | None,
                 extra: dict[str, Any] | None) -> None:
        self.job, self.step_class, self.stdin, self.extra = job, step_class, stdin, extra
        self.label = step_class.label
        self.lock: FolderLock | None = None
        self.group: ProcessGroup | None = None
        self.late_interrupt = False  # the first signal came while the last shard or the index was written
        self.index: str | None = None
        self._notes: list[str] = []

    def open(self) -> int:
        job = self.job
        self.part = part = check_attribute_job(job)  # everything that needs no model first: refusals come at once
        all_inputs = discover_inputs(job.inputs, self.stdin, null=job.null)
        cuda_rank = f"cuda:{part.local_rank}" if part.world_size > 1 and torch.cuda.is_available() else None
        self.device = device = resolve_device(job.device or cuda_rank)
        loading_started = time.perf_counter()
        self.loaded = load_model(job.model, job.weights, preprocessing=job.preprocessing,
                                 trust_model_file=job.trust_model_file)
        self.load_seconds = time.perf_counter() - loading_started
        self.schedule, self.steps, schedule_fields = resolve_schedule(job.schedule, job.steps, job.method, job.rule,
                                                                      job.model, self.loaded.weights_sha256)
        if device.type == "cuda" and device.index is not None:
            torch.cuda.set_device(device)
        self.references = (FolderReferences(absolute_path(job.baseline_dir, os.getcwd()), self.loaded.preprocessing)
                           if job.baseline_dir is not None else None)
        self.recipe = job_recipe(job, self.loaded, self.schedule, self.steps, part, device, schedule_fields,
                                 self.extra, self.references)
        self.group = ProcessGroup(part, device.type)
        self.lock = FolderLock(job.out, part.index, part.count, job.command)
        # Every rank checks and prepares its own part, holding its lock: parts only touch their own shards.
        make_output_folder(job.out)
        self.lock.acquire()
        done = prepare_output(job.out, part, self.recipe, resume=job.resume, overwrite=job.overwrite,
                              notes=self._notes)
        self.mine = select_part(all_inputs, part.index, part.count)
        self.todo = [p for p in self.mine if p not in done]
        self.labels = label_resolver(job.labels, self.loaded, device) if parse_target(job.target)[0] == "label" else None
        self.loaded.module.to(device)
        self.writer = ShardWriter(job.out, part.index, self.recipe.as_settings(), job.shard_size,
                                  next_sequence(job.out, part.index),
                                  input_root=inherited_input_root(job.out, input_root(job.inputs, all_inputs)))
        self.label += f" part {part.label}" if part.count > 1 else ""
        return len(self.todo)

    def notes(self) -> list[str]:
        return self._notes

    def batches(self) -> Iterator[Any]:
        self.step_ = self.step_class(self.job, self.loaded, self.device, self.recipe, self.writer, self.reporter,
                                     self.schedule, self.steps)
        self.step_.references = self.references
        return stream_images(self.todo, self.loaded, self.device, labels=self.labels, batch_size=self.job.batch_size,
                             workers=self.job.workers, on_skip=self.step_.skip)

    def step(self, batch: Any) -> tuple[int, int]:
        images, labels, paths, skipped = batch
        before = len(self.step_.skipped)
        if paths:
            self.step_.process(images, labels, paths)
        failed = len(self.step_.skipped) - before  # images skipped for NaN gradients count as skipped
        return len(paths) - failed, skipped + failed

    def close(self) -> None:
        self.late_interrupt = delivered(self.writer.close)  # complete what was computed, whatever happened
        if hasattr(self, "step_"):
            self.step_.finish()

    def warnings(self) -> list[str]:
        return self.step_.warnings() if hasattr(self, "step_") else []

    def finish(self) -> None:
        try:
            self.group.barrier()
            if (self.part.rank == 0 or self.part.world_size == 1) and list_shards(self.job.out):
                self.index = str(build_index(self.job.out))
        except KeyboardInterrupt:  # the first signal came while indexing: the shards are complete; say so
            self.late_interrupt = True
            note_received(None)
            if (Path(self.job.out) / INDEX_NAME).is_file():  # signals wait for the index to be written (deferred)
                self.index = str(Path(self.job.out) / INDEX_NAME)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
        if self.group is not None:
            self.group.close()

    def summary(self, interrupted: bool, seconds: float, loop_seconds: float) -> AttributeSummary:
        step = self.step_
        return AttributeSummary(
            out=str(self.job.out), part=self.part.label, inputs=len(self.mine),
            already_done=len(self.mine) - len(self.todo), attributed=step.attributed, rows=step.rows,
            skipped=step.skipped, seconds=round(seconds, 3),
            images_per_second=round(step.attributed / loop_seconds, 4) if loop_seconds > 0 else 0.0,
            shards=[str(p) for p in self.writer.completed], index=self.index,
            interrupted=interrupted or self.late_interrupt, load_seconds=round(self.load_seconds, 3),
            attribution_seconds=round(loop_seconds, 3), relative_se=step.error_bar_spread(),
            gradient_evaluations=step.evaluation_spread(),
        )


def run_sharded(job: AttributeJob, step_class: type[ShardStep], *, stdin: TextIO | None = None, quiet: bool = False,
                progress_stream: TextIO | None = None, extra: dict[str, Any] | None = None) -> AttributeSummary:
    """Run ``job`` for this process's part with ``step_class`` as its batch step and return what it did
    (:class:`ShardedJob` on :func:`~igcli.jobs.pipeline.run_job`). ``extra``: the job's own recipe fields
    (``method`` among them replaces the method's name). Raises :class:`~igcli.errors.IgcliError` subclasses for
    bad input."""
    return run_job(ShardedJob(job, step_class, stdin, extra), quiet=quiet, progress_stream=progress_stream)
