"""Startup benchmark: `mmcli --help` and `mmcli models list` vs `python -c "import typer"`.

Runs all three interleaved in one process tree (so machine noise hits them alike) and prints
medians and ratios. Target: `mmcli --help` <= 1.6x the bare typer import.

Usage: python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "import typer": [sys.executable, "-c", "import typer"],
    "mmcli --help": [sys.executable, "-m", "mmcli", "--help"],
    "mmcli models list": [sys.executable, "-m", "mmcli", "models", "list"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="100")
    times: dict[str, list[float]] = {k: [] for k in CASES}
    for _ in range(2):  # warm the OS file cache and .pyc files
        for cmd in CASES.values():
            subprocess.run(cmd, env=env, capture_output=True, check=True)
    for _ in range(args.runs):
        for name, cmd in CASES.items():
            start = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["import typer"])
    print(f"{'case':<20} {'median ms':>10} {'ratio':>7}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<20} {med * 1000:>10.1f} {med / base:>7.2f}x")


if __name__ == "__main__":
    main()
