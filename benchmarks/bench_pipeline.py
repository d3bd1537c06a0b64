"""End-to-end `igcli attribute` vs the engine alone, and peak memory as the number of images grows.

Run by hand (not a test):

    pip install -e '.[bench]'
    python benchmarks/bench_pipeline.py --data ../shared/data/imagenet-sample

1. Throughput: images/s of `igcli attribute FOLDER` (a subprocess, as users run it; images/s while streaming,
   from its --json summary, and over the whole command) vs `igcli.attribute` on the same images already decoded
   and preprocessed in memory, with the same method, steps and batch size. Target: the CLI at >= 90%.
2. Memory: peak RSS of the `igcli attribute` process for --small vs --large images (the photos repeated under
   new names through symlinks in benchmarks/_work/). Target: flat within 10%.

Model: EfficientNet-Lite0 (real ImageNet weights) at 224 x 224.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

import igcli
from igcli.data import discover_inputs, load_rgb, normalize, preprocess_pixels
from igcli.models import efficientnet_lite0

WORK = Path(__file__).parent / "_work"


def photo_folder(source: Path, count: int) -> Path:
    """A folder of ``count`` symlinks to the photos in ``source`` (repeated under new names as needed)."""
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    folder = WORK / f"photos-{count}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(count):
        photo = photos[i % len(photos)]
        (folder / f"{i:05d}-{photo.name}").symlink_to(photo.resolve())
    return folder


def run_cli(folder: Path, out: Path, args: list[str]) -> tuple[dict, float, int]:
    """Run igcli attribute in a fresh child; return its --json summary, wall seconds and peak RSS (KiB)."""
    shutil.rmtree(out, ignore_errors=True)
    probe = (
        "import json, resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - start\n"
        "if done.returncode: sys.exit(done.stderr)\n"
        "print(json.dumps({'summary': json.loads(done.stdout), 'wall': wall,"
        " 'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
    )
    command = [sys.executable, "-c", probe, sys.executable, "-m", "igcli", "attribute", str(folder), "-o", str(out),
               "--model", "efficientnet_lite0", "--quiet", "--json", *args]
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return result["summary"], result["wall"], result["peak_kib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=16, help="images for the throughput comparison")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=500)
    parser.add_argument("--memory-steps", type=int, default=4, help="steps for the memory runs (kept short)")
    parser.add_argument("--skip", default="", help="comma list: throughput,memory")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    report: dict = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d")}

    if "throughput" not in skip:
        folder = photo_folder(args.data, args.images)
        loaded = efficientnet_lite0()
        prep = loaded.preprocessing
        paths = discover_inputs([str(folder)])
        images = normalize(torch.stack([preprocess_pixels(load_rgb(p), prep) for p in paths]), prep)
        common = dict(method="ig", steps=args.steps, batch_size=args.batch_size, device="cpu",
                      normalization=prep.normalization)
        igcli.attribute(loaded.module, images[:1], **common)  # warm-up

        def engine_alone() -> float:
            start = time.perf_counter()
            for begin in range(0, len(images), args.batch_size):  # the CLI's batches: batch_size images each
                igcli.attribute(loaded.module, images[begin : begin + args.batch_size], **common)
            return len(images) / (time.perf_counter() - start)

        # The engine before and after the CLI, keeping the faster: this machine drifts by 10-30% over minutes,
        # and the comparison must not flatter the CLI.
        first = engine_alone()
        summary, wall, _ = run_cli(folder, WORK / "out-throughput",
                                   ["--steps", str(args.steps), "-b", str(args.batch_size)])
        engine_rate = max(first, engine_alone())
        report["throughput"] = {
            "images": len(images), "steps": args.steps, "batch_size": args.batch_size,
            "engine_images_per_s": round(engine_rate, 4),
            "cli_streaming_images_per_s": summary["images_per_second"],
            "cli_whole_command_images_per_s": round(len(images) / wall, 4),
            "streaming_ratio": round(summary["images_per_second"] / engine_rate, 3),
            "whole_command_ratio": round(len(images) / wall / engine_rate, 3),
        }
        print(json.dumps(report["throughput"]), file=sys.stderr)

    if "memory" not in skip:
        memory = {}
        for count in (args.small, args.large):
            folder = photo_folder(args.data, count)
            summary, wall, peak = run_cli(folder, WORK / f"out-memory-{count}",
                                          ["--steps", str(args.memory_steps), "-b", str(args.batch_size)])
            memory[count] = {"peak_rss_mib": round(peak / 1024, 1), "seconds": round(wall, 1),
                             "images_per_s": summary["images_per_second"], "shards": len(summary["shards"])}
            print(count, memory[count], file=sys.stderr)
        memory["ratio_large_to_small"] = round(memory[args.large]["peak_rss_mib"] / memory[args.small]["peak_rss_mib"], 3)
        report["memory"] = memory
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
