"""igcli's default IDGI against the IDGI authors' procedure on real photos (issue 13).

Yang et al. 2023 (IDGI, Algorithm 1) ran their function ``IDGI(Gradients, Predictions)`` (github
yangruo1226/IDGI, ``idgi.py``) on the gradients and predictions met by PAIR's ``saliency`` implementations. This
script records PAIR's points for IG, Blur IG and Guided IG (a wrapped ``call_model_function``), feeds them in
path order (start -> input) to a transcription of that function, and compares the map with
``igcli.attribute(..., rule="idgi")`` with no schedule (the IDGI rule's default, ``left``), on the same path:

- IG: PAIR x_steps = steps + 1 (alphas k / steps, input included) <-> igcli ``steps``; black baseline.
- Blur IG: PAIR max_sigma = 50 (steps + 1) / steps, steps + 1 points (sigma_i = 50 i / steps, i = 0 .. steps,
  reversed into path order) <-> igcli's defaults, max_sigma 50 and ``steps``.
- Guided IG: PAIR x_steps = steps (gradients at each step's start; the input's prediction is appended) <->
  igcli ``steps``; fraction 0.25, max_dist 0.02, black baseline.

Also shown for IG: igcli's IDGI with ``schedule="right"`` (the default before issue 13) against the same
reference.

EfficientNet-Lite0's input gradient is piecewise smooth (ReLU6): moving a point by 1e-7 (float32 rounding) moves
single pixels of the gradient by up to ~15% of its max. The maps therefore agree to float precision only where
both sides evaluate bit-identical points. So the images are held in float64 on both sides (PAIR's NumPy 2
arithmetic promotes to float64 anyway) and the model runs in float32 on the points rounded to float32: the
straight and guided paths are then built by the same float64 operations on both sides. The blurred images are
not (igcli blurs by matrix products with one kernel radius for the whole path, PAIR with scipy's
``gaussian_filter`` and a radius per sigma: differences up to 1e-4), so Blur IG is shown twice: with igcli's own
blur, and with igcli's path made to return scipy's blurred images (``blurig-scipy``), which isolates the rule,
the schedule and the order of the points. Even on bit-identical points the float32 model's gradients and
predictions differ by ~1e-6 relative between igcli's engine and PAIR's wrapper (batch composition and kernel
choice), which bounds the agreement where, as on the blur path, the change in f is spread over cells with
small gradients.
Run by hand (CPU; a few minutes on 2 cores):

    python benchmarks/bench_idgi_reference.py --data ../shared/data/imagenet-sample --images 4 --steps 32

Prints a Markdown table: max |igcli - reference| / max |reference| and the Pearson correlation, per method
(worst image), then per image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import igcli
import igcli.paths
from igcli.models import efficientnet_lite0

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import load_images, patch_pair_quantile  # noqa: E402


class Float32Model(torch.nn.Module):
    """The model in float32 on inputs of any float dtype (rounded to float32); gradients flow back to the input's
    dtype unchanged."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(torch.float32))


class Recorder:
    """PAIR's ``call_model_function`` for ``model`` (target's softmax probability) that records every row PAIR
    evaluates: the gradient (H, W, C) and the prediction."""

    def __init__(self, model: torch.nn.Module, target: int) -> None:
        self.model, self.target = model, target
        self.gradients: list[np.ndarray] = []
        self.predictions: list[float] = []

    def __call__(self, x_batch, call_model_args=None, expected_keys=None):
        import saliency.core as saliency

        batch = np.array(x_batch, dtype=np.float64)  # a copy: PAIR's Guided IG moves its point in place
        x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).requires_grad_(True)
        probability = torch.softmax(self.model(x), dim=1)[:, self.target]
        (gradients,) = torch.autograd.grad(probability.sum(), x)
        hwc = gradients.numpy().transpose(0, 2, 3, 1)
        self.gradients += [g.astype(np.float64) for g in hwc]
        self.predictions += [float(p) for p in probability.detach()]
        return {saliency.INPUT_OUTPUT_GRADIENTS: hwc}


def authors_idgi(gradients, predictions) -> np.ndarray:
    """The authors' ``IDGI(Gradients, Predictions)`` (Yang et al. 2023, Algorithm 1), written out: for path
    points x_0 (start) .. x_n (input), sum_i g_i^2 (p_{i+1} - p_i) / sum(g_i^2); the gradient at x_n is unused."""
    result = np.zeros_like(gradients[0])
    for i in range(len(gradients) - 1):
        squared = gradients[i] ** 2
        result += squared * (predictions[i + 1] - predictions[i]) / np.sum(squared)
    return result


