"""Engine throughput: igcli vs Captum vs PAIR saliency vs the raw forward+backward bound, in one process.

Run by hand (not a test):

    pip install -e '.[bench]'
    python benchmarks/bench_engine.py --data ../shared/data/imagenet-sample --images 4 --steps 32

Model: EfficientNet-Lite0 with real ImageNet weights at 224 x 224 (inputs (x - 0.5) / 0.5). The raw bound is
steps x images x the best per-row forward+backward time over batch sizes: what any IG implementation must
spend on the model alone. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import igcli
from igcli.models import efficientnet_lite0


def load_images(folder: Path, count: int, preprocessing) -> tuple[torch.Tensor, list[int]]:
    from PIL import Image
    from torchvision.transforms import v2 as transforms

    labels = json.loads((folder / "labels.json").read_text())[:count]
    transform = transforms.Compose(
        [
            transforms.ToImage(),
            transforms.Resize(preprocessing.resize, antialias=True),
            transforms.CenterCrop(preprocessing.crop),
            transforms.ToDtype(torch.float32, scale=True),
            transforms.Normalize(preprocessing.normalization.mean, preprocessing.normalization.std),
        ]
    )
    images = torch.stack([transform(Image.open(folder / entry["file"]).convert("RGB")) for entry in labels])
    return images, [entry["label"] for entry in labels]


def best_of(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def per_row_forward_backward(model, batch_sizes, repeats, previous=None) -> dict[int, float]:
    """Seconds per row of one forward+backward of the target softmax probability, per batch size.

    Best of `repeats` after a warm-up, and the minimum with `previous` (an earlier sweep) when given: this
    2-core machine's timings drift by 30-50% between rounds, and the bound must be the fastest the model can go.
    """
    results = dict(previous or {})
    for size in batch_sizes:
        x = torch.randn(size, 3, 224, 224)
        target = torch.zeros(size, dtype=torch.int64)

        def run():
            leaf = x.clone().requires_grad_(True)
            probability = torch.softmax(model(leaf), 1).gather(1, target[:, None]).sum()
            torch.autograd.grad(probability, leaf)

        run()  # warm-up
        results[size] = min(results.get(size, float("inf")), best_of(run, repeats) / size)
    return results


def pair_call_model_function(model, target):
    import saliency.core as saliency

    def call(x_batch, call_model_args=None, expected_keys=None):
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(x_batch, dtype=np.float32).transpose(0, 3, 1, 2)))
        x.requires_grad_(True)
        probability = torch.softmax(model(x), 1)[:, target].sum()
        (gradients,) = torch.autograd.grad(probability, x)
        return {saliency.INPUT_OUTPUT_GRADIENTS: gradients.numpy().transpose(0, 2, 3, 1)}

    return call


def patch_pair_quantile() -> None:
    """PAIR 0.2.1 calls np.quantile(..., interpolation=...), which NumPy 2 removed."""
    import types

    import saliency.core.guided_ig as guided_ig

    shim = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")})
    shim.quantile = lambda a, q, interpolation="linear", **kw: np.quantile(a, q, method=interpolation, **kw)
    guided_ig.np = shim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32")
    parser.add_argument("--only", default="raw,igcli-ig,captum-ig,pair-ig,igcli-gig,pair-gig,igcli-blurig,pair-blurig")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.manual_seed(0)
    only = set(args.only.split(","))

    loaded = efficientnet_lite0()
    model = loaded.module
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    images, labels = load_images(args.data, args.images, loaded.preprocessing)
    n, steps = images.shape[0], args.steps
    black = loaded.preprocessing.normalization.from_pixels(torch.zeros_like(images))
    rows: list[tuple[str, float]] = []
    report = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "images": n, "steps": steps}

    per_row = per_row_forward_backward(model, [int(b) for b in args.batch_sizes.split(",")], args.repeats)
    best_batch = min(per_row, key=per_row.get)
    bound = per_row[best_batch] * steps  # seconds per image
    report["per_row_ms"] = {b: round(t * 1000, 2) for b, t in per_row.items()}
    report["best_batch"] = best_batch
    print("per-row forward+backward ms:", report["per_row_ms"], "best batch", best_batch, file=sys.stderr)

    def timed(name, function, repeats=1):
        if name not in only:
            return
        seconds = best_of(function, repeats) / n
        rows.append((name, seconds))
        print(f"{name}: {seconds:.3f} s/image ({seconds / bound:.2f}x bound)", file=sys.stderr)

    target = torch.tensor(labels)
    common = dict(steps=steps, batch_size=best_batch, normalization=loaded.preprocessing.normalization, device="cpu")
    timed("igcli-ig", lambda: igcli.attribute(model, images, target, method="ig", **common), args.repeats)
    timed("igcli-gig", lambda: igcli.attribute(model, images, target, method="gig", **common), args.repeats)
    timed("igcli-blurig", lambda: igcli.attribute(model, images, target, method="blurig", **common), args.repeats)

    if "captum-ig" in only:
        from captum.attr import IntegratedGradients

        def probability(x):
            return torch.softmax(model(x), 1)

        captum_ig = IntegratedGradients(probability)
        timed(
            "captum-ig",
            lambda: captum_ig.attribute(
                images, black, target=target, n_steps=steps, method="riemann_right", internal_batch_size=best_batch
            ),
            args.repeats,
        )

    if only & {"pair-ig", "pair-gig", "pair-blurig"}:
        import saliency.core as saliency

        patch_pair_quantile()
        hwc = images.numpy().transpose(0, 2, 3, 1)
        black_hwc = black.numpy().transpose(0, 2, 3, 1)

        def pair_all(method, arguments):
            for i in range(n):
                method.GetMask(hwc[i], pair_call_model_function(model, labels[i]), **arguments(i))

        timed("pair-ig", lambda: pair_all(saliency.IntegratedGradients(),
                                          lambda i: dict(x_baseline=black_hwc[i], x_steps=steps, batch_size=best_batch)))
        timed("pair-gig", lambda: pair_all(saliency.GuidedIG(), lambda i: dict(x_baseline=black_hwc[i], x_steps=steps)))
        timed("pair-blurig", lambda: pair_all(saliency.BlurIG(), lambda i: dict(steps=steps, batch_size=best_batch)))

    # Sweep again after the methods ran and keep the faster figure per batch size, so a slow first sweep cannot
    # flatter the ratios.
    per_row = per_row_forward_backward(model, list(per_row), args.repeats, previous=per_row)
    best_batch = min(per_row, key=per_row.get)
    bound = per_row[best_batch] * steps
    report["per_row_ms"] = {b: round(t * 1000, 2) for b, t in per_row.items()}
    report["best_batch"] = best_batch
    print("per-row forward+backward ms (min of two sweeps):", report["per_row_ms"], file=sys.stderr)
    report["seconds_per_image"] = {name: round(s, 4) for name, s in rows}
    report["raw_bound_seconds_per_image"] = round(bound, 4)
    print(f"\n| method | s / image | x raw bound |\n|---|---|---|\n| raw bound (steps x best per-row f+b) | {bound:.3f} | 1.00 |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / bound:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
