"""`mmcli … | head`: the reader leaving ends the run quietly (no bogus per-input errors)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO
from tests.fakes.fixtures import write_manifest


def test_closed_stdout_stops_the_batch_without_errors(tmp_path, subprocess_env):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        (src / f"{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * 4000)
    manifest = write_manifest(tmp_path)
    cmd = (f"{sys.executable} -m tests.fakes.run_fake --models {manifest} fake-caption {src} "
           "-f jsonl | head -c 10 >/dev/null; echo status=${PIPESTATUS[0]} >&2")
    env = dict(subprocess_env, FAKE_SLEEP="0.02")
    proc = subprocess.run(["bash", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert "status=141" in proc.stderr
    assert "error" not in proc.stderr.lower() and "Traceback" not in proc.stderr
