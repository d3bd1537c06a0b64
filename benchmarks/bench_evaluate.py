"""IG, IG+IDGI, Guided IG(+IDGI), Blur IG(+IDGI) on real photos, scored by `igcli evaluate`; and its speed.

Run by hand (not a test):

    pip install -e '.[bench]'
    python benchmarks/bench_evaluate.py --data ../shared/data/imagenet-sample --images 25

EfficientNet-Lite0, 32 steps, predicted class, softmax output. Attributes each variant with `igcli attribute`
into benchmarks/_work/eval-*/ (reused when present), then evaluates all six with insertion ranked `signed` and
`abs`, and SIC/AIC with both information levels; then times each metric alone on --speed-images images.
Prints Markdown for benchmarks/RESULTS.md beside the direction of effect in Yang et al. 2023 Tables 1-3.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).parent / "_work"
VARIANTS = {"IG": ["--method", "ig"], "IG+IDGI": ["--method", "ig", "--rule", "idgi"],
            "GIG": ["--method", "gig"], "GIG+IDGI": ["--method", "gig", "--rule", "idgi"],
            "BlurIG": ["--method", "blurig"], "BlurIG+IDGI": ["--method", "blurig", "--rule", "idgi"]}


def igcli(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "igcli", *args, "--json", "--quiet"], capture_output=True, text=True)
    if done.returncode not in (0, 5):
        sys.exit(done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=25)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--speed-images", type=int, default=8)
    args = parser.parse_args()

    photos = sorted(p for p in args.data.iterdir() if p.suffix.lower() == ".jpg")[: args.images]
    folder = WORK / f"eval-photos-{args.images}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for photo in photos:
        (folder / photo.name).symlink_to(photo.resolve())
    outputs = {}
    for name, options in VARIANTS.items():
        out = WORK / f"eval-{name}-{args.images}-{args.steps}"
        started = time.perf_counter()
        summary = igcli("attribute", str(folder), "-o", str(out), "--resume", "--model", "efficientnet_lite0",
                        "--steps", str(args.steps), *options)
        print(f"{name}: {summary['attributed']} attributed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        outputs[name] = out

    scores: dict[str, dict[str, float]] = {name: {} for name in VARIANTS}
    for rank in ("signed", "abs"):
        result = igcli("evaluate", *map(str, outputs.values()), "--metric", "insertion", "--rank", rank)
        for name, evaluated in zip(VARIANTS, result["results"]):
            scores[name][f"insertion ({rank})"] = evaluated["aggregate"]["insertion"]["value"]
            scores[name][f"insertion ratio ({rank})"] = evaluated["aggregate"]["insertion_ratio"]["value"]
    result = igcli("evaluate", *map(str, outputs.values()), "--metric", "sic,aic,sic-msssim,aic-msssim",
                   "--plot", str(WORK / "eval-curves.png"))
    for name, evaluated in zip(VARIANTS, result["results"]):
        for metric in ("sic", "aic", "sic-msssim", "aic-msssim"):
            entry = evaluated["aggregate"][metric]
            scores[name][metric] = entry["value"]
            scores[name][f"{metric} unscorable"] = entry["unscorable"]

    speed = {}
    for metric in ("insertion,deletion", "abpc", "sic,aic,sic-msssim,aic-msssim", "sensitivity", "jpeg-stability",
                   "completeness"):
        started = time.perf_counter()
        igcli("evaluate", str(outputs["IG"]), "--metric", metric, "--limit", str(args.speed_images))
        speed[metric] = args.speed_images / (time.perf_counter() - started)

    columns = list(next(iter(scores.values())))
    print(f"\n{len(photos)} photos, {args.steps} steps, EfficientNet-Lite0 (curves: {WORK / 'eval-curves.png'})\n")
    print("| variant | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in scores.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    print("\n| metric (IG maps, whole command incl. start-up) | images/s |\n|---|---|")
    for metric, rate in speed.items():
        print(f"| {metric} | {rate:.2f} |")


if __name__ == "__main__":
    main()
