"""Shard writing speed: igcli's ShardWriter (write-guarded file object, checked publish, deferred signals)
against plain h5py writing the same rows to a path with the same chunking, alternating runs.

    python benchmarks/bench_store.py [--rows 256] [--size 224] [--batch 32] [--repeats 7] [--dir /tmp]

Reports MB/s per run kind (median and spread over the repeats). Both include fsync, so the disk is measured
the same way; the difference is the price of the safety mechanisms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from igcli.store import ShardWriter

SETTINGS = {"method": "ig", "model": "resnet50", "preprocessing": {"resize": 256, "crop": 224, "mean": [0.5] * 3,
                                                                   "std": [0.5] * 3, "interpolation": "bilinear"}}


def batches(rows: int, size: int, batch: int):
    generator = np.random.default_rng(0)
    maps = generator.standard_normal((batch, 3, size, size), dtype=np.float32)
    for start in range(0, rows, batch):
        count = min(batch, rows - start)
        yield {"attributions": maps[:count], "paths": [f"img{start + i:06d}.jpg" for i in range(count)],
               "targets": np.zeros(count, np.int64), "scores": np.ones(count, np.float32)}


def igcli_writer(folder: Path, rows: int, size: int, batch: int) -> None:
    writer = ShardWriter(folder, 0, SETTINGS, shard_size=rows)
    for columns in batches(rows, size, batch):
        writer.write(columns)
    writer.close()


def plain_h5py(folder: Path, rows: int, size: int, batch: int) -> None:
    path = folder / "plain.h5"
    with h5py.File(path, "w") as handle:
        for columns in batches(rows, size, batch):
            for name, values in columns.items():
                array = np.asarray(values, dtype=object) if name == "paths" else values
                if name not in handle:
                    row_bytes = max(1, array[:1].nbytes)
                    handle.create_dataset(name, shape=(0, *array.shape[1:]), maxshape=(None, *array.shape[1:]),
                                          dtype=h5py.string_dtype() if name == "paths" else array.dtype,
                                          chunks=(max(1, min(64, rows, 2**20 // row_bytes)), *array.shape[1:]))
                dataset = handle[name]
                dataset.resize(dataset.shape[0] + len(array), axis=0)
                dataset[-len(array):] = array
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    megabytes = args.rows * 3 * args.size * args.size * 4 / 2**20
    timings: dict[str, list[float]] = {"igcli ShardWriter": [], "plain h5py": []}
    runners = {"igcli ShardWriter": igcli_writer, "plain h5py": plain_h5py}
    for _ in range(args.repeats):
        for name, runner in runners.items():  # alternating, so drift hits both alike
            folder = Path(tempfile.mkdtemp(dir=args.dir))
            started = time.perf_counter()
            runner(folder, args.rows, args.size, args.batch)
            timings[name].append(time.perf_counter() - started)
            shutil.rmtree(folder)
    print(f"{args.rows} rows of 3 x {args.size} x {args.size} float32 ({megabytes:.0f} MB), batches of {args.batch}, "
          f"{args.repeats} alternating repeats")
    for name, values in timings.items():
        rates = sorted(megabytes / t for t in values)
        print(f"{name:20s} median {statistics.median(rates):7.1f} MB/s (min {rates[0]:.1f}, max {rates[-1]:.1f})")
    ratio = statistics.median(timings["igcli ShardWriter"]) / statistics.median(timings["plain h5py"])
    print(f"igcli time / plain time: {ratio:.2f}")


if __name__ == "__main__":
    main()
