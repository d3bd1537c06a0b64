"""`igcli evaluate` at dataset scale (issue 14): streaming images/s against the forward-pass bound, SIC/AIC's
encode pool, Quantus on the same inputs, and peak memory against the number of images.

Run by hand (not a test), on an otherwise quiet machine:

    python benchmarks/bench_evaluate_speed.py --data ../shared/data/imagenet-sample --images 8 --rounds 3

EfficientNet-Lite0 (ImageNet weights, 224 x 224), IG maps made once by `igcli attribute` into
benchmarks/_work/speed-*/ (reused when present). Parts (--parts):

- bound: the best per-row forward-only time over batch sizes (inference_mode), before and after the rest; the
  bound of a metric is its forward rows per image x that time (insertion 1 + 21 and deletion 21, sharing the
  original: 43; ABPC 2 x 11; SIC/AIC 27).
- stream: `igcli evaluate --metric insertion,deletion` and `--metric abpc`: the `images_per_second` that
  `--json` reports (decode, rank, perturb, model, write; start-up excluded), against the bound.
- pic: SIC/AIC (`sic,aic`) with 0 (serial), 1 and 2 encoding processes (the Python API's `encode_workers`),
  against the encode-only rate (27 lossless WebP encodes per image, serially) and the model-only rate.
- quantus: per image, igcli insertion+deletion vs Quantus `RegionPerturbation` (1 + 21 forward passes: the
  insertion's count) + `PixelFlipping` (21 passes, `features_in_step` = 7168 of 3 x 224 x 224 elements), and
  igcli `sensitivity` vs Quantus `MaxSensitivity` (radius 0.05, 10 draws, its explain_func is igcli.attribute
  with the maps' recipe, so both compute 11 maps per image). Quantus's batch size from a short sweep; rounds
  alternate the peers; median and min-max.
- memory: peak RSS (/usr/bin/time) of `igcli evaluate --metric insertion,deletion` on 8 and on 32 images
  (the same photos again under other names, 4-step maps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

WORK = Path(__file__).parent / "_work"
ROWS = {"insertion,deletion": 43, "abpc": 22, "sic,aic": 27}


def igcli(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "igcli", *args, "--json", "--quiet"], capture_output=True, text=True)
    if done.returncode not in (0, 5):
        sys.exit(done.stderr)
    return json.loads(done.stdout)


def photos(data: Path, count: int, name: str, repeat: int = 1) -> Path:
    """A folder of links to the first ``count`` photos (``repeat`` times, under other names)."""
    chosen = sorted(p for p in data.iterdir() if p.suffix.lower() == ".jpg")[:count]
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for copy in range(repeat):
        for photo in chosen:
            (folder / f"{copy}-{photo.name}").symlink_to(photo.resolve())
    return folder


def maps(folder: Path, steps: int) -> Path:
    out = WORK / f"speed-{folder.name}-{steps}"
    igcli("attribute", str(folder), "-o", str(out), "--resume", "--model", "efficientnet_lite0", "--steps", str(steps))
    return out


def model_and_inputs(folder: Path):
    from igcli.data import load_rgb, normalize, preprocess_pixels
    from igcli.models import efficientnet_lite0

    loaded = efficientnet_lite0()
    pixels = torch.stack([preprocess_pixels(load_rgb(p), loaded.preprocessing) for p in sorted(folder.iterdir())])
    return loaded, pixels, normalize(pixels, loaded.preprocessing)


def per_row_forward(module, images: torch.Tensor, sizes=(1, 2, 4, 8, 16)) -> tuple[float, int]:
    """The best seconds per row of a forward pass over ``sizes`` (and the size it came at)."""
    best = (float("inf"), 0)
    with torch.inference_mode():
        for size in sizes:
            rows = images[torch.arange(size) % images.shape[0]]
            module(rows)
            timings = []
            for _ in range(max(2, 16 // size)):
                started = time.perf_counter()
                module(rows)
                timings.append((time.perf_counter() - started) / size)
            best = min(best, (min(timings), size))
    return best


def stream_rate(out: Path, metric: str, count: int, tag: str) -> float:
    result = igcli("evaluate", str(out), "--metric", metric, "--limit", str(count), "--results",
                   str(WORK / f"evals-{tag}"), "--overwrite")
    return result["results"][0]["images_per_second"]


def pic_rates(out: Path, count: int, workers: int) -> float:
    from igcli.jobs.evaluate import EvaluateJob, evaluate

    result = evaluate(EvaluateJob(out, metrics=("sic", "aic"), limit=count, encode_workers=workers, overwrite=True,
                                  results=WORK / f"evals-pic-{workers}"), quiet=True)
    return result.images_per_second


def encode_rate(loaded, pixels: torch.Tensor, out: Path, count: int) -> float:
    """Images/s of the 27 lossless WebP encodes per image alone (serially, in this process)."""
    from igcli.metrics import pic
    from igcli.metrics.webp import webp_sizes
    from igcli.output import Output

    scores = Output(out).shard_rows(0, ["attributions"], list(range(count)))["attributions"]
    started = time.perf_counter()
    for picture, score in zip(pixels[:count], scores):
        picture = picture.permute(1, 2, 0).numpy()
        base, extra = pic.blurred_base(picture), pic.random_mask(224, 224, 0)
        score = np.asarray(score, np.float64).sum(axis=0) if np.ndim(score) == 3 else np.asarray(score, np.float64)
        masks = np.concatenate([extra[None], pic.reveal_masks(score, pic.PIC_FRACTIONS, extra)])
        stack = np.concatenate([np.where(masks[..., None], picture[None], base[None]), picture[None]])
        webp_sizes(stack)
    return count / (time.perf_counter() - started)


def quantus_faithfulness(loaded, images, targets, attributions, batch_size: int) -> float:
    """Seconds per image for Quantus RegionPerturbation (insertion's 22 passes) + PixelFlipping (21)."""
    import quantus

    x, y, a = images.numpy(), targets.numpy(), attributions
    started = time.perf_counter()
    quantus.RegionPerturbation(patch_size=16, order="morf", regions_evaluation=21, normalise=False, abs=False,
                               perturb_baseline="black", disable_warnings=True)(
        model=loaded.module, x_batch=x, y_batch=y, a_batch=a, device="cpu", softmax=True, batch_size=batch_size)
    quantus.PixelFlipping(features_in_step=7168, normalise=False, abs=False, perturb_baseline="black",
                          disable_warnings=True)(
        model=loaded.module, x_batch=x, y_batch=y, a_batch=a, device="cpu", softmax=True, batch_size=batch_size)
    return (time.perf_counter() - started) / len(x)


def quantus_sensitivity(loaded, images, targets, steps: int, batch_size: int) -> float:
    import quantus

    from igcli.api import attribute

    def explain(model, inputs, targets, **kwargs):
        rows = torch.as_tensor(inputs)
        return attribute(model, rows, torch.as_tensor(targets), method="ig", steps=steps, baseline="black",
                         batch_size=4, device="cpu", normalization=loaded.preprocessing.normalization,
                         check_completeness=False).attributions.numpy()

    started = time.perf_counter()
    quantus.MaxSensitivity(nr_samples=10, lower_bound=0.05, normalise=False, abs=False, disable_warnings=True)(
        model=loaded.module, x_batch=images.numpy(), y_batch=targets.numpy(), a_batch=None, device="cpu",
        explain_func=explain, softmax=True, batch_size=batch_size)
    return (time.perf_counter() - started) / len(images)


def igcli_seconds(out: Path, metric: str, count: int, tag: str) -> float:
    """Seconds per image of the evaluate job's streaming loop (what --json's images_per_second measures), run
    in this process as Quantus is: the same process gives both the same warm model and thread pool (a fresh
    process ran the same forward passes up to 40% slower here, which a peer in this process never pays)."""
    from igcli.jobs.evaluate import EvaluateJob, evaluate

    result = evaluate(EvaluateJob(out, metric.split(","), limit=count, results=WORK / f"evals-{tag}",
                                  overwrite=True), quiet=True)
    return 1.0 / result.images_per_second


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} | {min(values):.3f}-{max(values):.3f}"


