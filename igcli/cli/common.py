"""What every subcommand shares: option types, value parsing, error handling and summary output."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import signal
import sys
import threading
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, List, Optional, Sequence, TextIO

import typer


from ..choices import REDUCTIONS, STORAGE_DTYPES
from ..ensembles.aggregates import NOISE_AGGREGATE_NAMES
from ..errors import IgcliError, InvalidArgumentError
from ..methods import OUTPUTS, RULE_NAMES


def _method_choices(path_only: bool = False) -> type[Enum]:
    """``--method``'s choices from the registry (plugins' names come from their packages' metadata, without
    importing them, so ``--help`` stays instant). ``path_only``: methods with a path (for calibrate)."""
    from ..methods import BUILT_IN, method_names

    names = [n for n in method_names() if not (path_only and n in BUILT_IN and not BUILT_IN[n].has_path)]
    return _choices("Method", [*names, *([] if path_only else ["idgi"])])


def _method_help() -> str:
    from ..methods import BUILT_IN, method_names

    described = [f"{name} ({BUILT_IN[name].summary})" for name in BUILT_IN]
    plugins = [name for name in method_names() if name not in BUILT_IN]
    text = ", ".join(described) + (f"; from plugins: {', '.join(plugins)}" if plugins else "")
    return f"{text}; idgi is short for ig --rule idgi."


def _choices(name: str, values: Sequence[str]) -> type[Enum]:
    """A Typer choice type over the library's own list of values, so the CLI never keeps a second copy."""
    return Enum(name, {value: value for value in values}, type=str)


Rule = _choices("Rule", RULE_NAMES)
Output = _choices("Output", OUTPUTS)
StorageDtype = _choices("StorageDtype", STORAGE_DTYPES)
Reduce = _choices("Reduce", REDUCTIONS)
NoiseAggregate = _choices("NoiseAggregate", NOISE_AGGREGATE_NAMES)
Method = _method_choices()
PathMethod = _method_choices(path_only=True)


class Interpolation(str, Enum):
    nearest = "nearest"
    bilinear = "bilinear"
    bicubic = "bicubic"


MODEL_PANEL = "Model"
METHOD_PANEL = "Method"
ENSEMBLE_PANEL = "Ensembles"
DATA_PANEL = "Data and device"
OUTPUT_PANEL = "Output and scale"

# -- option types shared by attribute, calibrate, split and evaluate ---------------------------------------------

ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="torchvision name (resnet50, inception_v3, ...), efficientnet_lite0, a TorchScript or "
        "saved-module file, or module:factory / file.py:factory. Names win over files: give a file named like a model "
        "as ./NAME.", rich_help_panel=MODEL_PANEL,
    ),
]
TrustModelFileOption = Annotated[
    bool,
    typer.Option("--trust-model-file", help="Allow --model FILE to be a whole pickled module. Unpickling runs any "
                 "code its author put in the file: use only for files you made or trust. TorchScript files and "
                 "--weights state dicts never need it.", rich_help_panel=MODEL_PANEL),
]
NullOption = Annotated[
    bool,
    typer.Option("--null", "-0", help="With -: paths on stdin are separated by NUL bytes (find -print0), for names "
                 "that contain newlines.", rich_help_panel=DATA_PANEL),
]
WeightsOption = Annotated[
    Optional[Path],
    typer.Option("--weights", metavar="FILE", help="State-dict file to load instead of downloading (works offline).",
                 rich_help_panel=MODEL_PANEL),
]
ResizeOption = Annotated[Optional[int], typer.Option("--resize", help="Resize the short side to this many pixels "
                         "(default: from the weights, else 256).", rich_help_panel=MODEL_PANEL)]
CropOption = Annotated[Optional[int], typer.Option("--crop", help="Centre-crop size in pixels (default: from the "
                       "weights, else 224).", rich_help_panel=MODEL_PANEL)]
