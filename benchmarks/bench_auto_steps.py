"""``--steps auto`` against fixed schedules: gradient evaluations for a map error, on real photos.

Run by hand (not a test):

    pip install -e '.[bench]'
    PYTHONPATH=$PWD python benchmarks/bench_auto_steps.py --images 16 --outputs prob,logit

For IG (black baseline, riemann rule, predicted class) on EfficientNet-Lite0, per photo: a reference map from
1024 Gauss-Legendre points; maps from uniform schedules (right Riemann, igcli's default, and trapezoid),
Gauss-Legendre and RiemannOpt-calibrated schedules (calibrated on --calibration other photos) at 8..256
gradient evaluations; and ``steps="auto"`` at each tolerance. For every one: the true relative L1 map error
||A - A_ref||_1 / ||A_ref||_1 (median, p90), the completeness gap (median, p90) and the evaluations per image
(mean, median, p90). Gradients along each photo's path are computed once per point set and shared by the
schedules that use them (uniform grids nest in the 256-cell one). Reference integrands are cached in
benchmarks/_work. ``--timing`` also times auto against a fixed schedule of about as many evaluations, rounds
alternating, to show the refinement's bookkeeping cost. ``--plot FILE.png`` draws the cost-accuracy curves.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import igcli
from igcli.baselines import make_baseline
from igcli.calibrate import average_probes, interpolator, optimize_partition, probe_derivative
from igcli.data import discover_inputs, load_rgb, normalize, preprocess_pixels
from igcli.engine import Engine
from igcli.models import efficientnet_lite0
from igcli.paths import StraightPath
from igcli.schedules import Schedule

WORK = Path(__file__).parent / "_work" / "auto-steps"
COUNTS = (8, 16, 32, 64, 128, 256)
COUNTS_UNIFORM = (8, 16, 32, 64, 128, 256, 512)


def integrand(engine: Engine, path: StraightPath, image: int, target: torch.Tensor, alphas: np.ndarray):
    """(f (K,), v (K, C, H, W) float64) at the alphas of one image's path: v = grad f * gamma'."""
    at = torch.as_tensor(alphas, dtype=torch.float64)
    rows = torch.full((len(alphas),), image, dtype=torch.int64)
    f_all, v_all = [], []
    for part in engine.chunks(len(alphas)):
        x, velocity = path.points_and_velocity(rows[part], at[part])
        f, g = engine.scores_and_gradients(x, target.expand(x.shape[0]))
        f_all.append(f.double())
        v_all.append(g.double() * velocity.double())
    return torch.cat(f_all), torch.cat(v_all)


def spread(values) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


def measure(images, targets, model, normalization, output, args, schedules_by_count):
    engine = Engine(model, output=output, batch_size=args.batch_size, device=torch.device("cpu"))
    baselines = make_baseline("black", images, normalization)
    path = StraightPath(images, baselines)
    with torch.no_grad():
        logits = model(images)
    scores = engine.target_scores(logits, targets).double()
    rows: dict[str, dict[int, list]] = {}

    def judge(attribution, reference, change):
        """[relative L1 map error, completeness gap]"""
        return [float((attribution - reference).abs().sum() / reference.abs().sum()),
                float(abs(attribution.sum() - change) / abs(change))]

    starts = {}

    def change_of(image):
        """f(x) - f(x') of a photo (one forward pass at the baseline, once)."""
        if image not in starts:
            with torch.no_grad():
                starts[image] = float(scores[image] - engine.scores(baselines[image : image + 1],
                                                                      targets[image : image + 1])[0])
        return starts[image]

    auto_rows: dict[str, list] = {}
    for i in range(len(images)):
        cache = WORK / f"{output}-{args.names[i]}.pt"
        if cache.exists():
            reference = torch.load(cache, weights_only=True)
        else:
            points, weights = np.polynomial.legendre.leggauss(1024)
            f, v = integrand(engine, path, i, targets[i : i + 1], (points + 1) / 2)
            reference = (v * torch.as_tensor(weights / 2).view(-1, 1, 1, 1)).sum(0)
            WORK.mkdir(parents=True, exist_ok=True)
            torch.save(reference, cache)
        # (error, gap) per family and count, kept per photo: a later run computes only what is missing
        cache_file = WORK / f"{output}-{args.names[i]}-fixed-{args.calibration}.json"
        cached = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        uniform_counts = [n for n in COUNTS_UNIFORM if n <= args.max_uniform]
        if any(str(n) not in cached.get("uniform-right", {}) for n in uniform_counts):
            grid = np.linspace(0, 1, uniform_counts[-1] + 1)
            f_grid, v_grid = integrand(engine, path, i, targets[i : i + 1], grid)
            change = change_of(i)
            for n in uniform_counts:
                sub = v_grid[:: uniform_counts[-1] // n]
                cached.setdefault("uniform-right", {})[str(n)] = judge(sub[1:].sum(0) / n, reference, change)
                cached.setdefault("trapezoid", {})[str(n + 1)] = judge(
                    (sub[1:-1].sum(0) + (sub[0] + sub[-1]) / 2) / n, reference, change)
        for family, by_count in schedules_by_count.items():
            for n, schedule in by_count.items():
                if str(n) in cached.get(family, {}):
                    continue
                f, v = integrand(engine, path, i, targets[i : i + 1], schedule.points)
                attribution = (v * torch.as_tensor(schedule.weights).view(-1, 1, 1, 1)).sum(0)
                cached.setdefault(family, {})[str(n)] = judge(attribution, reference, change_of(i))
        cache_file.write_text(json.dumps(cached))
        for family, by_count in cached.items():
            for n, (error, gap) in by_count.items():
                if int(n) <= (args.max_uniform + 1 if family in ("uniform-right", "trapezoid") else args.max_fixed):
                    rows.setdefault(family, {}).setdefault(int(n), []).append((error, gap, int(n)))
        line = []
        for label, tolerance, max_steps in args.auto_runs:
            # one image per call: the numbers are per image (batching changes only which rows share a pass)
            result = igcli.attribute(model, images[i : i + 1], targets[i : i + 1], steps="auto", tolerance=tolerance,
                                     max_steps=max_steps, output=output, normalization=normalization,
                                     batch_size=args.batch_size, device="cpu", check_completeness=False)
            error = float((result.attributions[0].double() - reference).abs().sum() / reference.abs().sum())
            auto_rows.setdefault(label, []).append((int(result.evaluations[0]), error,
                                                    float(result.completeness_gap[0]),
                                                    float(result.error_estimate[0]), bool(result.tolerance_met[0])))
            line.append(f"{label}: {auto_rows[label][-1][0]} evals, error {error:.4f}")
        fixed_line = ", ".join(f"{family}@{n}: {rows[family][n][-1][0]:.4f}" for family in rows
                               for n in sorted(rows[family]) if n in (32, 33, 64, 65, 128, 129))
        print(f"{output}: photo {i + 1}/{len(images)} {args.names[i]}: {'; '.join(line)} | {fixed_line}",
              file=sys.stderr)

    auto = {}
    for tolerance, found in auto_rows.items():
        evaluations, errors, gaps, estimates, met = (np.asarray(column) for column in zip(*found))
        auto[tolerance] = {"evaluations": spread(evaluations), "error": spread(errors), "gap": spread(gaps),
                           "estimate": spread(estimates), "met": float(met.mean()),
                           "per_image": {"evaluations": evaluations.tolist(), "error": errors.tolist()}}
    fixed = {family: {n: {"error": spread([r[0] for r in values]), "gap": spread([r[1] for r in values])}
                      for n, values in by_count.items()} for family, by_count in rows.items()}
    return {"fixed": fixed, "auto": auto}


def cheapest_fixed(fixed, error):
    """Per family: the fewest evaluations whose median and p90 map errors are both at most ``error``'s, on the
    measured counts and interpolated log-log between neighbouring counts."""
    best = {}
    for family, by_count in fixed.items():
        counts = sorted(by_count)
        found = None
        for k, n in enumerate(counts):
            e = by_count[n]["error"]
            if e["median"] <= error["median"] and e["p90"] <= error["p90"]:
                found = {"measured": n, "interpolated": float(n)}
                if k:  # where both errors would just be met between the previous count and this one
                    m, p = counts[k - 1], by_count[counts[k - 1]]["error"]
                    needed = []
                    for key in ("median", "p90"):
                        lo, hi = np.log(p[key]), np.log(e[key])
                        t = 0.0 if lo <= np.log(error[key]) else (lo - np.log(error[key])) / (lo - hi)
                        needed.append(t)
                    t = min(1.0, max(needed))
                    found["interpolated"] = float(np.exp(np.log(m) + t * (np.log(n) - np.log(m))))
                break
        best[family] = found
    return best


def timing(images, targets, model, normalization, args):
    """Seconds per gradient evaluation, auto (T = 0.05) against uniform with as many steps, alternating."""
    auto_seconds, fixed_seconds = [], []
    common = dict(output="prob", normalization=normalization, batch_size=args.batch_size, device="cpu",
                  check_completeness=False)
    result = igcli.attribute(model, images, targets, steps="auto", tolerance=0.05, **common)
    evaluations = int(result.evaluations.sum())
    steps = max(1, round(evaluations / len(images)))
    for _ in range(args.rounds):
        started = time.perf_counter()
        igcli.attribute(model, images, targets, steps="auto", tolerance=0.05, **common)
        auto_seconds.append((time.perf_counter() - started) / evaluations)
        started = time.perf_counter()
        igcli.attribute(model, images, targets, steps=steps, **common)
        fixed_seconds.append((time.perf_counter() - started) / (steps * len(images)))
    return {"auto_seconds_per_evaluation": auto_seconds, "fixed_seconds_per_evaluation": fixed_seconds,
            "fixed_steps": steps, "auto_evaluations": evaluations,
            "ratio_median": statistics.median(auto_seconds) / statistics.median(fixed_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--calibration", type=int, default=8)
    parser.add_argument("--outputs", default="prob,logit")
    parser.add_argument("--tolerances", default="0.1,0.05,0.01")
    parser.add_argument("--max-steps", type=int, default=256)
    parser.add_argument("--max-fixed", type=int, default=256,
                        help="most points of the Gauss-Legendre and calibrated schedules")
    parser.add_argument("--max-uniform", type=int, default=512, help="most points of the uniform ones (they nest)")
    parser.add_argument("--max-steps-small", type=int, default=1024,
                        help="--max-steps for the smallest tolerance too (it needs more than the default 256)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    args.tolerances = [float(t) for t in args.tolerances.split(",") if t]
    args.auto_runs = [(f"T={t}", t, args.max_steps) for t in args.tolerances]
    if args.tolerances and args.max_steps_small > args.max_steps:
        smallest = min(args.tolerances)
        args.auto_runs.append((f"T={smallest}, max {args.max_steps_small}", smallest, args.max_steps_small))
    torch.manual_seed(args.seed)

    loaded = efficientnet_lite0()
    prep, model = loaded.preprocessing, loaded.module.eval()
    paths = discover_inputs([str(args.data)])
    random.Random(args.seed).shuffle(paths)
    chosen, calibration = paths[: args.images], paths[args.images : args.images + args.calibration]
    args.names = [Path(p).stem for p in chosen]

    def tensors(files):
        return normalize(torch.stack([preprocess_pixels(load_rgb(p), prep) for p in files]), prep)

    images = tensors(chosen)
    with torch.no_grad():
        targets = model(images).argmax(1)
    report = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "images": len(chosen),
              "model": "efficientnet_lite0", "method": "ig, black baseline, riemann", "outputs": {}}
    for output in [name for name in args.outputs.split(",") if name]:
        probes = probe_derivative(model, tensors(calibration), method="ig", probe_steps=128, output=output,
                                  normalization=prep.normalization, batch_size=args.batch_size, device="cpu")
        curve = interpolator(*average_probes([probes]))
        counts = [n for n in COUNTS if n <= args.max_fixed]
        schedules = {"gauss-legendre": {n: Schedule.gauss_legendre(n) for n in counts},
                     "calibrated": {n: Schedule.from_alphas(optimize_partition(curve, n).alphas, name="calibrated")
                                    for n in counts}}
        measured = measure(images, targets, model, prep.normalization, output, args, schedules)
        for tolerance, row in measured["auto"].items():  # noqa: B007
            row["cheapest_fixed"] = cheapest_fixed(measured["fixed"], row["error"])
        report["outputs"][output] = measured
    if args.timing:
        report["timing"] = timing(images, targets, model, prep.normalization, args)
    print_tables(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.plot:
        plot(report, args.plot)


def print_tables(report) -> None:
    for output, measured in report["outputs"].items():
        print(f"\n#### {output}\n")
        print("| schedule | evaluations / image (mean, median, p90) | map error median | p90 | gap median | p90 |")
        print("|---|---|---|---|---|---|")
        for family, by_count in measured["fixed"].items():
            for n, row in sorted(by_count.items()):
                print(f"| {family} | {n} | {row['error']['median']:.4f} | {row['error']['p90']:.4f} | "
                      f"{row['gap']['median']:.4f} | {row['gap']['p90']:.4f} |")
        for tolerance, row in measured["auto"].items():
            e = row["evaluations"]
            print(f"| auto {tolerance} | {e['mean']:.1f}, {e['median']:.0f}, {e['p90']:.0f} | "
                  f"{row['error']['median']:.4f} | {row['error']['p90']:.4f} | {row['gap']['median']:.4f} | "
                  f"{row['gap']['p90']:.4f} |")
        print("\n| auto | mean evaluations | cheapest fixed with both errors as low (measured / interpolated) |")
        print("|---|---|---|")
        for tolerance, row in measured["auto"].items():
            cells = ", ".join(f"{family} {v['measured']} / {v['interpolated']:.0f}" if v else f"{family} >256"
                              for family, v in row["cheapest_fixed"].items())
            print(f"| {tolerance} | {row['evaluations']['mean']:.1f} | {cells} |")
    if "timing" in report:
        t = report["timing"]
        print(f"\ntiming: auto {statistics.median(t['auto_seconds_per_evaluation']) * 1e3:.2f} ms/evaluation "
              f"{[round(s * 1e3, 2) for s in t['auto_seconds_per_evaluation']]}, fixed {t['fixed_steps']} steps "
              f"{statistics.median(t['fixed_seconds_per_evaluation']) * 1e3:.2f} ms/evaluation "
              f"{[round(s * 1e3, 2) for s in t['fixed_seconds_per_evaluation']]}; ratio {t['ratio_median']:.3f}")


def plot(report, file: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outputs = report["outputs"]
    figure, axes = plt.subplots(1, len(outputs), figsize=(6 * len(outputs), 4.5), squeeze=False)
    for axis, (output, measured) in zip(axes[0], outputs.items()):
        for family, by_count in measured["fixed"].items():
            counts = sorted(by_count)
            axis.plot(counts, [by_count[n]["error"]["median"] for n in counts], "o-", label=f"{family} median")
        auto = measured["auto"]
        axis.plot([r["evaluations"]["mean"] for r in auto.values()], [r["error"]["median"] for r in auto.values()],
                  "k*-", markersize=12, label="auto median")
        axis.plot([r["evaluations"]["mean"] for r in auto.values()], [r["error"]["p90"] for r in auto.values()],
                  "k*--", markersize=8, label="auto p90")
        axis.set(xscale="log", yscale="log", xlabel="gradient evaluations per image",
                 ylabel="relative L1 map error vs 1024-point Gauss-Legendre", title=f"IG, EfficientNet-Lite0, {output}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(file, dpi=110)


if __name__ == "__main__":
    main()
