"""Region benchmark: 10 regions of one image vs 1 encoder run + 10 x (decoder + VLM call).

Everything runs in one process on warm engines (model loads excluded), side by side:
- a 1-region `caption --point` run gives the stage costs from its record's timings: SAM encoder
  (``segment_encode_s``), mask decoding (``segment_mask_s``), crop (``crop_s``) and the VLM call
  (``encode_s`` + ``prompt_s`` + ``generate_s``);
- a 10-region run (10 points, one image) is timed whole, and the SAM encoder's run count is read.
Target: 10 regions <= (encoder + 10 x (decoder + crop + VLM)) x 1.05, the encoder running once.

It uses the GENERATED tiny SAM pair and tiny VLM (tests/samgen.py, tests/tinyvlm.py): the numbers
describe mmcli's own overhead, not real SAM or VLM speed (no real weights here).

Usage: python bench/regions.py [--image PATH] [--runs 5]
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

VLM_STAGES = ("decode_s", "encode_s", "prompt_s", "generate_s")


def manifest(folder: Path) -> Path:
    """The tiny SAM pair and the tiny VLM in one manifest (segment's default: tiny-sam)."""
    from tests.samgen import write_pair
    from tests.segment_fixtures import MANIFEST
    from tests.vision_fixtures import write_manifest

    write_pair(folder, "nchw")
    vlm = write_manifest(folder / "vlm.toml", folder)
    both = folder / "both.toml"
    both.write_text(MANIFEST.format(dir=folder).split("[defaults]")[0] + vlm.read_text()
                    + 'segment = ["tiny-sam"]\n')
    return both


def caption(image: str, points: list[tuple[float, float]],
            settings: Settings) -> list:  # type: ignore[type-arg]
    records = list(api.run("caption", [image], settings=settings, points=points, max_tokens=8))
    assert all(r.error is None for r in records), [r.error for r in records]
    return records


def main() -> None:
    from mmcli.backends.sam import SamEngine

    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default=str(REPO / "docs/img/segment-sample.png"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.from_env(models_file=manifest(Path(tempfile.mkdtemp())), quiet=True)
    ten = [(40.0 + 50 * i, 60.0 + 25 * i) for i in range(10)]
    caption(args.image, ten[:1], settings)  # load both models, warm both engines
    stages: dict[str, list[float]] = {}
    whole: list[float] = []
    runs: list[int] = []
    for _ in range(args.runs):  # interleaved: machine noise hits both sides alike
        timings = caption(args.image, ten[:1], settings)[0].timings.to_dict()
        for key in ("segment_encode_s", "segment_mask_s", "crop_s", *VLM_STAGES):
            stages.setdefault(key, []).append(timings.get(key, 0.0))
        before = SamEngine.encoder_runs
        start = time.perf_counter()
        caption(args.image, ten, settings)
        whole.append(time.perf_counter() - start)
        runs.append(SamEngine.encoder_runs - before)
    med = {k: statistics.median(v) for k, v in stages.items()}
    vlm = sum(med[k] for k in VLM_STAGES)
    budget = (med["segment_encode_s"] + 10 * (med["segment_mask_s"] + med["crop_s"] + vlm)) * 1.05
    took = statistics.median(whole)
    print(f"encoder {med['segment_encode_s'] * 1000:.1f} ms, "
          f"decoder {med['segment_mask_s'] * 1000:.1f} ms, crop {med['crop_s'] * 1000:.1f} ms, "
          f"VLM call {vlm * 1000:.1f} ms (medians of {args.runs})")
    print(f"10 regions: {took * 1000:.0f} ms vs budget {budget * 1000:.0f} ms -> "
          f"{took / budget:.2f} of it; encoder runs per 10-region call: {sorted(set(runs))}")
    engines.close_all()


if __name__ == "__main__":
    main()
