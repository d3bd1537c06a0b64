"""Host-device synchronisations per ``igcli.attribute`` call, counted on CPU (no GPU needed).

Run by hand (not a test):

    python benchmarks/bench_syncs.py            # Markdown table for benchmarks/RESULTS.md

Counts, per method x rule and step count, the operations that would make the host wait for a CUDA device
(tests/sync_counter.py says what is and is not counted): 3 images of 3 x 16 x 16, the tests' tiny convnet,
4 rows per chunk (the CPU default), so 8 steps are 6 chunks and 32 steps 24.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import igcli  # noqa: E402
from igcli.methods import method_names  # noqa: E402

from conftest import tiny_convnet  # noqa: E402
from sync_counter import count_syncs  # noqa: E402

KINDS = ("scalar", "shape", "to_host", "to_device")


def count(method: str, rule: str, steps: int, images: int = 3) -> dict[str, int]:
    generator = torch.Generator().manual_seed(1)
    x, model = torch.rand((images, 3, 16, 16), generator=generator), tiny_convnet()
    options = {} if method == "vg" else {"rule": rule, "steps": steps}
    with warnings.catch_warnings(), count_syncs() as counter:
        warnings.simplefilter("ignore")
        igcli.attribute(model, x, method=method, batch_size=4, device="cpu", **options)
    return counter.by_kind()


def main() -> None:
    torch.set_num_threads(1)
    print("| method | rule | steps | syncs per call | scalar / shape / to_host / to_device |")
    print("|---|---|---:|---:|---|")
    for method in method_names():
        for rule in ("riemann",) if method == "vg" else ("riemann", "idgi"):
            for steps in (8, 32):
                kinds = count(method, rule, steps)
                split = " / ".join(str(kinds.get(kind, 0)) for kind in KINDS)
                print(f"| {method} | {rule if method != 'vg' else '-'} | {steps} | {sum(kinds.values())} | {split} |")


if __name__ == "__main__":
    main()
