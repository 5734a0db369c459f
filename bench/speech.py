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
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="auto", local_files_only=True)
for path in sys.argv[2:]:
    segments, info = model.transcribe(path, beam_size=5, vad_filter=True)
    print("".join(s.text for s in segments).strip())
"""

BARE_PIPER = """
import sys, wave
from piper import PiperVoice
voice = PiperVoice.load(sys.argv[1], config_path=sys.argv[2])
with wave.open(sys.argv[4], "wb") as wav:
    voice.synthesize_wav(open(sys.argv[3]).read(), wav)
"""


def model_files(name: str) -> dict[str, Path]:
    sys.path.insert(0, str(REPO))
    from mmcli import manifest, resolve

    files = resolve.local_files(manifest.load(None).models[name])
    if files is None:
        sys.exit(f"bundled model {name} is not installed")
    return files


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def compare(cases: dict[str, list[list[str]]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median wall time of each case (a case = one or more commands run in sequence)."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for cmds in cases.values():  # warm-up: page cache, .pyc files
        for cmd in cmds:
            timed(cmd, env)
    for _ in range(runs):
        for name, cmds in cases.items():
            times[name].append(sum(timed(cmd, env) for cmd in cmds))
    return {k: statistics.median(v) for k, v in times.items()}


def make_clips(folder: Path) -> list[str]:
    """10 clips of 4 s cut from the newsreel (16 kHz mono WAV)."""
    import numpy as np
    from faster_whisper import decode_audio

    audio = decode_audio(str(MEDIA / "newsreel.mp3"), sampling_rate=16000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    paths = []
    for i in range(10):
        start = int(i * 1.3 * 16000)
        path = folder / f"clip{i}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm[start:start + 64000].tobytes())
        paths.append(str(path))
    return paths


def report(title: str, mine: float, base: float, unit: str = "s") -> None:
    print(f"{title}: mmcli {mine:.3f} {unit}, baseline {base:.3f} {unit}, "
          f"ratio {mine / base:.3f}")


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
        report("1. transcribe newsreel.mp3 (whole process)", r["mmcli"], r["bare"])

        cases = {"mmcli": [[*mm, "transcribe", str(t)]],
                 "bare": [[py, "-c", BARE_WHISPER, whisper_dir, *clips]],
                 "separate": [[*mm, "transcribe", c] for c in clips]}
        wct2 = Path(args.wct2)
        if wct2.is_file():
            cases["wct2"] = [[str(wct2), "--model_directory", whisper_dir, "--device", "cpu",
                              "--vad_filter", "True", "--output_dir", str(t / "wct2"),
                              "--output_format", "txt", "--verbose", "False", *clips]]
        r = compare(cases, args.runs, env)
        report("2. 10 clips, one call vs bare loop", r["mmcli"], r["bare"])
        print(f"   per-item overhead {(r['mmcli'] - r['bare']) / 10 * 1000:+.1f} ms "
              f"({(r['mmcli'] / r['bare'] - 1) * 100:+.1f}% of the bare loop); "
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
        rtf_m, rtf_b = r["mmcli"] / dur["mmcli"], r["bare"] / dur["bare"]
        report(f"3. speak a paragraph ({dur['mmcli']:.1f} s of audio), real-time factor",
               rtf_m, rtf_b, unit="")


def _duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


if __name__ == "__main__":
    main()
