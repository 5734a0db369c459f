"""The fault harness itself, on the fake engine (fast): kills never lose or duplicate output."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.fakes.fixtures import write_manifest
from tests.faults import assert_same_as_reference, run_with_faults


def test_fake_batch_survives_kills(tmp_path, subprocess_env):
    src = tmp_path / "in"
    src.mkdir()
    n = 30
    for i in range(n):
        (src / f"{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * (i + 3))
    manifest = write_manifest(tmp_path)
    env = dict(subprocess_env, FAKE_SLEEP="0.05")

    def argv(out):
        return [sys.executable, "-m", "tests.fakes.run_fake", "--models", str(manifest),
                "fake-caption", str(src), "--output-dir", str(out)]

    ref = tmp_path / "ref"
    subprocess.run(argv(ref), cwd=REPO, env=env, check=True, capture_output=True)
    out = tmp_path / "out"
    stats = run_with_faults(argv(out), out, n, env=env, cwd=REPO, kills=6, seed=7, item_s=0.05)
    assert stats["landed"] >= 5
    assert_same_as_reference(out, ref, n)