def peak_rss_kib(out: Path, count: int) -> int:
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "igcli", "evaluate", str(out), "--metric",
                           "insertion,deletion", "--limit", str(count), "--quiet", "--results",
                           str(WORK / f"evals-memory-{count}"), "--overwrite"], capture_output=True, text=True)
    return int(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--sensitivity-images", type=int, default=2)
    parser.add_argument("--sensitivity-steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="bound,stream,pic,quantus,memory")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    folder = photos(args.data, args.images, f"photos-{args.images}")
    out = maps(folder, 32)
    loaded, pixels, images = model_and_inputs(folder)
    module = loaded.module.eval()
    targets = torch.as_tensor(np.asarray(__import__("igcli").Output(out).shard_rows(0, ["targets"], list(range(
        args.images)))["targets"], dtype=np.int64))
    row, size = per_row_forward(module, images)
    print(f"best forward: {row * 1000:.2f} ms/row at batch {size}", file=sys.stderr)

    if "stream" in parts:
        print("\n| metric | images/s, median | min-max | rows/image | bound images/s | ratio |\n|---|---:|---|---:|---:|---:|")
        for metric in ("insertion,deletion", "abpc"):
            rates = [stream_rate(out, metric, args.images, f"stream-{metric}") for _ in range(args.rounds)]
            bound = 1.0 / (ROWS[metric] * row)
            print(f"| {metric} | {summary(rates)} | {ROWS[metric]} | {bound:.3f} | {statistics.median(rates) / bound:.2f} |")

    if "pic" in parts:
        encode = encode_rate(loaded, pixels, out, args.images)
        model_only = 1.0 / (ROWS["sic,aic"] * row)
        print(f"\nSIC/AIC: encode-only {encode:.3f} images/s, model-only (bound) {model_only:.3f} images/s, "
              f"both serially {1 / (1 / encode + 1 / model_only):.3f}")
        print("\n| encode workers | images/s, median | min-max |\n|---|---:|---|")
        rates: dict[int, list[float]] = {w: [] for w in (0, 1, 2)}
        for _ in range(args.rounds):
            for workers in rates:
                rates[workers].append(pic_rates(out, args.images, workers))
        for workers, values in rates.items():
            print(f"| {workers} | {summary(values)} |")

    if "quantus" in parts:
        stored = __import__("igcli").Output(out).shard_rows(0, ["attributions"], list(range(args.images)))
        attributions = np.asarray(stored["attributions"], np.float32)
        # igcli ranks pixels by the channel sum; Quantus ranks elements: give it the channel sum in all three
        # channels, so PixelFlipping's 7168 elements per step are 21 steps of 3 x 224 x 224 (with one channel
        # it would take 7 steps of 50176 and do a third of the forward passes).
        summed = attributions.sum(axis=1, keepdims=True) if attributions.ndim == 4 else attributions[:, None]
        attributions = np.repeat(summed, 3, axis=1)
        sweep = {b: quantus_faithfulness(loaded, images, targets, attributions, b) for b in (1, 4, 8)}
        best = min(sweep, key=sweep.get)
        print(f"\nQuantus faithfulness batch sweep (s/image): {sweep}; best {best}", file=sys.stderr)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(igcli_seconds(out, "insertion,deletion", args.images, "q-insdel"))
            theirs.append(quantus_faithfulness(loaded, images, targets, attributions, best))
        print("\n| peer (43 forward rows per image) | s / image, median | min-max |\n|---|---:|---|")
        print(f"| igcli insertion+deletion (batch 4) | {summary(ours)} |")
        print(f"| Quantus RegionPerturbation + PixelFlipping (batch_size={best}) | {summary(theirs)} |")
        print(f"ratio Quantus / igcli: {statistics.median(theirs) / statistics.median(ours):.2f}")

        few = photos(args.data, args.sensitivity_images, f"photos-{args.sensitivity_images}")
        few_out = maps(few, args.sensitivity_steps)
        few_images = images[: args.sensitivity_images]
        few_targets = targets[: args.sensitivity_images]
        sweep = {b: quantus_sensitivity(loaded, few_images, few_targets, args.sensitivity_steps, b) for b in (1, 2)}
        best = min(sweep, key=sweep.get)
        print(f"Quantus MaxSensitivity batch sweep (s/image): {sweep}; best {best}", file=sys.stderr)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(igcli_seconds(few_out, "sensitivity", args.sensitivity_images, "q-sens"))
            theirs.append(quantus_sensitivity(loaded, few_images, few_targets, args.sensitivity_steps, best))
        print(f"\n| peer ({args.sensitivity_steps}-step IG, 11 maps per image) | s / image, median | min-max |\n|---|---:|---|")
        print(f"| igcli sensitivity | {summary(ours)} |")
        print(f"| Quantus MaxSensitivity (batch_size={best}) | {summary(theirs)} |")
        print(f"ratio Quantus / igcli: {statistics.median(theirs) / statistics.median(ours):.2f}")

    if "memory" in parts:
        many = photos(args.data, 8, "photos-8x4", repeat=4)
        many_out = maps(many, 4)
        print("\n| images | peak RSS (MiB) |\n|---|---:|")
        for count in (8, 32):
            print(f"| {count} | {peak_rss_kib(many_out, count) / 1024:.0f} |")

    row_after, size_after = per_row_forward(module, images)
    print(f"\nbest forward: {row * 1000:.2f} ms/row at batch {size} before, {row_after * 1000:.2f} at batch "
          f"{size_after} after", file=sys.stderr)


if __name__ == "__main__":
    main()
