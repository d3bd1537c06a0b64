"""Split IG's Tables 1-3 on EfficientNet-Lite0 and real photos, in one `igcli split` command.

Run by hand (not a test):

    pip install -e '.[bench]'
    python benchmarks/bench_split.py --data ../shared/data/imagenet-sample --images 16

As in Miglani et al. 2020: logit of the labelled class, black (0 pixel) baseline, 200-step right Riemann
sums, psi 0.9, 0.95, 0.99. Prints the command, its statistics and the paper's numbers for ResNet-50 and
Inception-v3 beside them (Markdown, for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).parent / "_work"
PAPER = {  # Miglani et al. 2020 Tables 1-3 (Table 3 at psi = 0.9 only)
    "ratio_l2": {"ResNet-50": [1.7684, 1.4467, 1.0505], "Inception-v3": [2.4843, 2.0840, 1.5706]},
    "ratio_l1": {"ResNet-50": [1.8207, 1.4896, 1.0711], "Inception-v3": [2.5371, 2.1291, 1.6021]},
    "alpha_star": {"ResNet-50": [0.382, 0.464, 0.606], "Inception-v3": [0.280, 0.355, 0.493]},
    "cos_left_right": {"ResNet-50": [0.3495], "Inception-v3": [0.2590]},
    "cos_left_full": {"ResNet-50": [0.7298], "Inception-v3": [0.6265]},
    "cos_right_full": {"ResNet-50": [0.8522], "Inception-v3": [0.8788]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--psi", default="0.9,0.95,0.99")
    args = parser.parse_args()

    entries = json.loads((args.data / "labels.json").read_text())[: args.images]
    folder = WORK / "split-photos"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with open(WORK / "split-labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for entry in entries:
            link = folder / entry["file"]
            link.symlink_to((args.data / entry["file"]).resolve())
            writer.writerow([str(link), entry["label"]])
    out = WORK / "split-out"
    command = ["igcli", "split", str(folder), "-o", str(out), "--overwrite", "--model", "efficientnet_lite0",
               "--psi", args.psi, "--steps", str(args.steps), "--schedule", "right", "--output", "logit",
               "--baseline", "black", "--target", "label", "--labels", str(WORK / "split-labels.csv"), "--json",
               "--quiet"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "igcli", *command[1:]], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 5):
        sys.exit(done.stderr)
    result = json.loads(done.stdout)
    statistics = result["statistics"]
    psis = statistics["psis"]
    print(" ".join(command))
    print(f"\n{statistics['images']} images, alpha* found for {statistics['found']}, {seconds:.0f} s "
          f"({seconds / statistics['images']:.1f} s per image)\n")
    print("| statistic | " + " | ".join(f"psi {p:g}: EfficientNet-Lite0 (ResNet-50 / Inception-v3)" for p in psis) + " |")
    print("|---|" + "---|" * len(psis))
    for name in ["ratio_l2", "ratio_l1", "alpha_star", "cos_left_right", "cos_left_full", "cos_right_full"]:
        cells = []
        for j, _ in enumerate(psis):
            ours = f"{statistics['means'][name][j]:.3f} (median {statistics['medians'][name][j]:.3f})"
            paper = PAPER[name]
            theirs = (f"{paper['ResNet-50'][j]:.3f} / {paper['Inception-v3'][j]:.3f}"
                      if j < len(paper["ResNet-50"]) else "-")
            cells.append(f"{ours} ({theirs})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