MeanOption = Annotated[Optional[str], typer.Option("--mean", help="Per-channel normalisation mean, e.g. "
                       "0.485,0.456,0.406 (default: from the weights, else ImageNet's).", rich_help_panel=MODEL_PANEL,
                       metavar="R,G,B")]
StdOption = Annotated[Optional[str], typer.Option("--std", metavar="R,G,B", help="Per-channel normalisation std, e.g. "
                      "0.229,0.224,0.225 (default: from the weights, else ImageNet's).", rich_help_panel=MODEL_PANEL)]
InterpolationOption = Annotated[Optional[Interpolation], typer.Option("--interpolation", help="Resize "
                                "interpolation (default: from the weights, else bilinear).", rich_help_panel=MODEL_PANEL)]

MethodOption = Annotated[Method, typer.Option("--method", help=_method_help(), rich_help_panel=METHOD_PANEL,
                                              case_sensitive=False)]
RuleOption = Annotated[Rule, typer.Option("--rule", help="How gradients become attributions: riemann or idgi "
                                         "(IDGI, any path method).", rich_help_panel=METHOD_PANEL)]


ScheduleOption = Annotated[Optional[str], typer.Option(
    "--schedule", help="left, right, midpoint, trapezoid, gauss-legendre, comma-separated alphas from 0 to 1, a "
    "calibrated schedule FILE.json, or auto (the one igcli calibrate cached for this model, method and steps). "
    "Names win over files: give a schedule file named like one as ./NAME. [default: right; left with the idgi "
    "rule, as its Algorithm 1]", show_default=False, rich_help_panel=METHOD_PANEL)]
BaselineOption = Annotated[str, typer.Option("--baseline", help="black, white, blur, uniform, or a file (image, "
                                            ".npy/.pt tensor in model-input space) for ig/gig; a file named like "
                                            "one of the names as ./NAME.",
                                            rich_help_panel=METHOD_PANEL)]
BaselinesOption = Annotated[Optional[List[str]], typer.Option(
    "--baseline", help="black, white, blur, uniform, or a file (image, .npy/.pt tensor in model-input space) for "
    "ig/gig/eg; a file named like one of the names as ./NAME. Give it several times to average the method over "
    "them (e.g. --baseline black --baseline white). For eg, the distribution each sample draws from (uniform: a "
    "fresh draw per sample). [default: black]", show_default=False, rich_help_panel=METHOD_PANEL)]
NoiseSamplesOption = Annotated[int, typer.Option(
    "--noise-samples", min=0, help="Average the method over N noisy copies of each image (SmoothGrad); 0: none.",
    rich_help_panel=ENSEMBLE_PANEL, metavar="N")]
NoiseLevelOption = Annotated[Optional[float], typer.Option(
    "--noise-level", min=0.0, help="Noise sigma as a fraction of each image's value range, max(x) - min(x) "
    "(PAIR's stdev_spread) [default: 0.15].", show_default=False, rich_help_panel=ENSEMBLE_PANEL, metavar="S")]
NoiseAggregateOption = Annotated[Optional[NoiseAggregate], typer.Option(
    "--noise-aggregate", help="How the noisy copies' maps combine: smoothgrad (mean), smoothgrad-sq (mean of "
    "squares, PAIR's magnitude=True) or vargrad (variance) [default: smoothgrad].", show_default=False,
    rich_help_panel=ENSEMBLE_PANEL)]
BaselineDirOption = Annotated[Optional[Path], typer.Option(
    "--baseline-dir", help="A folder of reference images (preprocessed like the inputs) that baselines are drawn "
    "from: --baseline-samples K per image for ig/gig, one per sample for eg.", rich_help_panel=ENSEMBLE_PANEL,
    metavar="DIR")]
BaselineSamplesOption = Annotated[Optional[int], typer.Option(
    "--baseline-samples", min=1, help="References drawn per image from --baseline-dir (distinct while the folder "
    "has enough); the method is averaged over them.", rich_help_panel=ENSEMBLE_PANEL, metavar="K")]


