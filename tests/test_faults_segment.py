"""Fault injection for ``mmcli segment``: SIGTERM/SIGKILL mid-batch, rerun, byte-identical PNGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from tests.conftest import REPO
from tests.faults import assert_same_as_reference, run_with_faults
from tests.samgen import write_pair
from tests.segment_fixtures import MANIFEST


def _pictures(folder: Path, n: int) -> None:
    """``n`` different 640x480 scenes (seeded positions), in two subfolders."""
    import random

    rng = random.Random(5)
    for i in range(n):
        im = Image.new("RGB", (640, 480), (30, 90, 200))
        draw = ImageDraw.Draw(im)
        x, y, r = 320 + rng.randint(-40, 40), 240 + rng.randint(-40, 40), rng.randint(50, 90)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(240, 200, 40))
        draw.rectangle((rng.randint(0, 200), 20, 260, rng.randint(80, 200)), fill=(200, 30, 30))
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        im.save(sub / f"{i:02d}.png")


def test_segment_batch_survives_kills(tmp_path, subprocess_env):
    models = tmp_path / "models"
    write_pair(models, "nchw")
    manifest = tmp_path / "sam.toml"
    manifest.write_text(MANIFEST.format(dir=models))
    src = tmp_path / "in"
    n = 30
    _pictures(src, n)

    def argv(out: Path) -> list[str]:
        return [sys.executable, "-m", "mmcli", "--models", str(manifest), "segment", str(src),
                "--point", "320,240", "--multimask", "--format", "png", "--overlay",
                "--output-dir", str(out)]

    ref = tmp_path / "ref"
    subprocess.run(argv(ref), cwd=REPO, env=subprocess_env, check=True, capture_output=True)
    assert len(list(ref.rglob("*.mask-2.png"))) == n
    out = tmp_path / "out"
    stats = run_with_faults(argv(out), out, n, env=subprocess_env, cwd=REPO, kills=6, seed=11,
                            item_s=0.1)
    assert stats["landed"] >= 5, stats
    assert_same_as_reference(out, ref, n)
