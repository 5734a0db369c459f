"""Speech benchmarks: mmcli vs the bare engines (and whisper-ctranslate2), whole processes.

Every case runs as a fresh process, interleaved with its baseline (so machine noise hits both
alike); medians and ratios are printed. Same model files and settings on both sides:
tiny.en-bundled, compute type auto, beam 5, VAD on; piper en_US-joe-medium.

1. `mmcli transcribe newsreel.mp3` vs a bare faster-whisper script (target ratio <= 1.05).
2. a folder of 10 clips in one `mmcli transcribe` call vs a bare faster-whisper loop (target:
   per-item overhead <= 2%), plus 10 separate mmcli calls (what loading once saves).
3. `mmcli speak` on a paragraph vs a bare piper script: real-time factor of each (<= 1.05).
4. the 10-clip folder through whisper-ctranslate2 (same model folder), when its venv exists:
   python3 -m venv /tmp/wct2-venv && /tmp/wct2-venv/bin/pip install whisper-ctranslate2

Usage: python bench/speech.py [--runs 3] [--wct2 /tmp/wct2-venv/bin/whisper-ctranslate2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
PARAGRAPH = (
    "The history of recorded sound begins with the phonautograph, which could draw sound waves "
    "but never play them back. Thomas Edison's phonograph followed in eighteen seventy seven. "
    "Within a few decades, records were sold in every town, and radio carried voices across "
    "oceans. Today, a small computer can turn written text into speech in less time than it "
    "takes to listen to it, without sending a single word to a distant server.")

BARE_WHISPER = """
import sys
import ctranslate2
from faster_whisper import WhisperModel
ctranslate2.set_random_seed(0)  # as mmcli does (temperature fallback samples)
model = WhisperModel(sys.argv[1], device="cpu", compute_type="auto", local_files_only=True)
for path in sys.argv[2:]:
    segments, info = model.transcribe(path, beam_size=5, vad_filter=True)
    print("".join(s.text for s in segments).strip())
"""

BARE_PIPER = """
import sys, time, wave
from piper import PiperVoice
voice = PiperVoice.load(sys.argv[1], config_path=sys.argv[2])
start = time.perf_counter()
with wave.open(sys.argv[4], "wb") as wav:
    voice.synthesize_wav(open(sys.argv[3]).read(), wav)
    frames = wav.getnframes()
