"""RiemannOpt on real photos: completeness error of uniform, Gauss-Legendre and calibrated schedules.

Run by hand (not a test):

    pip install -e '.[bench]'
    python benchmarks/bench_calibrate.py --data ../shared/data/imagenet-sample

For IG (black baseline) and Blur IG on EfficientNet-Lite0 (softmax output, predicted class): estimate |g'| on
--calibration photos (Algorithm 1, 128 probe points), calibrate a schedule for each step count, then on
--held-out other photos report the mean relative completeness error |sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')|
(Swain and Singhi 2024 §4.2) for uniform right-Riemann, Gauss-Legendre and calibrated schedules (Table 1's setting).
The probe is shared by all step counts; `igcli calibrate` computes the same thing one step count at a time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

import igcli
from igcli.calibrate import average_probes, interpolator, optimize_partition, probe_derivative
from igcli.data import discover_inputs, load_rgb, normalize, preprocess_pixels
from igcli.models import efficientnet_lite0
from igcli.schedules import Schedule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--held-out", type=int, default=16)
    parser.add_argument("--probe-steps", type=int, default=128)
    parser.add_argument("--steps", default="8,16,32,64")
    parser.add_argument("--methods", default="ig,blurig")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    steps_list = [int(s) for s in args.steps.split(",")]

    loaded = efficientnet_lite0()
    prep = loaded.preprocessing
    paths = discover_inputs([str(args.data)])
    random.Random(args.seed).shuffle(paths)
    calibration, held_out = paths[: args.calibration], paths[args.calibration : args.calibration + args.held_out]

    def tensors(chosen):
        return normalize(torch.stack([preprocess_pixels(load_rgb(p), prep) for p in chosen]), prep)

    calibration_images, held_out_images = tensors(calibration), tensors(held_out)
    common = dict(output="prob", normalization=prep.normalization, batch_size=args.batch_size, device="cpu")
    report = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "calibration_images": len(calibration),
              "held_out_images": len(held_out), "probe_steps": args.probe_steps, "results": {}}
    for method in args.methods.split(","):
        started = time.perf_counter()
        probes = [probe_derivative(loaded.module, calibration_images[i : i + args.batch_size], method=method,
                                   probe_steps=args.probe_steps, **common)
                  for i in range(0, len(calibration_images), args.batch_size)]
        alphas, derivative = average_probes(probes)
        curve = interpolator(alphas, derivative)
        probe_seconds = time.perf_counter() - started
        print(f"{method}: probe {probe_seconds:.0f} s", file=sys.stderr)
        rows = {}
        for steps in steps_list:
            optimized = optimize_partition(curve, steps)
            schedules = {"uniform-right": "right", "gauss-legendre": "gauss-legendre",
                         "calibrated": Schedule.from_alphas(optimized.alphas, name="calibrated")}
            errors = {}
            for name, schedule in schedules.items():
                gaps = []
                for i in range(0, len(held_out_images), args.batch_size):
                    result = igcli.attribute(loaded.module, held_out_images[i : i + args.batch_size], method=method,
                                             steps=steps, schedule=schedule, **common)
                    gaps += result.completeness_gap.tolist()
                gaps = np.asarray(gaps)
                errors[name] = {"mean": float(np.nanmean(gaps)), "median": float(np.nanmedian(gaps))}
            rows[steps] = {"errors": errors, "bound": {"uniform": optimized.objective_uniform,
                                                       "start": optimized.objective_start,
                                                       "result": optimized.objective, "chosen": optimized.chosen}}
            print(method, steps, json.dumps(rows[steps]), file=sys.stderr)
        report["results"][method] = {"probe_seconds": round(probe_seconds, 1), "by_steps": rows,
                                     "derivative": {"alphas": alphas.tolist(), "values": derivative.tolist()}}

    print("\n| method | steps | uniform right | Gauss-Legendre | calibrated | bound uniform -> calibrated |")
    print("|---|---|---|---|---|---|")
    for method, result in report["results"].items():
        for steps, row in result["by_steps"].items():
            e, b = row["errors"], row["bound"]
            print(f"| {method} | {steps} | {e['uniform-right']['mean']:.4f} | {e['gauss-legendre']['mean']:.4f} | "
                  f"{e['calibrated']['mean']:.4f} | {b['uniform']:.3g} -> {b['result']:.3g} ({b['chosen']}) |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
