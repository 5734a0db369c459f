"""Startup benchmark, whole processes, interleaved (machine noise hits every case alike).

1. `mmcli --help` and `mmcli models list` vs `python -c "import typer"` (target: --help <= 1.6x).
2. One input, whole process (issue 15: <= 1.05x): `mmcli transcribe newsreel.mp3` vs a bare
   faster-whisper script, and `mmcli speak` of a paragraph to a WAV vs a bare piper script
   (the scripts of bench/speech.py: same model files and settings).

Medians of ``--runs`` interleaved runs (after two warm-ups) and the load average are printed.
Bytecode is written (PYTHONDONTWRITEBYTECODE dropped): an installed mmcli has its .pyc files,
as the engines' packages have theirs.

Usage: python bench/startup.py [--runs 15] [--skip-engines]
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

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
PY = sys.executable
HELP_CASES = {
    "import typer": [PY, "-c", "import typer"],
    "mmcli --help": [PY, "-m", "mmcli", "--help"],
    "mmcli models list": [PY, "-m", "mmcli", "models", "list"],
}


def measure(cases: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median seconds of each command, runs interleaved, after two warm-up rounds."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(2):  # warm the OS file cache and .pyc files
        for cmd in cases.values():
            subprocess.run(cmd, env=env, capture_output=True, check=True)
    for _ in range(runs):
        for name, cmd in cases.items():
            start = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def engine_cases(tmp: Path) -> dict[str, list[str]]:
    """mmcli and the bare script on one input, for transcribe and speak."""
    sys.path.insert(0, str(REPO / "bench"))
    from speech import BARE_PIPER, BARE_WHISPER, PARAGRAPH, model_files

    whisper_dir = str(model_files("tiny.en-bundled")["model"].parent)
    voice = model_files("en_US-joe-medium")
    news = str(MEDIA / "newsreel.mp3")
    para = tmp / "para.txt"
    para.write_text(PARAGRAPH)
    mm = [PY, "-m", "mmcli", "--offline"]
    return {
        "transcribe: mmcli": [*mm, "transcribe", news],
        "transcribe: bare": [PY, "-c", BARE_WHISPER, whisper_dir, news],
        "speak: mmcli": [*mm, "speak", "-i", str(para), "-o", str(tmp / "m.wav")],
        "speak: bare": [PY, "-c", BARE_PIPER, str(voice["model"]), str(voice["config"]),
                        str(para), str(tmp / "b.wav")],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-engines", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="100", HF_HUB_OFFLINE="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    load = os.getloadavg()
    times = measure(HELP_CASES, args.runs, env)
    base = times["import typer"]
    print(f"{'case':<24} {'median ms':>10} {'ratio':>7}")
    for name, med in times.items():
        print(f"{name:<24} {med * 1000:>10.1f} {med / base:>7.2f}x")
    if not args.skip_engines:
        with tempfile.TemporaryDirectory() as tmp:
            times = measure(engine_cases(Path(tmp)), args.runs, env)
        for task in ("transcribe", "speak"):
            mm, bare = times[f"{task}: mmcli"], times[f"{task}: bare"]
            print(f"{task + ', one input':<24} mmcli {mm:.3f} s, bare script {bare:.3f} s: "
                  f"{mm / bare:.3f}x (target <= 1.05x)")
    after = os.getloadavg()
    print(f"load average before {load[0]:.2f}, after {after[0]:.2f} "
          f"({os.cpu_count()} CPUs; {args.runs} interleaved runs each, medians)")


if __name__ == "__main__":
    main()
