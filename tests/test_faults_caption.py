"""Fault injection on `mmcli caption --output-dir` with the tiny VLM: kills never lose or
duplicate a caption, and reruns give byte-identical sidecars (see tests/faults.py)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.vision_fixtures are used as arguments)

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.faults import assert_same_as_reference, outputs, run_with_faults
from tests.vision_fixtures import make_image, tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401


def test_caption_batch_survives_kills(tmp_path, subprocess_env, tiny_vlm_manifest):
    src = tmp_path / "in"
    n = 32
    for i in range(n):
        make_image(src / f"{i:02d}.{'png' if i % 2 else 'jpg'}", 100 + i, size=(160, 120))

    def argv(out):
        # Text sidecars (json ones carry timings, which differ run to run); --max-tokens 48
        # makes one image take ~20-40 ms here, so kills land mid-batch.
        return [sys.executable, "-m", "mmcli", "--models", str(tiny_vlm_manifest), "caption",
                str(src), "--output-dir", str(out), "--max-tokens", "48"]

    ref = tmp_path / "ref"
    subprocess.run(argv(ref), cwd=REPO, env=subprocess_env, check=True, capture_output=True)
    out = tmp_path / "out"
    stats = run_with_faults(argv(out), out, n, env=subprocess_env, cwd=REPO, kills=7, seed=11,
                            item_s=0.03)
    assert stats["landed"] >= 5
    extra = sorted(set(outputs(out)) ^ set(outputs(ref)))
    assert not extra, f"outputs differ from the uninterrupted run's: {extra}"
    assert_same_as_reference(out, ref, n)
