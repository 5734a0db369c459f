"""Benchmark: `mmcli caption` vs a bare llama-cpp-python script on the same model and images.

Both run as fresh processes (interpreter start, imports, model load, captions), on one image
and on a folder of 20; each case is repeated and the fastest run kept. Prints per-image times
and the ratio mmcli / bare (target <= 1.05). Both use greedy decoding with the same token cap.

    python bench/caption.py                 # the tiny generated VLM (tests/tinyvlm.py)
    python bench/caption.py --model M.gguf --mmproj P.gguf   # any real libmtmd model
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BARE = r'''
import base64, sys, time
from llama_cpp import Llama
from llama_cpp.llama_chat_format import MTMDChatHandler
model, mmproj, max_tokens, *images = sys.argv[1:]
PROMPT = "Describe this image in a few sentences."
llm = Llama(model, n_ctx=int(NCTX), chat_handler=MTMDChatHandler(mmproj, verbose=False),
            verbose=False)
for path in images:
    data = open(path, "rb").read()
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    out = llm.create_chat_completion(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}},
                                      {"type": "text", "text": PROMPT}]}],
        max_tokens=int(max_tokens), temperature=0.0)
    print(path + ": " + out["choices"][0]["message"]["content"].strip())
llm.close()
'''

# Two entries for the same files: `bench-vlm` with llama.cpp's default weight buffers (what the
# bare script uses), `bench-vlm-safe` with mmcli's default, which turns them off on CPUs with
# AMX because llama.cpp 0.3.36's AMX path segfaults there on real models (SmolLM2).
MANIFEST = """
[models.bench-vlm]
engine = "llama-mtmd"
tasks = ["caption"]
description = "benchmark model, llama.cpp default buffers (as the bare script)"
license = "-"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}", mmproj = "{mmproj}" }}
options = {{ n_ctx = {n_ctx}, extra_bufts = true }}

[models.bench-vlm-safe]
engine = "llama-mtmd"
tasks = ["caption"]
description = "benchmark model, mmcli's default buffers"
license = "-"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}", mmproj = "{mmproj}" }}
options = {{ n_ctx = {n_ctx} }}
"""


def images(folder: Path, n: int) -> list[Path]:
    """``n`` seeded 640x480 JPEG photos-like images."""
    from tests.vision_fixtures import make_image

    return [make_image(folder / f"img{i:02d}.jpg", i, size=(640, 480)) for i in range(n)]


def timed(argv: list[str], repeat: int) -> float:
    """Fastest wall time of ``repeat`` runs (stdout discarded, failures raise)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--mmproj", type=Path)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.model is None:
            from tests.tinyvlm import build

            args.model, args.mmproj = build(tmp / "model")
            args.n_ctx = 1024
        manifest = tmp / "bench.toml"
        manifest.write_text(MANIFEST.format(dir=args.model.parent, model=args.model.name,
                                            mmproj=args.mmproj.name, n_ctx=args.n_ctx))
        bare = tmp / "bare.py"
        bare.write_text(BARE.replace("NCTX", str(args.n_ctx)))
        pics = images(tmp / "photos", 20)
        env_note = f"{os.cpu_count()} CPUs, model {args.model.name}, max_tokens {args.max_tokens}"
        print(f"caption benchmark ({env_note}); fastest of {args.repeat} runs each")
        print(f"{'case':<12}{'bare s/img':>12}{'mmcli s/img':>13}{'ratio':>8}"
              f"{'mmcli-safe s/img':>18}{'ratio':>8}")
        for label, batch in (("1 image", pics[:1]), ("20 images", pics)):
            files = [str(p) for p in batch]
            t_bare = timed([sys.executable, str(bare), str(args.model), str(args.mmproj),
                            str(args.max_tokens), *files], args.repeat)
            t_mm, t_safe = (timed([sys.executable, "-m", "mmcli", "--models", str(manifest),
                                   "caption", "--model", name, "--max-tokens",
                                   str(args.max_tokens), "--max-side", "0", *files], args.repeat)
                            for name in ("bench-vlm", "bench-vlm-safe"))
            n = len(batch)
            print(f"{label:<12}{t_bare / n:>12.4f}{t_mm / n:>13.4f}{t_mm / t_bare:>8.3f}"
                  f"{t_safe / n:>18.4f}{t_safe / t_bare:>8.3f}")


if __name__ == "__main__":
    main()
