"""Batched evaluation of f and grad f: the one narrow boundary between igcli and the model, for the
attribution methods and the metrics' forward passes alike.

The engine knows nothing of paths or rules. It takes rows (any mix of images and path points) of at most
``batch_size``, runs the model once forward (and once backward when gradients are asked for), gathers the
target class per row and returns f (softmax probability or logit of the target) and d f / d input.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from .errors import InvalidArgumentError, NonFiniteError, ShapeError, TargetError
from .methods import OUTPUTS


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means the first CUDA device when there is one, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InvalidArgumentError(f"unknown device {device!r}: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"device {device!r} asked for, but CUDA is not available here; use --device cpu")
    return resolved


def default_batch_size(device: torch.device) -> int:
    """Rows per forward/backward chunk when the caller does not say.

    On a GPU larger chunks fill the device. On a CPU, throughput per row is best at small chunks (caches);
    benchmarks/RESULTS.md records the sweep behind this choice.
    """
    return 32 if device.type == "cuda" else 4


class Engine:
    """Evaluates a classifier and its input gradients on rows of (R, C, H, W) inputs.

    Args:
        model: maps (R, C, H, W) to (R, K) class scores (logits).
        output: ``prob`` (softmax probability of the target) or ``logit`` (the target's logit).
        batch_size: most rows per forward/backward pass.
        device: where the model runs.
        amp: run the model under autocast (bfloat16 on CPU, float16 on CUDA); gradients stay float32.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        *,
        output: str = "prob",
        batch_size: int,
        device: torch.device,
        amp: bool = False,
    ) -> None:
        if output not in OUTPUTS:
            raise InvalidArgumentError(f"unknown output {output!r}; choose from {', '.join(OUTPUTS)}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model = model
        self.output = output
        self.batch_size = batch_size
        self.device = device
        self.amp = amp
        self.num_classes: int | None = None
        self.rows_evaluated = 0  # rows through forward-only passes
        self.rows_differentiated = 0  # rows through forward + backward passes
        self.on_rows: Callable[[int], None] | None = None  # told the row count of every forward + backward chunk
        # Checked once per call of raise_if_nonfinite(), not per chunk: a per-chunk check would make the
        # host wait for the device after every chunk.
        self._finite_flags: dict[str, torch.Tensor] = {}

    # -- plumbing ------------------------------------------------------------------------------------------

    def chunks(self, total: int) -> Iterator[slice]:
        """Consecutive slices of at most ``batch_size`` rows covering range(total)."""
        for begin in range(0, total, self.batch_size):
            yield slice(begin, min(begin + self.batch_size, total))

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _logits(self, rows: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            logits = self.model(rows)
        if isinstance(logits, (tuple, list)):  # e.g. Inception's (logits, aux) in training mode
            logits = logits[0]
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != rows.shape[0]:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ShapeError(f"the model must map (R, C, H, W) inputs to (R, classes) scores; it returned {shape}")
        self.num_classes = logits.shape[1]
        # Softmax and the gathered score in at least float32 even when the model ran in half precision.
        return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits

    def target_scores(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """f per row from (R, K) logits and (R,) targets: softmax probability or logit of the target."""
        if self.output == "prob":
            logits = torch.softmax(logits, dim=1)
        return logits.gather(1, targets.view(-1, 1)).squeeze(1)

    def check_targets(self, targets: torch.Tensor) -> None:
        """Raise :class:`TargetError` if a target index is outside [0, classes)."""
        if self.num_classes is None:
            return
        bad = (targets < 0) | (targets >= self.num_classes)
        if bool(bad.any()):
            index = int(bad.nonzero()[0, 0])
            raise TargetError(
                f"target {int(targets[index])} of image {index} is outside the model's {self.num_classes} classes"
            )

    def _track_finite(self, values: torch.Tensor, what: str) -> None:
        flag = torch.isfinite(values).all()
        previous = self._finite_flags.get(what)
        self._finite_flags[what] = flag if previous is None else previous & flag

    def raise_if_nonfinite(self) -> None:
        """Raise :class:`NonFiniteError` if any output or gradient so far held NaN or infinity.

        The host waits for the device once here (all flags are read together), a second time only to name
        the culprit when something is not finite."""
        if not self._finite_flags:
            return
        flags = list(self._finite_flags.values())
        if bool(torch.stack(flags).all() if len(flags) > 1 else flags[0]):
            return
        for what, flag in self._finite_flags.items():
            if not bool(flag):
                raise NonFiniteError(
                    f"NaN or infinity in the {what}; check the inputs and the model (with --output logit or "
                    "autocast, try --output prob or float32)"
                )

    # -- evaluations ---------------------------------------------------------------------------------------

    @torch.inference_mode()
    def predict(self, rows: torch.Tensor) -> torch.Tensor:
        """Logits (R, K) (float32, or the model's dtype if wider) for rows of any count, chunked."""
        out = [self._logits(rows[part]) for part in self.chunks(rows.shape[0])]
        self.rows_evaluated += rows.shape[0]
        logits = torch.cat(out)
        self._track_finite(logits, "model outputs")
        return logits

    @torch.inference_mode()
    def scores(self, rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """f for rows of any count, (R,), forward passes only, chunked."""
        out = []
        for part in self.chunks(rows.shape[0]):
            out.append(self.target_scores(self._logits(rows[part]), targets[part]))
        self.rows_evaluated += rows.shape[0]
        scores = torch.cat(out)
        self._track_finite(scores, "model outputs")
        return scores

    @torch.inference_mode()
    def scores_and_hits(self, rows: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f (R,) and whether the top class is the target (R,) bool, for rows of any count; forward passes only,
        chunked, one pass per chunk for both.

        Unlike :meth:`scores`, the targets are checked against the model's classes (:class:`TargetError`) before
        they index anything. Where a row's outputs hold NaN its f is NaN (with ``output="prob"`` any NaN or
        +infinity logit makes it NaN) and its hit means nothing; callers judge rows by whether f is finite.
        """
        logits = self.predict(rows)
        self.check_targets(targets)
        return self.target_scores(logits, targets), logits.argmax(dim=1) == targets

    def scores_and_gradients(self, rows: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f (R,) and d f / d rows (R, C, H, W) in the rows' dtype, for one chunk of at most ``batch_size`` rows."""
        with torch.enable_grad():
            leaf = rows.detach().requires_grad_(True)
            scores = self.target_scores(self._logits(leaf), targets)
            (gradients,) = torch.autograd.grad(scores.sum(), leaf)
        self.rows_differentiated += rows.shape[0]
        if self.on_rows is not None:  # a host-side count: no wait for the device
            self.on_rows(rows.shape[0])
        scores = scores.detach()
        self._track_finite(scores, "model outputs")
        self._track_finite(gradients, "gradients")
        return scores, gradients

    def scores_and_gradients_chunked(self, rows: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`scores_and_gradients` for rows of any count."""
        scores, gradients = [], []
        for part in self.chunks(rows.shape[0]):
            s, g = self.scores_and_gradients(rows[part], targets[part])
            scores.append(s)
            gradients.append(g)
        return torch.cat(scores), torch.cat(gradients)




@contextlib.contextmanager
def prepared_model(model: nn.Module | Callable, device: torch.device) -> Iterator[None]:
    """Eval mode and frozen parameters for the duration, restored afterwards.

    Frozen parameters keep autograd from recording anything for weight gradients nobody needs. The model
    is moved to ``device`` and stays there.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    model.to(device)
    was_training = model.training
    frozen = [p for p in model.parameters() if p.requires_grad]
    model.eval()
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
        model.train(was_training)
