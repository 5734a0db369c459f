"""``--jobs`` scaling: mmcli with ``--jobs 1`` and ``--jobs 2`` vs a bare sequential engine loop.

Two folders of 20 inputs, whole processes (start-up, model loads and all), runs interleaved so
machine noise hits every case alike; medians, throughput (inputs/s) and the load average:

1. caption: 20 seeded 640x480 JPEGs, the tiny generated VLM (tests/tinyvlm.py), greedy,
   32 tokens, full-size images on both sides (``--max-side 0``); the bare loop is
   llama-cpp-python's MTMDChatHandler (as bench/caption.py).
2. speak: 20 text files of two sentences, the bundled piper voice; the bare loop is piper's
   ``synthesize_wav`` per file.
Every case gets the same total CPU threads (``--threads``, default: all CPUs): ``--jobs 2``
splits them, one engine instance per worker.

It also prints the overlap potential for ``--jobs 1``: the time mmcli spends reading and
decoding the 20 images (what a prefetch thread could hide) against the whole caption run.

Usage: python bench/jobs.py [--runs 3] [--threads N] [--only caption|speak]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PY = sys.executable
N = 20
Command = Callable[[int], list[str]]  # run index (-1: warm-up) -> argv

BARE_CAPTION = r'''
import base64, sys
from llama_cpp import Llama
from llama_cpp.llama_chat_format import MTMDChatHandler
model, mmproj, threads, *images = sys.argv[1:]
llm = Llama(model, n_ctx=1024, n_threads=int(threads), n_threads_batch=int(threads),
            chat_handler=MTMDChatHandler(mmproj, verbose=False), verbose=False)
for path in images:
    uri = "data:image/jpeg;base64," + base64.b64encode(open(path, "rb").read()).decode()
    out = llm.create_chat_completion(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}},
                                      {"type": "text", "text": "Describe this image."}]}],
        max_tokens=32, temperature=0.0)
    print(path + ": " + out["choices"][0]["message"]["content"].strip())
llm.close()
'''

BARE_SPEAK = r'''
import json, sys, wave
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig
model, config, threads, out, *texts = sys.argv[1:]
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = int(threads)
session = onnxruntime.InferenceSession(model, sess_options=options,
                                       providers=["CPUExecutionProvider"])
voice = PiperVoice(session=session, config=PiperConfig.from_dict(json.load(open(config))))
for i, path in enumerate(texts):
    with wave.open(f"{out}/{i:02d}.wav", "wb") as wav:
        voice.synthesize_wav(open(path).read(), wav)
'''

MANIFEST = """
[models.bench-vlm]
engine = "llama-mtmd"
tasks = ["caption"]
description = "benchmark model"
license = "-"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}", mmproj = "{mmproj}" }}
options = {{ n_ctx = 1024 }}
"""

SENTENCES = ("The river was calm in the early morning light.",
             "A small boat drifted past the old stone bridge.",
             "Children were playing football in the park.",
             "The bakery on the corner opens at seven.")


def interleaved(cases: dict[str, Command], runs: int) -> dict[str, float]:
    """Median seconds per case; ``cases`` maps a name to a function(run) -> argv."""
    times: dict[str, list[float]] = {k: [] for k in cases}
    for make in cases.values():  # warm-up: page cache, .pyc files
        subprocess.run(make(-1), check=True, capture_output=True)
    for i in range(runs):
        for name, make in cases.items():
            start = time.perf_counter()
            done = subprocess.run(make(i), capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"{name} failed: {done.stderr[-2000:]}")
    return {k: statistics.median(v) for k, v in times.items()}


def report(title: str, times: dict[str, float]) -> None:
    bare = times["bare loop"]
    print(f"\n{title}")
    print(f"{'case':<16}{'median s':>10}{'inputs/s':>10}{'vs bare':>9}")
    for name, t in times.items():
        print(f"{name:<16}{t:>10.3f}{N / t:>10.2f}{bare / t:>8.2f}x")


def caption(tmp: Path, runs: int, threads: int) -> None:
    from tests.tinyvlm import build
    from tests.vision_fixtures import make_image

    model, mmproj = build(tmp / "model")
    manifest = tmp / "bench.toml"
    manifest.write_text(MANIFEST.format(dir=model.parent, model=model.name, mmproj=mmproj.name))
    pics = [str(make_image(tmp / "photos" / f"img{i:02d}.jpg", i, size=(640, 480)))
            for i in range(N)]
    mm = [PY, "-m", "mmcli", "--models", str(manifest), "--threads", str(threads), "caption",
          "--model", "bench-vlm", "--max-tokens", "32", "--max-side", "0", str(tmp / "photos")]

    def mmcli(jobs: int) -> Command:
        return lambda i: [*mm, "--jobs", str(jobs), "--output-dir", str(tmp / f"c{jobs}-{i}")]

    times = interleaved({"bare loop": lambda i: [PY, "-c", BARE_CAPTION, str(model), str(mmproj),
                                                 str(threads), *pics],
                         "mmcli --jobs 1": mmcli(1), "mmcli --jobs 2": mmcli(2)}, runs)
    report(f"caption, {N} images 640x480, tiny VLM, {threads} threads in total", times)
    overlap(pics, times["mmcli --jobs 1"])


def overlap(pics: list[str], whole: float) -> None:
    """What a --jobs 1 prefetch thread could hide: mmcli's read + decode of the images."""
    from mmcli import images

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for path in pics:
            images.load(Path(path).read_bytes(), path)
        best = min(best, time.perf_counter() - start)
    print(f"overlap potential, --jobs 1: reading + decoding the {N} images takes "
          f"{best * 1000:.0f} ms ({best / N * 1000:.1f} ms each) of the {whole:.2f} s run "
          f"({best / whole * 100:.1f} %)")


def speak(tmp: Path, runs: int, threads: int) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from speech import model_files

    voice = model_files("en_US-joe-medium")
    texts = tmp / "texts"
    texts.mkdir()
    for i in range(N):
        (texts / f"t{i:02d}.txt").write_text(f"{SENTENCES[i % 4]} This is text number {i}.\n")
    files = [str(p) for p in sorted(texts.iterdir())]
    mm = [PY, "-m", "mmcli", "--offline", "--threads", str(threads), "speak",
          *(x for f in files for x in ("-i", f))]

    def mmcli(jobs: int) -> Command:
        return lambda i: [*mm, "--jobs", str(jobs), "--output-dir", str(tmp / f"s{jobs}-{i}")]

    def bare(i: int) -> list[str]:
        out = tmp / f"b-{i}"
        out.mkdir(exist_ok=True)
        return [PY, "-c", BARE_SPEAK, str(voice["model"]), str(voice["config"]), str(threads),
                str(out), *files]

    times = interleaved({"bare loop": bare, "mmcli --jobs 1": mmcli(1),
                         "mmcli --jobs 2": mmcli(2)}, runs)
    report(f"speak, {N} texts of two sentences, piper en_US-joe-medium, {threads} threads in "
           "total", times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", choices=("caption", "speak"))
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = str(REPO)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.only in (None, "caption"):
            caption(tmp, args.runs, args.threads)
        if args.only in (None, "speak"):
            speak(tmp, args.runs, args.threads)
    print(f"\nload average before {before:.2f}, after {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs, {args.runs} interleaved runs each, medians)")


if __name__ == "__main__":
    main()