def _option_help(method: str, name: str) -> str:
    """A method option's help from the registry: "Blur IG: blur sigma at the path start, pixels [50]."."""
    from ..methods import BUILT_IN

    option = next(o for o in BUILT_IN[method].options if o.name == name)
    text = option.help[0].lower() + option.help[1:]
    return f"{BUILT_IN[method].title}: {text.rstrip('.')} [{option.default}]."


MaxSigmaOption = Annotated[Optional[float], typer.Option("--max-sigma", help=_option_help("blurig", "max_sigma"),
                           rich_help_panel=METHOD_PANEL, metavar="SIGMA")]
FractionOption = Annotated[Optional[float], typer.Option("--fraction", help=_option_help("gig", "fraction"),
                           rich_help_panel=METHOD_PANEL)]
MaxDistOption = Annotated[Optional[float], typer.Option("--max-dist", help=_option_help("gig", "max_dist"),
                          rich_help_panel=METHOD_PANEL, metavar="DIST")]
SamplesOption = Annotated[Optional[int], typer.Option("--samples", help=_option_help("eg", "samples"),
                          rich_help_panel=METHOD_PANEL, metavar="K")]
AnchorsOption = Annotated[Optional[int], typer.Option("--anchors", help=_option_help("gig", "anchors"),
                          rich_help_panel=METHOD_PANEL)]
MethodOptionsOption = Annotated[Optional[List[str]], typer.Option("--option", "-O", metavar="NAME=VALUE",
                                help="A method option by its library name, e.g. max_sigma=30; repeatable. "
                                "Plugins' methods take their options this way.", rich_help_panel=METHOD_PANEL)]
TargetOption = Annotated[str, typer.Option("--target", help="Class to explain: pred, label (from --labels, a "
                         "WordNet ID starting the file name, or the parent folder), a class INDEX, or topK.",
                         rich_help_panel=METHOD_PANEL)]
LabelsOption = Annotated[Optional[Path], typer.Option("--labels", help="Labels for --target label: a CSV of "
                         "path,label, or one label per line for ImageNet validation images (line N labels "
                         "..._val_N).", rich_help_panel=METHOD_PANEL, metavar="FILE")]
OutputOption = Annotated[Output, typer.Option("--output", help="The score explained: the target's softmax "
                                             "probability (prob) or its logit.", rich_help_panel=METHOD_PANEL)]
SeedOption = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Seed for random baselines, noise and draws.",
                                         rich_help_panel=METHOD_PANEL)]

BatchSizeOption = Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1, help="Rows per forward/backward "
                            "pass, and images per loader batch (default 32 on GPU, 4 on CPU).", rich_help_panel=DATA_PANEL)]
WorkersOption = Annotated[Optional[int], typer.Option("--workers", "-j", min=0, help="Image-decoding processes "
                          "(default: half the cores; 0 decodes in the main process).", rich_help_panel=DATA_PANEL)]
DeviceOption = Annotated[Optional[str], typer.Option("--device", help="cuda, cuda:1, cpu, ... (default: CUDA when "
                         "available).", rich_help_panel=DATA_PANEL)]
AmpOption = Annotated[bool, typer.Option("--amp", help="Run the model under autocast (float16 on GPU, bfloat16 on "
                      "CPU).", rich_help_panel=DATA_PANEL)]

DtypeOption = Annotated[StorageDtype, typer.Option("--dtype", help="Storage type of the maps (float16 halves the "
                        "files; warns when values fall outside its range).", rich_help_panel=OUTPUT_PANEL)]
ReduceOption = Annotated[Reduce, typer.Option("--reduce", help="Store (N, C, H, W) maps (none) or (N, H, W): channel "
                         "sum or sum of |values|.", rich_help_panel=OUTPUT_PANEL)]
