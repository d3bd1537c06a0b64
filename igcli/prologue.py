"""What ``attribute``, ``split`` and ``calibrate`` do before they walk a path: check the images, build the
Engine, move the images to the device, predict, resolve and check the targets, and score f(x).

One place, so the three agree on every check and the model is entered (eval mode, frozen parameters) the
same way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, Union

import torch

from .engine import Engine, default_batch_size, prepared_model, resolve_device
from .errors import InvalidArgumentError, NonFiniteError, ShapeError, TargetError

TargetSpec = Union[None, int, Sequence[int], torch.Tensor]


@dataclass
class Prepared:
    """A batch ready for a path: ``inputs`` (B, C, H, W) on ``engine.device``, ``targets`` (B,) int64,
    ``scores`` (B,) f(x) of the targets, ``logits`` (B, K)."""

    engine: Engine
    inputs: torch.Tensor
    targets: torch.Tensor
    scores: torch.Tensor
    logits: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.engine.device


@contextlib.contextmanager
def prepared_batch(model: Any, images: torch.Tensor, target: TargetSpec, *, output: str, batch_size: int | None,
                   device: str | torch.device | None, amp: bool) -> Iterator[Prepared]:
    """Check ``images``, enter the model (:func:`~igcli.engine.prepared_model`) and yield the
    :class:`Prepared` batch; NonFiniteError if the model's outputs are not finite, TargetError for a class
    outside the model's."""
    check_images(images)
    run_device = resolve_device(device)
    rows = default_batch_size(run_device) if batch_size is None else batch_size
    engine = Engine(model, output=output, batch_size=rows, device=run_device, amp=amp)
    inputs = to_device(images, run_device)
    with prepared_model(model, run_device):
        logits = engine.predict(inputs)
        engine.raise_if_nonfinite()
        targets = resolve_targets(target, logits, inputs.shape[0], run_device)
        engine.check_targets(targets)
        yield Prepared(engine, inputs, targets, engine.target_scores(logits, targets), logits)




def check_images(images: Any) -> None:
    """Refuse anything but a finite (B, C, H, W) float tensor with B, C, H, W > 0."""
    if not isinstance(images, torch.Tensor):
        raise InvalidArgumentError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] == 0 or min(images.shape[1:]) == 0:
        raise ShapeError(f"images must have shape (B, C, H, W) with B, C, H, W > 0, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise InvalidArgumentError(f"images must be a float tensor (preprocessed for the model), got {images.dtype}")
    finite = torch.isfinite(images.flatten(1)).all(dim=1)
    if not bool(finite.all()):
        index = int((~finite).nonzero()[0, 0])
        raise NonFiniteError(f"image {index} contains NaN or infinity")


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``images`` on ``device`` (pinned and non-blocking from the host to CUDA)."""
    if images.device == device:
        return images
    if device.type == "cuda" and images.device.type == "cpu":
        return images.pin_memory().to(device, non_blocking=True)
    return images.to(device)


def resolve_targets(target: TargetSpec, logits: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """(B,) int64 targets: the predicted class for None, else ``target`` broadcast to the batch."""
    if target is None:
        return logits.argmax(dim=1)
    if isinstance(target, bool):
        raise TargetError(f"target must be a class index, got {target!r}")
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.int64, device=device)
    try:
        targets = torch.as_tensor(target, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise TargetError(f"target must be None, an int or {batch} ints, got {target!r}") from None
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TargetError(f"targets must be integers, got {targets.dtype}")
    targets = targets.to(torch.int64).reshape(-1)
    if targets.shape[0] == 1:
        return targets.expand(batch).clone()
    if targets.shape[0] != batch:
        raise ShapeError(f"{targets.shape[0]} targets for {batch} images")
    return targets


