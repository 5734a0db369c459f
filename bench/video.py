"""Benchmark: video frame sampling and `mmcli caption clip.mp4` (issue 14's three figures).

1. Sampling 8 frames from a generated 10-minute 720p clip vs decoding all its frames
   (target: <= 10 %).
2. Peak RSS of `mmcli caption` on the 10-minute clip vs a 10-second one (target: <= 1.2x).
3. `mmcli caption talk.mp4` whole process vs the same stages as bare engine calls in one plain
   script (PyAV seeks, llama-cpp-python + MTMD, faster-whisper, llama-cpp-python chat), both
   fresh processes (target: <= 1.05x).

Clips are generated once into --cache (default /tmp/mmcli-bench-video) with tests/videogen.py;
models: the tiny generated VLM (tests/tinyvlm.py), bundled whisper tiny.en and smollm2-135m.

    python bench/video.py [--repeat 3] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The same stages as `mmcli caption --frames together`, with the engines called directly.
BARE = r'''
import base64, io, json, sys, time
import av
from faster_whisper import WhisperModel
from llama_cpp import Llama
from llama_cpp.llama_chat_format import MTMDChatHandler
clip, vlm, mmproj, whisper_dir, chat, n = sys.argv[1:7]
n = int(n)
T = {}
t0 = time.perf_counter()
with av.open(clip) as c:
    s = c.streams.video[0]
    dur = float(s.duration * s.time_base)
    times = [round(dur * (i + 0.5) / n, 3) for i in range(n)]
    uris, stamps = [], []
    for t in times:
        c.seek(int(t / s.time_base), stream=s, backward=True)
        for f in c.decode(s):
            if f.time + 1e-3 >= t:
                buf = io.BytesIO()
                f.to_image().save(buf, format="PNG")
                uris.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
                stamps.append(f.time)
                break
T["sample"] = time.perf_counter() - t0
t0 = time.perf_counter()
llm = Llama(vlm, n_ctx=4096, chat_handler=MTMDChatHandler(mmproj, verbose=False), verbose=False)
q = (f"These are {len(uris)} frames of one video, in order (at "
     + ", ".join(f"{t:.1f}s" for t in stamps) + "). Describe what the video shows.")
parts = [{"type": "image_url", "image_url": {"url": u}} for u in uris]
parts.append({"type": "text", "text": q})
visual = llm.create_chat_completion([{"role": "user", "content": parts}], max_tokens=128,
                                    temperature=0.0)["choices"][0]["message"]["content"].strip()
T["vision"] = time.perf_counter() - t0
t0 = time.perf_counter()
model = WhisperModel(whisper_dir, device="cpu", compute_type="auto", local_files_only=True)
segments, _ = model.transcribe(clip, beam_size=5, vad_filter=True)
segments = list(segments)
T["transcribe"] = time.perf_counter() - t0
t0 = time.perf_counter()
notes = [f"Video clip, {dur:.1f} seconds.", f"What the frames show: {visual}"]
notes += [f"[{g.start:.1f}-{g.end:.1f}s] speech: {g.text.strip()}" for g in segments]
chatllm = Llama(chat, n_ctx=2048, verbose=False)
prompt = "\n".join(notes) + ("\n\nWrite one caption of this video clip in two or three sentences, "
                             "using what the frames show and what is said.")
out = chatllm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=160,
                                     temperature=0.0)
T["merge"] = time.perf_counter() - t0
print(json.dumps({"stages": T, "merge_tokens": out["usage"]}))
'''

MANIFEST = """
[models.bench-vlm]
engine = "llama-mtmd"
tasks = ["caption"]
description = "tiny generated VLM (benchmark)"
license = "-"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}", mmproj = "{mmproj}" }}
options = {{ n_ctx = 4096 }}
"""


def clips(cache: Path) -> dict[str, Path]:
    """The benchmark clips (generated once): 10-minute and 10-second 720p, a 30-second talk."""
    from tests.speech_helpers import SENTENCES, synthesize
    from tests.videogen import make_clip

    cache.mkdir(parents=True, exist_ok=True)
    out = {"long": cache / "long-720p-10min.mp4", "short": cache / "short-720p-10s.mp4",
           "talk": cache / "talk-480p.mp4"}
    for key, seconds in (("long", 600.0), ("short", 10.0)):
        if not out[key].is_file():
            print(f"generating {out[key].name} ...", flush=True)
            make_clip(out[key], seconds=seconds, fps=25, size=(1280, 720), gop=250)
    if not out["talk"].is_file():
        make_clip(out["talk"], seconds=12.0, fps=25, size=(640, 480),
                  speech_wav=synthesize(" ".join(SENTENCES)))
    return out


def sampling(clip: Path, repeat: int) -> tuple[float, float, int]:
    """(seconds to sample 8 frames, seconds to decode every frame, frames decoded)."""
    import av

    from mmcli.backends import frames

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        got = list(frames.sample(clip, fps=1.0, max_frames=8))
        best = min(best, time.perf_counter() - start)
        assert len(got) == 8
    start = time.perf_counter()
    with av.open(str(clip)) as c:
        c.streams.video[0].thread_type = "AUTO"
        count = sum(1 for _ in c.decode(video=0))
    return best, time.perf_counter() - start, count


def run_rss(argv: list[str]) -> tuple[float, int, str]:
    """Like ``run`` but reaping the child with wait4 to read its own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} exited {proc.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss // 1024, out.decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mmcli-bench-video"))
    args = ap.parse_args()
    found = clips(args.cache)
    print(f"video benchmark ({os.cpu_count()} CPUs, PyAV {__import__('av').__version__})")

    sample_s, all_s, count = sampling(found["long"], args.repeat)
    print(f"1. 10-min 720p clip: sample 8 frames {sample_s:.3f} s; decode all {count} frames "
          f"{all_s:.2f} s; ratio {sample_s / all_s:.2%} (target <= 10%)")

    from tests.tinyvlm import build

    model_dir = args.cache / "tiny-vlm"
    vlm, mmproj = model_dir / "tiny-vlm.gguf", model_dir / "tiny-vlm-mmproj.gguf"
    if not (vlm.is_file() and mmproj.is_file()):
        vlm, mmproj = build(model_dir)
    manifest = args.cache / "bench.toml"
    manifest.write_text(MANIFEST.format(dir=model_dir, model=vlm.name, mmproj=mmproj.name))
    mmcli = [sys.executable, "-m", "mmcli", "-q", "--models", str(manifest), "caption",
             "--model", "bench-vlm", "--frames", "together", "-f", "json"]
    rss = {}
    for key in ("short", "long"):
        rss[key] = min(run_rss([*mmcli, "--no-audio", str(found[key])])[1]
                       for _ in range(max(1, args.repeat - 1)))
    print(f"2. peak RSS of caption: 10-s clip {rss['short']} MB, 10-min clip {rss['long']} MB; "
          f"ratio {rss['long'] / rss['short']:.3f} (target <= 1.2)")

    from mmcli import api

    whisper = api.load_model("transcribe", "tiny.en-bundled").files["model"].parent
    chat = api.load_model("chat", "smollm2-135m").files["model"]
    bare = args.cache / "bare.py"
    bare.write_text(BARE)
    bare_runs = [run_rss([sys.executable, str(bare), str(found["talk"]), str(vlm), str(mmproj),
                          str(whisper), str(chat), "8"]) for _ in range(args.repeat)]
    runs = [run_rss([*mmcli, "--fps", "1", str(found["talk"])]) for _ in range(args.repeat)]
    t_bare, t_mm = min(r[0] for r in bare_runs), min(r[0] for r in runs)
    mm, bb = json.loads(runs[0][2]), json.loads(bare_runs[0][2])
    split = ", ".join(f"{k} {v['s'] + v['load_s']:.2f}" for k, v in mm["stages"].items())
    bare_split = ", ".join(f"{k} {v:.2f}" for k, v in bb["stages"].items())
    print(f"3. caption talk.mp4 (12 s, 480p, speech): mmcli {t_mm:.2f} s (stages: {split}; "
          f"merge {mm['prompt_tokens']}+{mm['completion_tokens']} tokens); bare engine calls "
          f"{t_bare:.2f} s (stages: {bare_split}; merge {bb['merge_tokens']['prompt_tokens']}+"
          f"{bb['merge_tokens']['completion_tokens']} tokens); ratio {t_mm / t_bare:.3f} "
          "(target <= 1.05)")


if __name__ == "__main__":
    main()
