"""Shared by the CLI tests: run igcli as a subprocess, make image folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from igcli.store import list_shards
from igcli.validate import check_shard

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "tests" / "fixtures" / "tiny_model.py") + ":tiny"
# One thread per process: the tiny models gain nothing from more, and several test processes on two cores
# with two threads each oversubscribe the CPU badly.
SUBPROCESS_ENV = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
# The tiny model sees 16 x 16 crops; small and fast everywhere.
TINY_ARGS = ["--model", TINY, "--resize", "16", "--crop", "16", "--device", "cpu"]


def run_cli(*args: str, input: str | None = None, env: dict | None = None, check: bool = False,
            timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m igcli ARGS`` with its output captured as text, run in ``cwd`` (default: the repository)."""
    full_env = {**os.environ, **SUBPROCESS_ENV, **(env or {})}
    for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        if not env or name not in env:
            full_env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "igcli", *args], input=input, capture_output=True, text=True,
                            env=full_env, timeout=timeout, cwd=cwd or ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"igcli {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def make_images(folder: Path, count: int, size: int = 20, seed: int = 0, prefix: str = "img") -> list[Path]:
    """``count`` random RGB JPEG/PNG photos (alternating) in ``folder``; returns their paths in sorted order."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        pixels = generator.integers(0, 256, (size, size + 3, 3), dtype=np.uint8)
        path = folder / f"{prefix}{i:03d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return sorted(paths)


# The tiny model, 4 steps, decoding in the main process, no progress output.
COMMON = [*TINY_ARGS, "--steps", "4", "--workers", "0", "--quiet"]


def stored_paths(out: Path) -> list[str]:
    """Every stored input (attributed or skipped), from the contract's datasets; each checked shard."""
    found = []
    for shard in list_shards(out):
        check_shard(shard)
        with h5py.File(shard, "r") as handle:
            for name in ("paths", "skipped/paths"):
                found += [os.fsdecode(p) for p in handle[name][:]] if name in handle else []
    return found


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def shard_settings() -> dict:
    """The least settings a shard must record to pass igcli's checks."""
    return {"method": "ig", "model": "resnet18", "preprocessing": {"resize": 8, "crop": 8, "mean": [0.5] * 3,
                                                                  "std": [0.5] * 3, "interpolation": "bilinear"}}