ShardSizeOption = Annotated[int, typer.Option("--shard-size", min=1, help="Rows per output shard (the unit of "
                            "--resume).", rich_help_panel=OUTPUT_PANEL)]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue a run in OUT: skip inputs already in "
                         "complete shards.", rich_help_panel=OUTPUT_PANEL)]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace igcli's files in OUT (this part's only, "
                            "with --shard).", rich_help_panel=OUTPUT_PANEL)]
ShardOption = Annotated[Optional[str], typer.Option("--shard", help="Take part i of n of the inputs, e.g. 0/4 "
                        "(default: from SLURM_ARRAY_TASK_ID/COUNT).", rich_help_panel=OUTPUT_PANEL, metavar="i/n")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output (skipped inputs and errors "
                        "are still reported).", rich_help_panel=OUTPUT_PANEL)]
QuietPlainOption = Annotated[bool, typer.Option("--quiet", "-q", help="No summary line on stderr.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary on stdout.",
                       rich_help_panel=OUTPUT_PANEL)]


def parse_floats(option: str, text: str | None) -> tuple[float, ...] | None:
    """``"0.5,0.5,0.5"`` -> (0.5, 0.5, 0.5); None passes through."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidArgumentError(f"{option} {text!r}: expected comma-separated numbers") from None


def parse_schedule(text: str | None) -> str | list[float] | None:
    """A schedule name, or comma-separated alphas as a list; None (not given: the rule's default) as it is."""
    if text is not None and "," in text:
        return list(parse_floats("--schedule", text) or ())
    return text


def preprocessing_overrides(resize, crop, mean, std, interpolation) -> dict[str, Any]:
    """The preprocessing options as ``load_model`` takes them (None: from the model), checked: a bad value is
    refused here, before torch is imported and the model loaded (exit 2)."""
    from ..preprocessing import check_preprocessing

    overrides = {
        "resize": resize,
        "crop": crop,
        "mean": parse_floats("--mean", mean),
        "std": parse_floats("--std", std),
        "interpolation": interpolation.value if interpolation is not None else None,
    }
    check_preprocessing(overrides)
    return overrides


def method_options(method: str, pairs: list[str] | None = None, **given: Any) -> dict[str, Any]:
    """The method options the user set: the named flags (None = not given, so the method's defaults apply) and
    ``--option NAME=VALUE`` pairs (text; the method converts and checks it). A name given both ways is refused."""
    options = {name: value for name, value in given.items() if value is not None}
    for pair in pairs or []:
        name, equals, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not equals or not name:
            raise InvalidArgumentError(f"--option {pair!r}: expected NAME=VALUE, e.g. --option max_sigma=30")
        if name in options:
            raise InvalidArgumentError(f"--option {name}: given twice; give it once")
        options[name] = value
    return options


INTERRUPTED = ("interrupted; files already complete are kept (attribute, split, evaluate: rerun the same command "
               "with --resume to continue)")
# Errors writing output (disk full, quota, read-only, permission) get the output folder's exit code.
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def fail(message: str, code: int) -> typer.Exit:
    """Print ``igcli: error: message`` (one line) on stderr; return the Exit to raise."""
    typer.echo(f"igcli: error: {message}", err=True)
    return typer.Exit(code)


class _Signals:
    """The first termination signal received (SIGINT and SIGTERM raise :class:`~igcli.signals.Interrupted` so
    that work is saved; later ones are ignored, so they cannot cut the saving short or kill the exit), and
    whether the command's outcome is committed (its summary printed: later signals are ignored too)."""

    received: int | None = None
    committed: bool = False
    handling: bool = False  # inside handle_errors


def _raise_interrupted(signum: int, frame: Any) -> None:
    from ..signals import Interrupted, note_received

    if _Signals.received is not None or _Signals.committed:
        return  # already stopping, or done: igcli exits with the code it has already chosen
    _Signals.received = signum
    note_received(signum)  # raised again between batches should this exception be lost
    raise Interrupted(signum)


_raise_keyboard_interrupt = _raise_interrupted  # the name the signal tests install


def interrupted_exit_code() -> int:
    """143 after SIGTERM, 130 after SIGINT (the shell's 128 + signal convention)."""
    return 128 + (_Signals.received or signal.SIGINT)


def commit_outcome() -> None:
    """The command's outcome is decided and about to be reported (the summary printed): from now on SIGINT
    and SIGTERM are ignored, so the process exits with the code the summary states, not 130/143 with a
    summary that says otherwise. Only in the main thread (where signal handlers can be set) and inside
    :func:`handle_errors` (a library call keeps the caller's handlers)."""
    if not _Signals.handling or threading.current_thread() is not threading.main_thread():
        return
    _Signals.committed = True  # a signal already pending (run by signal.signal below) is dropped as well
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn igcli's errors into one line on stderr and their documented exit code; SIGINT and SIGTERM into
    one interrupt (see :class:`_Signals`)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _Signals.received, _Signals.committed, _Signals.handling = None, False, True
        from ..signals import note_received

        note_received(None)
        previous = {signum: signal.signal(signum, _raise_interrupted)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            with stdout_for_data_only():
                return command(*args, **kwargs)
        except IgcliError as error:
            # igcli's messages are one line; one raised by a plugin may not be: its lines joined, still one
            raise fail(" ".join(line.strip() for line in str(error).splitlines() if line.strip()),
                       error.exit_code) from None
        except KeyboardInterrupt:
            raise fail(INTERRUPTED, interrupted_exit_code()) from None
        except OSError as error:  # a file system failure no step above turned into its own message
            where = f"{error.filename}: " if error.filename else ""
            raise fail(f"{where}{error.strerror or error}", 6 if error.errno in OUTPUT_ERRNOS else 1) from None
        finally:
            stopping = _Signals.received is not None or _Signals.committed
            # The exit code is chosen: a signal pending now is dropped (not raised out of this block); after
            # an interrupt or a summary, later ones are ignored until the process exits.
            _Signals.committed, _Signals.handling = True, False
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_IGN if stopping else handler)
            _Signals.committed = False

    return wrapper


_DATA_STREAMS: list[TextIO] = []  # the real stdout while a command runs (see stdout_for_data_only)


def data_stream() -> TextIO:
    """Where a command writes its data (JSON, tables, completion scripts): the process's stdout, also while
    :func:`stdout_for_data_only` sends everything else written to stdout to stderr."""
    return _DATA_STREAMS[-1] if _DATA_STREAMS else sys.stdout


@contextlib.contextmanager
def stdout_for_data_only() -> Iterator[None]:
    """For the duration, whatever else writes to stdout lands on stderr: torch hub's ``Downloading: ...`` line,
    a model's ``print()``, C code writing to file descriptor 1, worker processes started meanwhile. Only what
    goes through :func:`data_stream` reaches stdout, so ``igcli ... --json | jq`` sees the summary alone.

    Python's ``sys.stdout`` is pointed at ``sys.stderr``; when stdout is a real file descriptor it is also
    duplicated onto stderr's, and the data stream writes to a saved copy of it.
    """
    original = sys.stdout
    try:
        fd, err_fd = original.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream (tests, notebooks): no descriptor
        fd = err_fd = None
    data, saved = original, None
    if fd is not None and fd != err_fd:
        original.flush()
        saved = os.dup(fd)
        os.dup2(err_fd, fd)
        data = open(saved, "w", encoding=original.encoding, errors=original.errors, closefd=False)
    _DATA_STREAMS.append(data)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = original
        _DATA_STREAMS.pop()
        if saved is not None:
            data.flush()
            data.close()
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)


def print_json(data: dict[str, Any]) -> None:
    """``data`` on stdout as strict JSON: NaN and infinities (a metric with no values) become null, which
    ``jq`` and every JSON parser accept, unlike Python's ``NaN``."""
    commit_outcome()
    stream = data_stream()
    stream.write(json.dumps(_finite_or_null(data), indent=2, allow_nan=False) + "\n")
    stream.flush()


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value