class ScipyBlurPath(igcli.paths.BlurPath):
    """igcli's blur path whose points are PAIR's: ``scipy.ndimage.gaussian_filter(HWC image, [s, s, 0],
    mode="constant")`` in the image's dtype (float32), the input itself at sigma 0. Only ``points`` (all the
    IDGI rule asks for) is replaced."""

    def points(self, image_index: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        from scipy import ndimage

        blurred = []
        for image, sigma in zip(self.inputs[image_index].cpu().numpy(), self.sigma(alphas).tolist()):
            hwc = image.transpose(1, 2, 0)
            if sigma != 0:
                hwc = ndimage.gaussian_filter(hwc, sigma=[sigma, sigma, 0], mode="constant")
            blurred.append(hwc.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(blurred)).to(self.inputs.device)


def compare(ours: torch.Tensor, reference_hwc: np.ndarray) -> tuple[float, float]:
    """(max |ours - reference| / max |reference|, Pearson correlation) of a (C, H, W) map and an (H, W, C) one."""
    a = ours.detach().to(torch.float64).numpy().transpose(1, 2, 0).ravel()
    b = reference_hwc.ravel()
    return float(np.abs(a - b).max() / np.abs(b).max()), float(np.corrcoef(a, b)[0, 1])


def cells(pair: tuple[float, float] | None) -> str:
    """Two table cells: the relative max difference and 1 - Pearson (dashes when not measured)."""
    return "- | -" if pair is None else f"{pair[0]:.2e} | {1 - pair[1]:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8, help="rows per forward+backward, igcli and PAIR")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    import saliency.core as saliency

    patch_pair_quantile()
    loaded = efficientnet_lite0()
    for parameter in loaded.module.parameters():
        parameter.requires_grad_(False)
    model = Float32Model(loaded.module).eval()
    normalization = loaded.preprocessing.normalization
    images, labels = load_images(args.data, args.images, loaded.preprocessing)
    images = images.to(torch.float64)  # see the module's docstring
    steps, batch = args.steps, args.batch_size
    black = normalization.from_pixels(torch.zeros_like(images))
    hwc = images.numpy().transpose(0, 2, 3, 1)
    black_hwc = black.numpy().transpose(0, 2, 3, 1)
    max_sigma = 50.0

    def pair_ig(i: int, recorder: Recorder) -> None:
        saliency.IntegratedGradients().GetMask(hwc[i], recorder, x_baseline=black_hwc[i], x_steps=steps + 1,
                                               batch_size=batch)

    def pair_blurig(i: int, recorder: Recorder) -> None:
        saliency.BlurIG().GetMask(hwc[i], recorder, max_sigma=max_sigma * (steps + 1) / steps, steps=steps + 1,
                                  batch_size=batch)
        recorder.gradients.reverse()  # PAIR goes from the input (sigma 0) towards the blur
        recorder.predictions.reverse()

    def pair_gig(i: int, recorder: Recorder) -> None:
        saliency.GuidedIG().GetMask(hwc[i], recorder, x_baseline=black_hwc[i], x_steps=steps, fraction=0.25,
                                    max_dist=0.02)
        recorder(hwc[i][None])  # PAIR never evaluates the input; the last cell needs its prediction

    methods = {
        "ig": (pair_ig, dict(baseline="black")),
        "blurig": (pair_blurig, dict(max_sigma=max_sigma)),
        "blurig-scipy": (pair_blurig, dict(max_sigma=max_sigma)),
        "gig": (pair_gig, dict(baseline="black", fraction=0.25, max_dist=0.02)),
    }
    target = torch.tensor(labels)
    common = dict(steps=steps, rule="idgi", batch_size=batch, normalization=normalization, device="cpu",
                  check_completeness=False)
    rows = []
    blur_path = igcli.paths.BlurPath
    references: dict[tuple[str, int], np.ndarray] = {}  # blurig and blurig-scipy share PAIR's recordings
    for name, (pair, options) in methods.items():
        method = name.removesuffix("-scipy")
        igcli.paths.BlurPath = ScipyBlurPath if name.endswith("-scipy") else blur_path  # the blurig method's path
        default = igcli.attribute(model, images, target, method=method, **common, **options)
        assert default.settings["schedule"] == "left"
        right = None if method != "ig" else igcli.attribute(model, images, target, method=method,
                                                               schedule="right", **common, **options)
        igcli.paths.BlurPath = blur_path
        for i in range(images.shape[0]):
            if (method, i) not in references:
                recorder = Recorder(model, labels[i])
                pair(i, recorder)
                assert len(recorder.predictions) == steps + 1
                references[method, i] = authors_idgi(recorder.gradients, recorder.predictions)
            reference = references[method, i]
            rows.append(dict(method=name, image=i, default=compare(default.attributions[i], reference),
                             right=compare(right.attributions[i], reference) if right is not None else None))
            print(name, i, rows[-1], file=sys.stderr)

    print(f"\nEfficientNet-Lite0, {images.shape[0]} photos, {steps} steps, model in float32, CPU; reference: the "
          "authors' IDGI on PAIR's recorded points\n")
    print("| method | default (left): max abs diff / max abs | 1 - Pearson | old default (right): max abs diff / "
          "max abs | 1 - Pearson |\n|---|---|---|---|---|")
    for name in methods:
        mine = [row for row in rows if row["method"] == name]
        summary = []
        for key in ("default", "right"):
            measured = [row[key] for row in mine if row[key] is not None]
            summary.append((max(d for d, _ in measured), min(r for _, r in measured)) if measured else None)
        print(f"| {name} (worst image) | {cells(summary[0])} | {cells(summary[1])} |")
    print("\n| method | image | default: diff / max | 1 - Pearson | right: diff / max | 1 - Pearson |\n"
          "|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['method']} | {row['image']} | {cells(row['default'])} | {cells(row['right'])} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
