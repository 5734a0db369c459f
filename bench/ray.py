"""Ray's overhead on one machine: the 24-clip folder on local Ray (2 workers x 1 CPU) vs
``--jobs 2`` here (``--jobs 1`` when this checkout has no ``mmcli/parallel.py``).

The clips are 24 short sentences spoken by the bundled piper voice (written once into a temp
folder). Every case is a fresh ``mmcli --offline transcribe CLIPS --output-dir`` process with
``OMP_NUM_THREADS=1`` (what a 1-CPU Ray worker gets), the cases interleaved run by run so
machine noise hits them alike; medians, ratios to ``--jobs``, and the load average are
printed, and every case's transcripts are checked to be the same bytes.

Cases:
1. ``--jobs 2 --threads 2`` (two engine processes, one thread each): the baseline.
2. ``--ray local --ray-workers 2 --ray-cpus 1``: starts Ray, runs, stops it (a cold start).
3. ``--ray auto`` (found on this machine) against a Ray head started beforehand with 2 CPUs
   (``ray start --head --block``, ended by a signal at the end: ``ray stop`` would end every
   Ray on the machine): the steady-state cost of Ray on a cluster that is already up.

Target: case 3 within 10 % of case 1 (Ray's start-up in case 2 is reported apart).
Usage: python bench/ray.py [--runs 3] [--clips 24]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("river", "station", "morning", "window", "garden", "letter", "market", "engine",
         "harbor", "silver", "thunder", "pencil")


def sentences(n: int) -> list[str]:
    """``n`` different short sentences (about two seconds of speech each)."""
    return [f"Clip {i + 1}: the {WORDS[i % len(WORDS)]} near the "
            f"{WORDS[(i * 5 + 3) % len(WORDS)]} was quiet today." for i in range(n)]


def mmcli(*args: str, env: dict[str, str] | None = None) -> float:
    """Run ``python -m mmcli ARGS`` here; seconds of wall time (fails loudly)."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "mmcli", *args], cwd=REPO, env=env,
                         capture_output=True, text=True)
    took = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"mmcli {' '.join(args)} exited {run.returncode}:\n{run.stderr}")
    return took


def make_clips(folder: Path, n: int) -> Path:
    """``folder/clips`` with ``n`` WAV clips spoken by the bundled voice."""
    lines = folder / "lines.txt"
    lines.write_text("\n".join(sentences(n)) + "\n")
    clips = folder / "clips"
    mmcli("--offline", "--quiet", "speak", "--input-file", str(lines), "--lines",
          "--output-dir", str(clips))
    found = sorted(clips.glob("*.wav"))
    assert len(found) == n, f"expected {n} clips, got {len(found)}"
    return clips


def transcripts(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.txt"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--port", type=int, default=6390, help="the head's GCS port")
    args = parser.parse_args()
    jobs = 2 if (REPO / "mmcli" / "parallel.py").exists() else 1
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    env["PYTHONPATH"] = str(REPO)  # the head's workers import this checkout too
    tmp = Path(tempfile.mkdtemp(prefix="mmcli-bench-ray-"))
    cases = {
        f"--jobs {jobs}": ("--threads", str(jobs), "transcribe", "{clips}", "--jobs", str(jobs)),
        "--ray local (cold)": ("transcribe", "{clips}", "--ray", "local", "--ray-workers", "2",
                               "--ray-cpus", "1"),
        "--ray auto (head up)": ("transcribe", "{clips}", "--ray", "auto", "--ray-workers",
                                 "2", "--ray-cpus", "1"),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    outputs: dict[str, dict[str, bytes]] = {}
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head",
                             "--block", "--num-cpus", "2", f"--port={args.port}",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        address = ""
        assert head.stdout is not None
        for line in head.stdout:  # "  ray start --address='192.0.2.2:6390'"
            if "--address='" in line:
                address = line.split("--address='")[1].split("'")[0]
                break
        assert address, "the Ray head for --ray auto did not start"
        clips = make_clips(tmp, args.clips)
        for run in range(args.runs):
            for name, case in cases.items():
                out = tmp / f"out-{run}-{len(times[name])}-{name.split()[0].strip('-')}"
                argv = [a.replace("{clips}", str(clips)) for a in case]
                # --ray auto finds the head on this machine (and its auth token; an explicit
                # RAY_ADDRESS would need RAY_AUTH_MODE=token too)
                times[name].append(mmcli("--offline", "--quiet", *argv, "--output-dir",
                                         str(out), env=env))
                outputs[name] = transcripts(out)
                shutil.rmtree(out)
            print(f"run {run + 1}: " + ", ".join(f"{n} {t[-1]:.1f} s" for n, t in times.items()),
                  file=sys.stderr)
    finally:
        head.terminate()  # `ray start --block` stops its head's processes on SIGTERM
        head.wait(timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    base = statistics.median(times[f"--jobs {jobs}"])
    same = len({tuple(sorted(o.items())) for o in outputs.values()}) == 1
    print(f"{args.clips} clips, {args.runs} runs, load average {os.getloadavg()[0]:.2f} "
          f"(1 min) on {os.cpu_count()} CPUs; transcripts identical across cases: {same}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:22s} median {med:6.2f} s  ratio {med / base:5.2f}  "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)})")
    if jobs == 1:
        print("note: no mmcli/parallel.py in this checkout: the baseline is --jobs 1")


if __name__ == "__main__":
    main()
