"""What ``igcli attribute`` is asked to do, and every check on it that needs neither torch nor the model.

:func:`check_attribute_job` runs first, before torch is imported and the model loaded (which can take many
seconds, or fail offline with exit 4): a contradictory option, an output folder in the way, a missing input or
a bad labels or schedule file is refused at once, with its own exit code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..baseline_file import check_baseline_file
from ..distributed import Part, resolve_part
from ..errors import InvalidArgumentError
from ..labels import LabelResolver
from ..methods import BASELINE_NAMES, check_method, get_method
from ..preprocessing import check_preprocessing
from ..schedules import (
    ScheduleFileError, cached_schedule_path, default_schedule, make_schedule, read_schedule_file, schedule_name,
)
from ..store import INDEX_NAME, SHARD_PATTERN
from ..adaptive_settings import (
    CLI_WORDS, DEFAULT_MAX_STEPS, DEFAULT_MIN_STEPS, DEFAULT_TOLERANCE, AdaptiveSteps, check_auto_steps,
)
from ..choices import REDUCTIONS, STORAGE_DTYPES
from ..validate import OutputError

DEFAULT_STEPS = 32
IMAGENET_CLASSES = 1000  # the classes of every model given by name (torchvision's classifiers, igcli's)


@dataclass
class AttributeJob:
    """Everything ``igcli attribute`` is asked to do (the CLI options, by the same names)."""

    inputs: Sequence[str]
    out: Path
    model: str = "resnet50"
    weights: str | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    method: str = "ig"
    rule: str = "riemann"
    steps: int | str | None = None  # None: 32, or the step count of a schedule file; "auto": per image
    # --steps auto's --tolerance, --min-steps, --max-steps (None: not given, the defaults above)
    step_tolerance: float | None = None
    min_steps: int | None = None
    max_steps: int | None = None
    schedule: Any = None  # a name, alphas, a schedule FILE (.json), "auto" (calibrated, cached); None: the rule's
    baseline: Any = "black"  # a spec, or a list of several (a baseline ensemble)
    method_options: dict[str, Any] = field(default_factory=dict)
    target: str = "pred"
    labels: str | None = None
    output: str = "prob"
    batch_size: int | None = None
    workers: int | None = None
    device: str | None = None
    dtype: str = "float32"
    reduce: str = "none"
    shard_size: int = 256
    resume: bool = False
    overwrite: bool = False
    shard: str | None = None
    amp: bool = False
    seed: int = 0
    command: str = ""
    null: bool = False  # stdin lists (-) separated by NUL bytes
    trust_model_file: bool = False  # let --model FILE be a pickled whole module (runs its code)
    noise_samples: int = 0  # > 0: a noise ensemble (SmoothGrad and its aggregates)
    noise_level: float | None = None  # None: 0.15
    noise_aggregate: str | None = None  # None: smoothgrad
    baseline_dir: str | None = None  # references drawn per image
    baseline_samples: int | None = None

    @property
    def baselines(self) -> list[str]:
        """``baseline`` as a list of specs."""
        return [self.baseline] if isinstance(self.baseline, str) else list(self.baseline)

    @property
    def adaptive(self) -> bool:
        """Whether the points are chosen per image (``--steps auto``)."""
        return self.steps == "auto"

    def adaptive_settings(self) -> dict[str, Any]:
        """``--steps auto``'s keyword arguments for :func:`igcli.attribute` and :func:`igcli.describe` beside
        ``steps="auto"``, defaults filled in: ``tolerance``, ``min_steps``, ``max_steps``; empty for a fixed step
        count (the library ignores them then, and a library without adaptive steps is never given them)."""
        if not self.adaptive:
            return {}
        return {"tolerance": DEFAULT_TOLERANCE if self.step_tolerance is None else self.step_tolerance,
                "min_steps": DEFAULT_MIN_STEPS if self.min_steps is None else self.min_steps,
                "max_steps": DEFAULT_MAX_STEPS if self.max_steps is None else self.max_steps}


def parse_target(text: str) -> tuple[str, int]:
    """``pred`` -> ("pred", 1); ``label`` -> ("label", 0); ``INDEX`` -> ("index", INDEX); ``topK`` -> ("top", K)."""
    value = str(text).strip().lower()
    if value in ("pred", "label"):
        return value, 1 if value == "pred" else 0
    if value.startswith("top") and value[3:].isdigit() and int(value[3:]) >= 1:
        return "top", int(value[3:])
    if value.isdigit():
        return "index", int(value)
    raise InvalidArgumentError(f"--target {text!r}: expected pred, label, a class index or topK (e.g. top3)")


def check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise InvalidArgumentError(f"{option} {value!r}: choose from {', '.join(choices)}")


def is_schedule_file(spec: Any) -> bool:
    """Whether ``--schedule`` names a calibrated schedule: ``auto``, a ``.json`` name or an existing file, but
    never a built-in schedule's name (``right``, the default, ...): a name wins over a file called the same,
    which must be given as ``./right`` or named ``right.json``."""
    if not isinstance(spec, str) or schedule_name(spec) is not None:
        return False
    return spec == "auto" or spec.endswith(".json") or os.path.isfile(spec)


def check_attribute_job(job: AttributeJob) -> Part:
    """Refuse ``job`` if anything but the model is wrong; return this process's part. Cheap (no torch, no
    model, no image decoding), so callers run it before loading the model.

    Order: option values and combinations (exit 2), this part (``--shard``), the inputs named on the command
    line, the labels and schedule files (2), then the output folder's state (6).
    """
    if job.resume and job.overwrite:
        raise InvalidArgumentError("--resume and --overwrite contradict each other; choose one")
    check_choice("--reduce", job.reduce, REDUCTIONS)
    check_choice("--dtype", job.dtype, STORAGE_DTYPES)
    target_mode, _ = parse_target(job.target)
    check_preprocessing(job.preprocessing)
    if job.shard_size < 1:
        raise InvalidArgumentError(f"--shard-size must be at least 1, got {job.shard_size}")
    if job.workers is not None and job.workers < 0:
        raise InvalidArgumentError(f"--workers must be >= 0, got {job.workers}")
    if job.steps is not None and not job.adaptive and (not _is_int(job.steps) or job.steps < 1):
        raise InvalidArgumentError(f"--steps must be a positive integer or auto, got {job.steps}")
    method, rule, options = check_method(job.method, job.rule, job.output, dict(job.method_options))
    check_adaptive(job, method, rule)
    if job.labels is not None and target_mode != "label":
        raise InvalidArgumentError("--labels is only used with --target label")
    part = resolve_part(job.shard)
    for entry in job.inputs:
        if entry != "-" and not (os.path.exists(entry) or os.path.islink(entry)):
            raise InvalidArgumentError(f"input {entry}: no such file or folder")
    chosen = get_method(method)
    check_job_ensemble(job, chosen, options)
    if chosen.takes_baseline and job.baseline_dir is None:
        for spec in job.baselines:
            check_baseline(spec, job.preprocessing.get("crop"))
    if job.labels is not None:
        check_labels(job.labels, job.model)
    _check_schedule(job, method, rule, options)
    check_output_folder(Path(job.out), part, resume=job.resume, overwrite=job.overwrite)
    return part


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_adaptive(job: AttributeJob, method: str, rule: str) -> None:
    """``--steps auto`` and its options: ``--tolerance``, ``--min-steps`` and ``--max-steps`` only with it, in
    range (``--max-steps`` covering the first mesh of ``rule``); and it only where one fixed path per image is
    integrated (not with ``--schedule``, a method whose path is not fixed, or an ensemble): the library's checks,
    each message naming the option."""
    given = [name for name, value in (("--tolerance", job.step_tolerance), ("--min-steps", job.min_steps),
                                      ("--max-steps", job.max_steps)) if value is not None]
    if not job.adaptive:
        if given:
            raise InvalidArgumentError(f"{given[0]} applies to --steps auto only; add --steps auto or drop {given[0]}")
        return
    ensemble = ("--noise-samples" if job.noise_samples else "--baseline-dir" if job.baseline_dir is not None
                else "several --baseline" if len(job.baselines) > 1 else None)
    check_auto_steps(get_method(method), rule, job.schedule is not None, ensemble,
                     AdaptiveSteps(**job.adaptive_settings()), CLI_WORDS)


def check_job_ensemble(job: AttributeJob, method: Any, options: dict[str, Any]) -> None:
    """The noise and baseline ensemble options (:func:`igcli.ensembles.check_ensemble`), and that
    ``--baseline-dir`` is a folder."""
    from ..ensembles import check_ensemble

    samples = int(options[method.stochastic_samples]) if method.stochastic_samples else 0
    check_ensemble(method, noise_samples=job.noise_samples, noise_level=job.noise_level,
                   noise_aggregate=job.noise_aggregate, baselines=job.baselines,
                   references=job.baseline_dir is not None, baseline_samples=job.baseline_samples,
                   method_samples=samples)
    if job.baseline_dir is not None and not os.path.isdir(job.baseline_dir):
        raise InvalidArgumentError(f"--baseline-dir {job.baseline_dir}: no such folder")


def check_baseline(spec: str, crop: int | None = None) -> None:
    """``--baseline``: a name (which wins over a file called the same: give that as ``./black``), or a file
    that reads as a baseline (:func:`igcli.baseline_file.check_baseline_file`; ``crop`` when ``--crop`` is
    given). Its shape against the model's crop and an image's normalisation are checked with the model."""
    if spec in BASELINE_NAMES:
        return
    if not os.path.exists(spec):
        raise InvalidArgumentError(f"--baseline {spec}: not one of {', '.join(BASELINE_NAMES)} and no such file "
                                   "(give an image, .npy or .pt)")
    check_baseline_file(spec, crop)


def check_labels(labels: str, model: str) -> None:
    """Read and parse ``--labels`` (kept for the run: :class:`LabelResolver` parses a file once). A model given
    by name (no file, no ``module:factory``) is a torchvision or igcli ImageNet classifier with 1000 classes, so
    a one-label-per-line list of integers running 1..1000 is refused now as 1-based; for a model file or factory
    the class count is known only once it is loaded, and the same check runs then."""
    named = ":" not in model and not os.path.exists(model)
    LabelResolver(labels, num_classes=IMAGENET_CLASSES if named else None)


def _check_schedule(job: AttributeJob, method: str, rule: str, options: dict[str, Any]) -> None:
    """A schedule name or alphas, or a schedule file made for this model, method and steps (its weights hash
    is compared once the model is loaded); the method's options against its step count."""
    chosen = get_method(method)
    if job.adaptive:  # no schedule: the points are chosen per image
        return
    if not is_schedule_file(job.schedule):
        if chosen.has_path:
            spec = default_schedule(rule) if job.schedule is None else job.schedule
            schedule = make_schedule(spec, job.steps or DEFAULT_STEPS)
            chosen.check_steps(options, len(schedule.boundaries) - 1)
        return
    if not chosen.has_path:
        raise InvalidArgumentError(f"--schedule FILE/auto: {method} has no path to schedule")
    schedule, _ = read_schedule_file(schedule_file_for(job.schedule, job.model, method, job.steps), model=job.model,
                                     method=method, steps=job.steps)
    chosen.check_steps(options, len(schedule.boundaries) - 1)


