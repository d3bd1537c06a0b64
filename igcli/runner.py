"""A whole attribution job: inputs -> model -> engine -> HDF5 shards, for one part of a (distributed) run.

``igcli attribute`` is a thin layer over :func:`run_attribute`; notebooks and scripts can call it too::

    from igcli.runner import AttributeJob, run_attribute
    summary = run_attribute(AttributeJob(inputs=["imgs/"], out=Path("out"), model="efficientnet_lite0",
                                         method="ig", rule="idgi"))
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np
import torch

from . import __version__
from .api import _resolve_method, attribute, describe
from .baselines import BASELINE_NAMES
from .completeness import GapTally
from .data import (
    ImageDataset,
    default_workers,
    discover_inputs,
    input_root,
    load_rgb,
    make_loader,
    normalize,
    preprocess_pixels,
    select_part,
)
from .distributed import Part, ProcessGroup
from .engine import default_batch_size, resolve_device
from .errors import InvalidArgumentError, NonFiniteError, first_line
from .job import (  # noqa: F401 (STORAGE_DTYPES re-exported)
    DEFAULT_STEPS, STORAGE_DTYPES, AttributeJob, check_attribute_job, is_schedule_file, parse_target,
    schedule_file_for,
)
from .labels import LabelResolver
from .locking import FolderLock
from .models import LoadedModel, file_sha256, load_model
from .output import inherited_input_root
from .progress import Reporter, make_reporter
from .schedules import read_schedule_file
from .baseline_file import MAX_BASELINE_BYTES, read_npy_baseline
from .input_file import read_regular_file
from .signals import deferred, note_received, raise_if_received
from .store import (
    INDEX_NAME,
    SHARD_PATTERN,
    OutputError,
    ShardWriter,
    build_index,
    check_shards,
    completed_inputs,
    list_shards,
    move_aside,
    next_sequence,
    remove_partials,
    shard_part,
    stored_settings,
)
from .text import path_seed, shown_path

EXIT_SKIPPED = 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports an interrupted command
# Settings that may change between a run and the resumption of it without changing a single number; every
# other setting must agree.
VOLATILE_KEYS = frozenset({"command", "igcli_version", "torch_version", "device", "weights", "schedule_file"})

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

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.interrupted else EXIT_SKIPPED if self.skipped else 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_code": self.exit_code}


# -- the output folder ------------------------------------------------------------------------------------------


def make_output_folder(out: Path) -> None:
    """Create ``out`` (and parents) or say in one line why it cannot be an output folder."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"-o {out}: cannot create the folder ({error.strerror})") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"-o {out}: folder is not writable")


def prepare_output(out: Path, part: Part, settings: dict[str, Any], *, resume: bool, overwrite: bool,
                   notes: list[str] | None = None) -> set[str]:
    """Make ``out`` ready for this part and return the inputs already done (non-empty only with ``resume``).

    Call it holding the part's :class:`~igcli.locking.FolderLock`. Refuses a non-empty folder unless resuming
    or overwriting; with several parts, other parts' shards of the same run are expected and left alone.
    ``overwrite`` deletes this part's shards (all of igcli's files in a single-part run) and nothing else.
    ``resume`` drops this part's hidden partial shards and moves its damaged shards aside (``NAME.damaged``),
    so their images are done again; what it did is appended to ``notes``.
    """
    if resume and overwrite:
        raise InvalidArgumentError("--resume and --overwrite contradict each other; choose one")
    make_output_folder(out)
    notes = [] if notes is None else notes
    mine = [p for p in list_shards(out) if shard_part(p) == part.index]
    if overwrite:
        doomed = mine if part.count > 1 else list_shards(out)
        strange = [p for p in doomed if p.is_dir() and not p.is_symlink()]
        if strange:  # check before deleting anything
            raise OutputError(f"-o {out}: {strange[0].name} is a folder, not a shard igcli wrote; move it away first")
        if part.count == 1:
            (out / INDEX_NAME).unlink(missing_ok=True)  # first, so no index points at deleted shards
        for path in doomed:
            path.unlink()
        remove_partials(out, part.index if part.count > 1 else None)
        return set()
    # Resuming reads this part's shards through (every chunk's checksum): damage found now is repaired now.
    shards, damaged = check_shards(out, read_part=part.index if resume else None)
    if resume:
        remove_partials(out, part.index)
        for error in damaged:
            if shard_part(error.path) == part.index or part.count == 1:
                moved = move_aside(error.path)
                notes.append(f"moved damaged shard {error.path.name} aside to {moved.name} ({error.problem}); its "
                             "images are done again")
                shards = [info for info in shards if info.path != error.path]
            else:  # another part's images: that part's --resume repairs it
                notes.append(f"warning: {error}; part {shard_part(error.path)}'s --resume will redo its images")
        previous = stored_settings(shards)
        if previous is not None:
            _check_resumable(out, previous, settings)
        return completed_inputs([info.path for info in shards])
    entries = [name for name in os.listdir(out) if not name.startswith(".")]
    if part.count > 1:
        foreign = [n for n in entries if not (SHARD_PATTERN.match(n) or n == INDEX_NAME)]
        previous = stored_settings(shards)
        if mine or foreign or (previous is not None and _differences(previous, settings)):
            raise OutputError(
                f"-o {out}: already holds output for part {part.label} or other files; use --resume to continue "
                "it or --overwrite to replace this part's shards"
            )
    elif entries:
        raise OutputError(f"-o {out}: folder is not empty; use --resume to continue that run, --overwrite to replace it, or another -o")
    return set()


