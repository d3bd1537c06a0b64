"""Images into the model's input space, batch by batch, onto the device; and ``--target label``'s resolver."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..data import ImageDataset, default_workers, make_loader, normalize
from ..engine import default_batch_size
from ..labels import LabelResolver
from ..models import LoadedModel
from ..signals import deferred


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


def label_resolver(labels_csv: str | None, loaded: LoadedModel, device: torch.device) -> LabelResolver:
    """``--target label``'s resolver, knowing the model's class count (from its categories, else from one
    forward pass), so a label outside it is a skip with its reason rather than an error that ends the run."""
    classes = len(loaded.categories) if loaded.categories else None
    if classes is None:
        crop = loaded.preprocessing.crop
        with torch.inference_mode():
            classes = int(loaded.module.to(device)(torch.zeros(1, 3, crop, crop, device=device)).shape[-1])
    return LabelResolver(labels_csv, loaded.categories, num_classes=classes)