def schedule_file_for(spec: str, model: str, method: str, steps: int | None) -> str | Path:
    """The file ``--schedule FILE|auto`` names: FILE as given (so messages quote it as typed), or for ``auto``
    the calibrated schedule in the cache; ScheduleFileError says how to make one when it is missing."""
    if spec != "auto":
        return spec
    steps = steps or DEFAULT_STEPS
    path = cached_schedule_path(model, method, steps)
    if not path.is_file():
        raise ScheduleFileError(
            f"--schedule auto: no calibrated schedule for model {model}, method {method}, {steps} steps in "
            f"{path.parent}; run igcli calibrate IMAGES --model {model} --method {method} --steps {steps}"
        )
    return path


def check_output_folder(out: Path, part: Part, *, resume: bool, overwrite: bool) -> None:
    """What can be told of ``out`` before any settings exist: it is a writable folder (or can be made), and
    without ``--resume``/``--overwrite`` it holds nothing of this part's (nothing at all in a one-part run).
    The full check, under the part's lock, is :func:`igcli.jobs.output_folder.prepare_output`."""
    if not out.exists():
        return  # made later; a parent that cannot hold it is reported then
    if not out.is_dir():
        raise OutputError(f"-o {out}: exists and is not a folder")
    if not os.access(out, os.W_OK):
        raise OutputError(f"-o {out}: folder is not writable")
    if resume or overwrite:
        return
    entries = [name for name in os.listdir(out) if not name.startswith(".")]
    if part.count == 1:
        if entries:
            raise OutputError(f"-o {out}: folder is not empty; use --resume to continue that run, --overwrite to "
                              "replace it, or another -o")
        return
    mine = [n for n in entries if (m := SHARD_PATTERN.match(n)) and int(m.group(1)) == part.index]
    foreign = [n for n in entries if not (SHARD_PATTERN.match(n) or n == INDEX_NAME)]
    if mine or foreign:
        raise OutputError(
            f"-o {out}: already holds output for part {part.label} or other files; use --resume to continue "
            "it or --overwrite to replace this part's shards"
        )
