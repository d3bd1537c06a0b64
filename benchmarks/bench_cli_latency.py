"""How long igcli takes to refuse a wrong command, and to start: wall time of `python -m igcli ...` subprocesses,
for one or more igcli checkouts, alternating runs so that drift on a shared machine hits all of them alike.

    python benchmarks/bench_cli_latency.py [--repeats 7] [--checkout DIR ...]

Each checkout is put first on PYTHONPATH (default: this one). The cases are the ones a new user meets: a
contradictory option (`--method vg --rule idgi`) and an output folder that is not empty, both with the default
model, offline (TORCH_HOME is an empty folder, and no network is reachable, so loading the model fails with
exit 4 after trying to download its weights). A tool that checks the cheap things first answers at once with
the right exit code; one that loads the model first answers late, and with exit 4. Reported: the exit code and
the median wall time with its spread (min-max), per case and checkout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cases(folder: Path) -> dict[str, list[str]]:
    images = ROOT / "examples" / "images"
    full = folder / "full"
    full.mkdir(exist_ok=True)
    (full / "notes.txt").write_text("someone else's file\n")
    return {
        "--method vg --rule idgi": ["attribute", str(images), "-o", str(folder / "a"), "--method", "vg", "--rule",
                                    "idgi"],
        "non-empty -o": ["attribute", str(images), "-o", str(full)],
        "--help": ["attribute", "--help"],
    }


def run(checkout: Path, args: list[str], torch_home: Path) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "TORCH_HOME": str(torch_home), "OMP_NUM_THREADS": "1",
           "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "igcli", *args], env=env, capture_output=True, cwd=checkout)
    return result.returncode, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--checkout", type=Path, action="append", help="an igcli source tree (default: this one)")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "torch-home").mkdir()
        times: dict[tuple[str, Path], list[float]] = {}
        codes: dict[tuple[str, Path], set[int]] = {}
        for _ in range(args.repeats):
            for name, command in cases(folder).items():
                for checkout in checkouts:  # alternate the checkouts inside every repeat
                    code, seconds = run(checkout, command, folder / "torch-home")
                    times.setdefault((name, checkout), []).append(seconds)
                    codes.setdefault((name, checkout), set()).add(code)
    print("| case | checkout | exit | median s | min-max s |")
    print("| --- | --- | --- | --- | --- |")
    for (name, checkout), values in times.items():
        exits = ",".join(str(c) for c in sorted(codes[(name, checkout)]))
        print(f"| `{name}` | {checkout.name} | {exits} | {statistics.median(values):.2f} | "
              f"{min(values):.2f}-{max(values):.2f} |")


if __name__ == "__main__":
    main()
