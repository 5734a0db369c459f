"""SIGTERM outside the per-input loop: while the model loads, and while it closes at the end."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.fakes.fixtures import write_manifest


def start(tmp_path: Path, env: dict[str, str], stage: str) -> tuple[subprocess.Popen, Path]:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * 8)
    marker = tmp_path / f"{stage}.marker"
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "tests.fakes.run_fake", "--models", str(write_manifest(tmp_path)),
            "fake-caption", str(src), "--output-dir", str(out)]
    proc = subprocess.Popen(argv, cwd=REPO, env=dict(env, FAKE_PAUSE=f"{stage}:{marker}"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.time() + 60
    while not marker.exists() and proc.poll() is None and time.time() < end:
        time.sleep(0.02)
    assert marker.exists(), proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    return proc, out


def test_sigterm_while_the_model_loads_exits_143_cleanly(tmp_path, subprocess_env):
    proc, out = start(tmp_path, subprocess_env, "load")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert not list(out.glob("*.txt"))


def test_sigterm_while_the_model_closes_keeps_the_exit_code(tmp_path, subprocess_env):
    proc, out = start(tmp_path, subprocess_env, "close")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # everything was written: not a signal death (-15)
    assert len(list(out.glob("*.txt"))) == 3 and "Traceback" not in err
