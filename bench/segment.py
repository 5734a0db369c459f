"""Segment benchmark: encoder vs decoder time, 1 vs 10 prompts on one image, --auto masks/s.

Everything runs in one process, side by side, on a warm engine (model load excluded):
- raw onnxruntime time of the encoder (with mmcli's resize/normalize) and of one decoder call;
- mmcli's own per-stage timings (``encode_s``, ``decode_s`` incl. post-processing + RLE) for a
  1-prompt run, and the whole run time with 10 prompts (10 boxes) on the same image.
  Target: 10 prompts <= (encode + 10 x decode of the 1-prompt run) x 1.05, i.e. the encoder runs
  once and each extra prompt costs one decoder call, nothing more;
- ``--auto`` on the same image: masks kept per second and decoder candidates per second.

By default it uses the GENERATED tiny SAM pair (tests/samgen.py): its encoder and decoder do
almost no work, so the numbers describe mmcli's own overhead (pre/post-processing), not real
SAM speed. Pass ``--model mobilesam`` (or another manifest name) when real weights are local.

Usage: python bench/segment.py [--model NAME] [--image PATH] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmcli import api, engines  # noqa: E402
from mmcli.settings import Settings  # noqa: E402


def tiny_model(folder: Path) -> str:
    """Write the generated pair and a manifest; return the manifest path."""
    from tests.samgen import write_pair
    from tests.segment_fixtures import MANIFEST

    write_pair(folder, "nchw")
    manifest = folder / "sam.toml"
    manifest.write_text(MANIFEST.format(dir=folder))
    return str(manifest)


def median_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="manifest name (default: generated pair)")
    parser.add_argument("--image", default=str(REPO / "docs/img/segment-sample.png"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mmcli-bench-seg-"))
    models_file = None if args.model else tiny_model(tmp)
    name = args.model or "tiny-sam"
    settings = Settings.from_env(models_file=Path(models_file) if models_file else None)
    resolved = api.load_model("segment", name, settings)
    image = args.image
    from PIL import Image

    w, h = Image.open(image).size
    boxes = [(w * i / 12, h * 0.2, w * (i + 2) / 12, h * 0.8) for i in range(10)]

    def run(**opts: object) -> object:
        return list(api.run("segment", [image], resolved, settings=settings, **opts))[0]

    run(boxes=boxes[:1])  # load the engine once (not measured)
    engine, _ = engines.load(resolved, settings)
    from mmcli.inputs import InputItem
    from mmcli.tasks.segment import load_image

    pixels, _ = load_image(InputItem(image, Path(image), Path(image)))
    emb = engine.embed(pixels)
    from mmcli.tasks.segment_core import Prompt, decoder_inputs

    coords, labels = decoder_inputs([Prompt([], [], boxes[0])], emb)
    raw_enc = median_of(args.runs, lambda: engine.embed(pixels))
    raw_dec = median_of(args.runs * 4, lambda: engine.decode(emb, coords, labels))
    grid_c, grid_l = decoder_inputs([Prompt([(w / 2, h / 2)], [1])] * 64, emb)
    raw_dec64 = median_of(args.runs, lambda: engine.decode(emb, grid_c, grid_l))
    one = [run(boxes=boxes[:1]) for _ in range(args.runs)]
    enc = statistics.median(r.timings.extra["encode_s"] for r in one)  # type: ignore[attr-defined]
    dec = statistics.median(r.timings.extra["decode_s"] for r in one)  # type: ignore[attr-defined]
    t1 = median_of(args.runs, lambda: run(boxes=boxes[:1]))
    t10 = median_of(args.runs, lambda: run(boxes=boxes))
    budget = (enc + 10 * dec) * 1.05
    auto_runs = [run(auto=True) for _ in range(max(1, args.runs // 2))]
    auto_s = statistics.median(r.timings.run_s for r in auto_runs)  # type: ignore[attr-defined]
    n_auto = len(auto_runs[0].masks)  # type: ignore[attr-defined]
    candidates = 16 * 16 * int(engine.decode(emb, coords, labels)[0].shape[1])
    print(f"model {name} on {Path(image).name} ({w}x{h}), provider {engine.device}")
    if not args.model:
        print("NOTE: generated tiny SAM pair - these numbers are mmcli's overhead, "
              "not real SAM speed")
    print(f"raw encoder (onnxruntime + resize/normalize): {raw_enc * 1000:8.1f} ms")
    print(f"raw decoder, 1 prompt:                        {raw_dec * 1000:8.1f} ms "
          f"(encoder/decoder = {raw_enc / raw_dec:.1f}x)")
    print(f"mmcli 1 prompt:  encode_s {enc * 1000:.1f} ms + decode_s {dec * 1000:.1f} ms, "
          f"whole run {t1 * 1000:.1f} ms")
    print(f"mmcli 10 prompts: whole run {t10 * 1000:.1f} ms vs target "
          f"(encode + 10 x decode) x 1.05 = {budget * 1000:.1f} ms -> "
          f"{t10 / budget:.2f} of budget ({'OK' if t10 <= budget else 'OVER'}); "
          f"10 vs 1 prompt = {t10 / t1:.2f}x")
    calls = 4 if engine.batches else 256
    dec_share = (4 * raw_dec64 if engine.batches else 256 * raw_dec) / auto_s
    print(f"--auto (16x16 grid): {n_auto} masks in {auto_s * 1000:.0f} ms = "
          f"{n_auto / auto_s:.1f} masks/s, {candidates / auto_s:.0f} candidates/s; "
          f"{calls} decoder calls ({raw_dec64 * 1000:.0f} ms per 64-point batch) = "
          f"{dec_share:.0%} of the time, the rest is upsampling/filtering/RLE")


if __name__ == "__main__":
    main()
