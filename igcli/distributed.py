"""Which part of the inputs this process handles: SLURM arrays, ``--shard i/n`` and torchrun ranks.

A job's inputs are split into ``count`` parts, and this process takes part ``index``:

- ``--shard i/n`` (or, when absent, ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT`` with the array's
  ``SLURM_ARRAY_TASK_MIN`` subtracted) splits across jobs;
- under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``) each rank takes a sub-part of that, on device
  ``cuda:LOCAL_RANK`` when there are GPUs.

So ``index = i * world_size + rank`` and ``count = n * world_size``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InvalidArgumentError


@dataclass(frozen=True)
class Part:
    index: int
    count: int
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise InvalidArgumentError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise InvalidArgumentError(f"--shard {text}: need 0 <= i < n")
    return index, count


def resolve_part(shard: str | None, environ: dict[str, str] | None = None) -> Part:
    """This process's part of the job from ``--shard``, SLURM's array variables and torchrun's."""
    env = os.environ if environ is None else environ
    if shard is not None:
        job_index, job_count = parse_shard(shard)
    elif "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        task = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
        job_index, job_count = task, int(env["SLURM_ARRAY_TASK_COUNT"])
        if not 0 <= job_index < job_count:
            raise InvalidArgumentError(
                f"SLURM array task {env['SLURM_ARRAY_TASK_ID']} is outside 0..{job_count - 1} after subtracting "
                "SLURM_ARRAY_TASK_MIN; use a contiguous array (--array=0-N) or pass --shard i/n"
            )
    else:
        job_index, job_count = 0, 1
    rank, world = int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1"))
    local_rank = int(env.get("LOCAL_RANK", "0"))
    return Part(job_index * world + rank, job_count * world, rank, world, local_rank)


class ProcessGroup:
    """A gloo/NCCL process group under torchrun (for the final barrier), a no-op otherwise."""

    def __init__(self, part: Part, device_type: str) -> None:
        self.active = part.world_size > 1
        if self.active:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("gloo")  # only a barrier is needed: gloo works beside CUDA too

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