def _differences(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = (set(previous) | set(current)) - VOLATILE_KEYS
    first = ("method", "rule", "model", "steps", "schedule", "output", "baseline", "target")
    return sorted((key for key in keys if previous.get(key) != current.get(key)),
                  key=lambda key: (first.index(key) if key in first else len(first), key))


def _check_resumable(out: Path, previous: dict[str, Any], current: dict[str, Any]) -> None:
    differences = _differences(previous, current)
    if differences:
        key = differences[0]
        raise OutputError(
            f"-o {out}: holds a run with {key}={previous.get(key)!r} but this run has {key}={current.get(key)!r}; "
            "resume with the same settings, or use another -o"
        )


# -- schedules -------------------------------------------------------------------------------------------------


def resolve_schedule(spec: Any, steps: int | None, method: str, rule: str, model: str,
                     weights_sha256: str | None) -> tuple[Any, int, dict[str, Any]]:
    """(schedule for the API, steps, settings to record) for ``--schedule`` and ``--steps``.

    A ``.json`` file or ``auto`` (the cache entry for this model, method and steps) is a calibrated schedule:
    it must have been made for this model (and weights), path method and, when ``--steps`` is given, step
    count; without ``--steps`` the file's count is used.
    """
    path_method, _ = _resolve_method(method, rule)
    if not is_schedule_file(spec):
        return spec, steps or DEFAULT_STEPS, {}
    if path_method == "vg":
        raise InvalidArgumentError("--schedule FILE/auto: vg has no path to schedule")
    path = schedule_file_for(spec, model, path_method, steps)
    schedule, document = read_schedule_file(path, model=model, weights_sha256=weights_sha256, method=path_method,
                                            steps=steps)
    return schedule, schedule.steps, {"schedule_file": str(path), "schedule_sha256": file_sha256(path)}


# -- baselines and targets per batch ---------------------------------------------------------------------------


def baseline_from_spec(spec: str, loaded: LoadedModel, device: torch.device) -> str | torch.Tensor:
    """A baseline name the API understands, or the tensor a ``--baseline FILE`` holds (model-input space)."""
    if spec in BASELINE_NAMES:
        return spec
    path = spec
    if not os.path.isfile(path):
        raise InvalidArgumentError(
            f"--baseline {path}: not one of {', '.join(BASELINE_NAMES)} and no such file (give an image, .npy or .pt)"
        )
    if path.endswith(".npy"):  # read and checked as before the model was loaded, now against its crop
        tensor = torch.from_numpy(read_npy_baseline(
            path, read_regular_file("--baseline", path, MAX_BASELINE_BYTES), loaded.preprocessing.crop))
        return tensor.to(device)
    try:
        if path.endswith((".pt", ".pth")):
            tensor = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(tensor, torch.Tensor) or tensor.is_complex() or tensor.dtype == torch.bool:
                raise ValueError(f"it holds a {type(tensor).__name__} of {getattr(tensor, 'dtype', 'objects')}, "
                                 "not one real tensor (3, H, W); save it with torch.save(tensor, FILE)")
            tensor = tensor.float()
        else:
            pixels = preprocess_pixels(load_rgb(path, exif_transpose=loaded.preprocessing.exif_transpose),
                                       loaded.preprocessing)
            tensor = normalize(pixels[None], loaded.preprocessing)[0]
    except Exception as error:
        raise InvalidArgumentError(f"--baseline {path}: cannot read it ({first_line(error)})") from None
    crop = loaded.preprocessing.crop
    if tuple(tensor.shape) != (3, crop, crop):
        raise InvalidArgumentError(f"--baseline {path}: shape {tuple(tensor.shape)}, the model takes (3, {crop}, {crop})")
    if not bool(torch.isfinite(tensor).all()):
        raise InvalidArgumentError(f"--baseline {path}: contains NaN or infinity")
    return tensor.to(device)


def batch_baseline(baseline: str | torch.Tensor, paths: Sequence[str], seed: int, shape: torch.Size,
                   loaded: LoadedModel, device: torch.device) -> str | torch.Tensor:
    """The baseline to pass for a batch: ``uniform`` becomes noise seeded per image from (seed, path), so a
    map never depends on batching or sharding; anything else passes through."""
    if isinstance(baseline, str) and baseline == "uniform":
        return _uniform_baselines(paths, seed, shape, loaded, device)
    return baseline


def _uniform_baselines(paths: Sequence[str], seed: int, shape: torch.Size, loaded: LoadedModel, device: torch.device) -> torch.Tensor:
    """Uniform-noise baselines seeded per image from (seed, path): independent of batching and sharding."""
    noise = []
    for path in paths:
        generator = torch.Generator().manual_seed(path_seed(seed, path))
        noise.append(torch.rand(shape, generator=generator))
    return loaded.preprocessing.normalization.from_pixels(torch.stack(noise)).to(device)


def label_resolver(labels_csv: str | None, loaded: LoadedModel, device: torch.device) -> LabelResolver:
    """``--target label``'s resolver, knowing the model's class count (from its categories, else from one
    forward pass), so a label outside it is a skip with its reason rather than an error that ends the run."""
    classes = len(loaded.categories) if loaded.categories else None
    if classes is None:
        crop = loaded.preprocessing.crop
        with torch.inference_mode():
            classes = int(loaded.module.to(device)(torch.zeros(1, 3, crop, crop, device=device)).shape[-1])
    return LabelResolver(labels_csv, loaded.categories, num_classes=classes)


# -- streaming images ------------------------------------------------------------------------------------------


def stream_images(
    paths: Sequence[str],
    loaded: LoadedModel,
    device: torch.device,
    *,
    labels: LabelResolver | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    on_skip: Any = None,
):
    """Decode and preprocess ``paths`` in worker processes, batch by batch, onto ``device``.

    Yields (images (B, C, H, W) float32 model inputs on the device or None, labels (B,) int64, paths of the
    B images, number of inputs skipped in this batch); ``on_skip(path, reason)`` is called for each skip.
    Close the generator when done early (``contextlib.closing``): the workers are then shut down with signals
    deferred, since a second SIGTERM during that shutdown would leave workers that the interpreter's exit
    then waits on for ever (they ignore SIGTERM, see ``data._worker_init``).
    """
    batch_size = batch_size or default_batch_size(device)
    workers = default_workers() if workers is None else workers
    loader = make_loader(ImageDataset(paths, loaded.preprocessing, labels), batch_size, workers if paths else 0,
                         pin_memory=device.type == "cuda")
    batches = iter(loader)
    try:
        for batch in batches:
            for index, reason in batch.skipped:
                if on_skip is not None:
                    on_skip(paths[index], reason)
            images = None
            if batch.indices:
                images = normalize(batch.pixels.to(device, non_blocking=True), loaded.preprocessing)
            yield images, batch.labels, [paths[i] for i in batch.indices], len(batch.skipped)
    finally:
        with deferred():
            shutdown = getattr(batches, "_shutdown_workers", None)  # what the iterator's __del__ would call
            if shutdown is not None:
                shutdown()


# -- the job ---------------------------------------------------------------------------------------------------


class _Run:
    """State of one part's run; separate from :func:`run_attribute` so the batch step reads on its own."""

    def __init__(self, job: AttributeJob, loaded: LoadedModel, device: torch.device, settings: dict[str, Any],
                 writer: ShardWriter, reporter: Reporter, schedule: Any, steps: int) -> None:
        self.job, self.loaded, self.device, self.settings = job, loaded, device, settings
        self.schedule, self.steps = schedule, steps
        self.writer, self.reporter = writer, reporter
        self.target_mode, self.target_value = parse_target(job.target)
        self.baseline = baseline_from_spec(job.baseline, loaded, device) if settings["path"] in ("straight", "guided") else "black"
        self.batch_size = job.batch_size or default_batch_size(device)
        self.attributed = 0
        self.rows = 0
        self.skipped: list[dict[str, str]] = []
        self.float16_warned = False
        self.gaps = GapTally() if settings.get("path") else None  # vg has no path, hence no completeness
        self._progress_from, self._progress_images = 0, 0  # the batch (part) being attributed, for progress

    def finish(self) -> None:
        """Called once after the last batch (also after an interrupt)."""

    def warnings(self) -> list[str]:
        """Warnings about the run as a whole, said once at its end (completeness gaps)."""
        if self.gaps is None:
            return []
        spec = self.job.schedule
        kind = "calibrated" if is_schedule_file(spec) else spec if isinstance(spec, str) else "custom"
        return self.gaps.messages(output=self.job.output, schedule=kind)

    def on_progress(self, fraction: float) -> None:
        """The library's progress callback: ``fraction`` of the current batch's gradient rows are done, so the
        bar moves (in images) chunk by chunk rather than batch by batch. Host-side counts only: no sync."""
        self.reporter.partial(self._progress_from + fraction * self._progress_images)

    def skip(self, path: str, reason: str) -> None:
        self.writer.skip(path, reason)
        self.skipped.append({"path": path, "reason": reason})
        self.reporter.message(f"skipped {shown_path(path)}: {reason}")

    def _attribute(self, images: torch.Tensor, targets: torch.Tensor | None, paths: Sequence[str]) -> Any:
        baseline = batch_baseline(self.baseline, paths, self.job.seed, images.shape[1:], self.loaded, self.device)
        return attribute(
            self.loaded.module,
            images,
            targets,
            method=self.job.method,
            rule=self.job.rule,
            steps=self.steps,
            schedule=self.schedule,
            baseline=baseline,
            output=self.job.output,
            batch_size=self.batch_size,
            device=self.device,
            amp=self.job.amp,
            normalization=self.loaded.preprocessing.normalization,
            seed=self.job.seed,
            progress=self.on_progress,
            check_completeness=False,  # the run warns once at its end instead of once per batch
            **self.job.method_options,
        )

    def _rows_for(self, images: torch.Tensor, labels: torch.Tensor, paths: list[str]):
        """Expand a batch into rows (one per image, K per image for topK): images, targets, paths, ranks."""
        count = images.shape[0]
        if self.target_mode == "pred":
            return images, None, paths, np.zeros(count, np.int64)
        if self.target_mode == "label":
            return images, labels.to(self.device), paths, np.zeros(count, np.int64)
        if self.target_mode == "index":
            return images, torch.full((count,), self.target_value, dtype=torch.int64, device=self.device), paths, np.zeros(count, np.int64)
        with torch.inference_mode():
            logits = self.loaded.module(images)
        k = min(self.target_value, logits.shape[1])
        targets = logits.topk(k, dim=1).indices.reshape(-1).clone()
        ranks = np.tile(np.arange(k, dtype=np.int64), count)
        return images.repeat_interleave(k, dim=0), targets, [p for p in paths for _ in range(k)], ranks

    def process(self, images: torch.Tensor, labels: torch.Tensor, paths: list[str], _offset: int = 0) -> None:
        """Attribute one batch and write its rows; an image whose gradients go non-finite is skipped alone.
        ``_offset``: images of the loader batch before these (when a batch is retried image by image)."""
        rows_images, targets, row_paths, ranks = self._rows_for(images, labels, paths)
        self._progress_from, self._progress_images = _offset, len(paths)
        try:
            result = self._attribute(rows_images, targets, row_paths)
        except NonFiniteError:
            if images.shape[0] == 1:
                self.skip(paths[0], "NaN or infinity in the model's outputs or gradients")
                return
            for i in range(images.shape[0]):  # find the culprit(s); keep the rest
                self.process(images[i : i + 1], labels[i : i + 1], paths[i : i + 1], _offset + i)
            return
        self._write(result, row_paths, ranks, rows_images)
        self.attributed += len(set(row_paths))

    def stored_maps(self, maps: torch.Tensor) -> np.ndarray:
        """(..., C, H, W) maps as stored: reduced over channels (--reduce) and cast (--dtype), on the host."""
        if self.job.reduce == "sum":
            maps = maps.sum(dim=-3)
        elif self.job.reduce == "abs-sum":
            maps = maps.abs().sum(dim=-3)
        maps = maps.detach().float().cpu().numpy()
        return self._to_float16(maps) if self.job.dtype == "float16" else maps

    def _write(self, result: Any, paths: list[str], ranks: np.ndarray, images: torch.Tensor) -> None:
        columns = {
            "attributions": self.stored_maps(result.attributions),
            "paths": paths,
            "targets": result.targets.cpu().numpy().astype(np.int64),
            "scores": result.scores.cpu().numpy().astype(np.float32),
            "baseline_scores": result.baseline_scores.cpu().numpy().astype(np.float32),
            "completeness_gap": result.completeness_gap.cpu().numpy().astype(np.float32),
        }
        if self.target_mode == "top":
            columns["target_rank"] = ranks
        self.store(columns)

    def store(self, columns: dict[str, Any]) -> None:
        """Write a batch's rows and count their completeness gaps (host arrays by now: no device sync)."""
        self.writer.write(columns)
        self.rows += len(columns["paths"])
        if self.gaps is not None:
            self.gaps.add(columns["completeness_gap"])

    def _to_float16(self, maps: np.ndarray) -> np.ndarray:
        half = maps.astype(np.float16)
        nonzero = maps != 0
        lost = int(np.count_nonzero(nonzero & (half == 0))) + int(np.count_nonzero(np.isinf(half)))
        if not self.float16_warned and lost > 0.01 * max(1, int(np.count_nonzero(nonzero))):
            self.float16_warned = True
            self.reporter.message(
                f"warning: --dtype float16 loses {lost} of {int(np.count_nonzero(nonzero))} nonzero values in a batch "
                "(outside float16's range); use --dtype float32 or --output logit"
            )
        return half


def run_attribute(job: AttributeJob, *, stdin: TextIO | None = None, quiet: bool = False,
                  progress_stream: TextIO | None = None, _run_class: type | None = None,
                  _label: str = "igcli attribute", _extra_settings: dict[str, Any] | None = None) -> AttributeSummary:
    """Run ``job`` for this process's part and return what it did.

    Completed shards stay complete whatever happens; on KeyboardInterrupt (SIGINT, or SIGTERM turned into it
    by the CLI) the open shard is completed with the images finished so far, the index rebuilt, and the summary
    has ``interrupted=True``. Raises :class:`~igcli.errors.IgcliError` subclasses for bad input.
    """
    started = time.perf_counter()
    part = check_attribute_job(job)  # everything that needs no model first: refusals come at once
    named_baseline = job.baseline in BASELINE_NAMES
    all_inputs = discover_inputs(job.inputs, stdin, null=job.null)
    device = resolve_device(job.device or (f"cuda:{part.local_rank}" if part.world_size > 1 and torch.cuda.is_available() else None))
    loading_started = time.perf_counter()
    loaded = load_model(job.model, job.weights, preprocessing=job.preprocessing,
                        trust_model_file=job.trust_model_file)
    load_seconds = time.perf_counter() - loading_started
    schedule, steps, schedule_settings = resolve_schedule(job.schedule, job.steps, job.method, job.rule, job.model,
                                                          loaded.weights_sha256)
    method_settings = describe(job.method, job.rule, steps=steps, schedule=schedule,
                               baseline=job.baseline if named_baseline else "black", output=job.output, seed=job.seed,
                               **job.method_options)
    method_settings.update(schedule_settings)
    method_settings.update(_extra_settings or {})
    if not named_baseline and "baseline" in method_settings:
        method_settings["baseline"] = f"file:{job.baseline}"
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    settings = {
        **method_settings,
        "model": job.model,
        "weights": loaded.weights,
        "weights_sha256": loaded.weights_sha256,
        "preprocessing": loaded.preprocessing.as_dict(),
        "target": job.target,
        "labels": job.labels,
        "dtype": job.dtype,
        "reduce": job.reduce,
        "amp": job.amp,
        "seed": job.seed,
        "part_count": part.count,
        "igcli_version": __version__,
        "torch_version": str(torch.__version__),
        "command": job.command,
        "device": device.type,
    }
    group = ProcessGroup(part, device.type)
    lock = FolderLock(job.out, part.index, part.count, job.command)
    notes: list[str] = []
    try:
        # Every rank checks and prepares its own part, holding its lock: parts only touch their own shards.
        make_output_folder(job.out)
        lock.acquire()
        done = prepare_output(job.out, part, settings, resume=job.resume, overwrite=job.overwrite, notes=notes)
        mine = select_part(all_inputs, part.index, part.count)
        todo = [p for p in mine if p not in done]
        labels = label_resolver(job.labels, loaded, device) if parse_target(job.target)[0] == "label" else None
        loaded.module.to(device)
        writer = ShardWriter(job.out, part.index, settings, job.shard_size, next_sequence(job.out, part.index),
                             input_root=inherited_input_root(job.out, input_root(job.inputs, all_inputs)))
        label = _label + (f" part {part.label}" if part.count > 1 else "")
        interrupted = False
        loop_started = time.perf_counter()
        with make_reporter(len(todo), label, quiet=quiet, stream=progress_stream) as reporter:
            for note in notes:
                reporter.message(note)
            run = (_run_class or _Run)(job, loaded, device, settings, writer, reporter, schedule, steps)
            try:
                with contextlib.closing(stream_images(todo, loaded, device, labels=labels, batch_size=job.batch_size,
                                                      workers=job.workers, on_skip=run.skip)) as batches:
                    for images, batch_labels, paths, skipped in batches:
                        before = len(run.skipped)
                        if paths:
                            run.process(images, batch_labels, paths)
                        failed = len(run.skipped) - before  # images skipped for NaN gradients count as skipped
                        reporter.advance(len(paths) - failed, skipped + failed)
                        raise_if_received()
            except KeyboardInterrupt:
                interrupted = True
                note_received(None)  # delivered: this run stops here, and a later run in this process goes on
            finally:
                try:
                    writer.close()  # complete what was computed, whatever happened
                except KeyboardInterrupt:  # the first signal came while the last shard was saved: it is saved
                    interrupted = True
                    note_received(None)
                run.finish()
            for line in run.warnings():
                reporter.message(line)
        loop_seconds = time.perf_counter() - loop_started
        index = None
        try:
            group.barrier()
            if (part.rank == 0 or part.world_size == 1) and list_shards(job.out):
                index = str(build_index(job.out))
        except KeyboardInterrupt:  # the first signal came while indexing: the shards are complete; say so
            interrupted = True
            note_received(None)
            if (Path(job.out) / INDEX_NAME).is_file():  # signals wait for the index to be written (deferred)
                index = str(Path(job.out) / INDEX_NAME)
    finally:
        lock.release()
        group.close()
    seconds = time.perf_counter() - started
    return AttributeSummary(
        out=str(job.out),
        part=part.label,
        inputs=len(mine),
        already_done=len(mine) - len(todo),
        attributed=run.attributed,
        rows=run.rows,
        skipped=run.skipped,
        seconds=round(seconds, 3),
        images_per_second=round(run.attributed / loop_seconds, 4) if loop_seconds > 0 else 0.0,
        shards=[str(p) for p in writer.completed],
        index=index,
        interrupted=interrupted,
        load_seconds=round(load_seconds, 3),
        attribution_seconds=round(loop_seconds, 3),
    )
