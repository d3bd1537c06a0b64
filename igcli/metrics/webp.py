"""Lossless WebP sizes (PAIR's estimate of the information in an image, SIC/AIC's "entropy" level), and the
process pool that computes them beside the model.

The encodes dominate SIC/AIC on a CPU (27 per image at 224 x 224). They are deterministic, so where they run
does not change a value: :func:`webp_sizes` in a worker gives the bytes :func:`webp_size` gives in the main
process. This module imports neither torch nor igcli's model code, so a worker starts in a fraction of a
second.

Workers leave signals to the main process: they ignore SIGINT (Ctrl-C signals the whole process group) and
the first SIGTERM (SLURM does too); the main process saves its work, then shuts the pool down
(:func:`shutdown`, queued encodes cancelled). A worker whose main process is gone (SIGKILL) exits by itself
within a second, so no run leaves orphans behind.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

MAX_WORKERS = 8
ORPHAN_CHECK_SECONDS = 1.0


def webp_size(pixels: np.ndarray) -> int:
    """Bytes of the lossless WebP encoding of (H, W, 3) uint8 pixels (PAIR's ``estimate_image_entropy``)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="webp", lossless=True, quality=100)
    return buffer.tell()


def webp_sizes(stack: np.ndarray) -> list[int]:
    """:func:`webp_size` of each (H, W, 3) uint8 image of an (N, H, W, 3) stack."""
    return [webp_size(image) for image in stack]


def default_workers(device_type: str, torch_threads: int) -> int:
    """Encoding processes when the caller does not say: the cores this process may use (its CPU affinity) less
    what the model takes (its ``torch_threads`` on a CPU, one core to drive a GPU), shared among the ranks
    torchrun starts on the node; at least 1, at most :data:`MAX_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    ranks_on_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    model = 1 if device_type == "cuda" else max(1, torch_threads)
    return max(1, min(MAX_WORKERS, (cores - model) // ranks_on_node))


def make_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` encoding processes, started now (they start while the caller loads its model).

    'spawn', not 'fork': forking a process that runs torch's thread pools can deadlock the child."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_started, initargs=(os.getpid(),))
    for _ in range(workers):  # each submit to a spawn pool without an idle worker starts one
        pool.submit(int)
    return pool


def shutdown(pool: ProcessPoolExecutor | None) -> None:
    """Cancel the queued encodes, let the running ones end, and wait for every worker to exit."""
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def submit(pool: ProcessPoolExecutor, stack: np.ndarray) -> "list[Future[int]]":
    """:func:`webp_size` of each image of an (N, H, W, 3) stack in ``pool``, one task per image: an interrupted
    run waits for at most one encode per worker (plus the one queued ahead), not for a picture's 27."""
    return [pool.submit(webp_size, np.ascontiguousarray(image)) for image in stack]


def _worker_started(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _second_sigterm_ends_worker)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _second_sigterm_ends_worker(signum: int, frame: Any) -> None:
    """The group's SIGTERM is for the main process; a second one ends the worker."""
    _Signals.count += 1
    if _Signals.count > 1:
        os._exit(0)


class _Signals:
    count = 0


def _exit_when_orphaned(parent: int) -> None:
    """A spawned worker holds its task queue's write end itself, so it would wait forever for work once the
    main process is killed outright: it exits instead when its parent changes."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)