print((time.perf_counter() - start) / (frames / voice.config.sample_rate))
"""


def model_files(name: str) -> dict[str, Path]:
    sys.path.insert(0, str(REPO))
    from mmcli import hub, manifest

    files = hub.local_files(manifest.load(None).models[name])
    if files is None:
        sys.exit(f"bundled model {name} is not installed")
    return files


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def compare(cases: dict[str, list[list[str]]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median wall time of each case (a case = one or more commands run in sequence); the
    minimum too, as ``NAME.min`` (robust against other load on a shared machine)."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for cmds in cases.values():  # warm-up: page cache, .pyc files
        for cmd in cmds:
            timed(cmd, env)
    for _ in range(runs):
        for name, cmds in cases.items():
            times[name].append(sum(timed(cmd, env) for cmd in cmds))
    out = {k: statistics.median(v) for k, v in times.items()}
    out.update({f"{k}.min": min(v) for k, v in times.items()})
    return out


CLIP_TEXTS = (
    "The meeting starts at nine tomorrow morning.", "Please bring the quarterly report.",
    "The train to Boston leaves from platform four.", "It will rain in the afternoon.",
    "Our new office is next to the old library.", "Remember to water the plants on Friday.",
    "The museum is closed on Mondays.", "She ordered a coffee and a slice of cake.",
    "The results will be published next week.", "Turn left after the second traffic light.")


def make_clips(folder: Path) -> list[str]:
    """10 clean spoken sentences (piper, seeded: the same WAVs on every run)."""
    sys.path.insert(0, str(REPO))
    from mmcli import api

    paths = []
    for i, text in enumerate(CLIP_TEXTS):
        (record,) = list(api.run("speak", [text.encode()], "en_US-joe-medium"))
        path = folder / f"clip{i}.wav"
        path.write_bytes(record.audio)  # type: ignore[attr-defined]
        paths.append(str(path))
    return paths


def report(title: str, r: dict[str, float], scale: dict[str, float] | None = None) -> None:
    """Print median and best-of-runs for mmcli vs the baseline (``scale``: divide by it)."""
    k = scale or {"mmcli": 1.0, "bare": 1.0}
    med = (r["mmcli"] / k["mmcli"], r["bare"] / k["bare"])
    best = (r["mmcli.min"] / k["mmcli"], r["bare.min"] / k["bare"])
    print(f"{title}: mmcli {med[0]:.3f}, baseline {med[1]:.3f}, ratio {med[0] / med[1]:.3f} "
          f"(median); best-of-runs ratio {best[0] / best[1]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wct2", default="/tmp/wct2-venv/bin/whisper-ctranslate2")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    py, mm = sys.executable, [sys.executable, "-m", "mmcli", "--offline"]
    whisper_dir = str(model_files("tiny.en-bundled")["model"].parent)
    voice = model_files("en_US-joe-medium")
    news = str(MEDIA / "newsreel.mp3")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        clips = make_clips(t)
        r = compare({"mmcli": [[*mm, "transcribe", news]],
                     "bare": [[py, "-c", BARE_WHISPER, whisper_dir, news]]}, args.runs, env)
        report("1. transcribe newsreel.mp3, whole process (s)", r)

        cases = {"mmcli": [[*mm, "transcribe", str(t)]],
                 "bare": [[py, "-c", BARE_WHISPER, whisper_dir, *clips]],
                 "mmcli1": [[*mm, "transcribe", clips[0]]],
                 "bare1": [[py, "-c", BARE_WHISPER, whisper_dir, clips[0]]],
                 "separate": [[*mm, "transcribe", c] for c in clips]}
        wct2 = Path(args.wct2)
        if wct2.is_file():
            cases["wct2"] = [[str(wct2), "--model_directory", whisper_dir, "--device", "cpu",
                              "--vad_filter", "True", "--output_dir", str(t / "wct2"),
                              "--output_format", "txt", "--verbose", "False", *clips]]
        r = compare(cases, args.runs, env)
        report("2. 10 clips, one mmcli call vs a bare faster-whisper loop (s)", r)
        # Per item = the slope from 1 clip to 10 clips (fixed startup and load cancel out).
        item_m, item_b = (r["mmcli"] - r["mmcli1"]) / 9, (r["bare"] - r["bare1"]) / 9
        print(f"   per item: mmcli {item_m * 1000:.1f} ms, bare loop {item_b * 1000:.1f} ms, "
              f"overhead {(item_m / item_b - 1) * 100:+.1f}%; whole call "
              f"{(r['mmcli'] - r['bare']) * 1000:+.0f} ms vs the bare loop; "
              f"10 separate mmcli calls {r['separate']:.3f} s "
              f"({r['separate'] / r['mmcli']:.2f}x the single call)")
        if "wct2" in r:
            print(f"   whisper-ctranslate2 {r['wct2']:.3f} s: mmcli throughput "
                  f"{r['wct2'] / r['mmcli']:.2f}x whisper-ctranslate2's")
        else:
            print(f"   whisper-ctranslate2: not installed at {wct2}, skipped")

        para = t / "para.txt"
        para.write_text(PARAGRAPH)
        out_m, out_b = t / "m.wav", t / "b.wav"
        r = compare({"mmcli": [[*mm, "speak", "-i", str(para), "-o", str(out_m)]],
                     "bare": [[py, "-c", BARE_PIPER, str(voice["model"]), str(voice["config"]),
                               str(para), str(out_b)]]}, args.runs, env)
        dur = {k: _duration(p) for k, p in (("mmcli", out_m), ("bare", out_b))}
        report(f"3. speak a paragraph ({dur['mmcli']:.1f} s of audio), real-time factor, whole "
               "process", r, scale=dur)
        synth = synthesis_rtf(mm, [py, "-c", BARE_PIPER, str(voice["model"]),
                                   str(voice["config"]), str(para), str(out_b)], para, out_m,
                              args.runs, env)
        print(f"   synthesis only (model loaded): real-time factor mmcli {synth[0]:.4f}, "
              f"bare piper {synth[1]:.4f}, ratio {synth[0] / synth[1]:.3f} (median)")


def synthesis_rtf(mm: list[str], bare: list[str], para: Path, out: Path, runs: int,
                  env: dict[str, str]) -> tuple[float, float]:
    """Median RTF of the synthesis alone: mmcli's record field vs the bare script's print."""
    import json

    mine, base = [], []
    for _ in range(runs):
        done = subprocess.run([*mm, "speak", "-i", str(para), "-o", str(out), "-f", "json"],
                              env=env, check=True, capture_output=True, text=True)
        mine.append(json.loads(done.stdout)["real_time_factor"])
        done = subprocess.run(bare, env=env, check=True, capture_output=True, text=True)
        base.append(float(done.stdout))
    return statistics.median(mine), statistics.median(base)


def _duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


if __name__ == "__main__":
    main()
