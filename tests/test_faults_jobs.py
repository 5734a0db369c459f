"""Fault injection with ``--jobs 2`` (tests/faults.py): SIGTERM/SIGKILL of the driver mid-batch,
reruns until done; the outputs equal a one-process run (``--jobs 1``, the same threads per engine)
byte for byte, exist once,
and the journal lists every input once - on the fake engine, the bundled piper voice (speak)
and the tiny VLM (caption)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.vision_fixtures are used as arguments)

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fakes.fixtures import write_manifest
from tests.faults import assert_same_as_reference, run_with_faults
from tests.speech_helpers import require_models
from tests.vision_fixtures import make_image, tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401


def _check(argv: list[str], n: int, tmp_path: Path, env: dict[str, str], *, seed: int,
           item_s: float, kills: int = 5) -> None:
    ref = tmp_path / "ref"
    # Same threads per engine instance: onnxruntime's (piper's) float sums depend on them.
    done = subprocess.run([*argv, str(ref), "--jobs", "1", "--threads", "1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    stats = run_with_faults([*argv, str(out), "--jobs", "2", "--threads", "2"], out, n, env=env,
                            cwd=REPO,
                            kills=kills, seed=seed, item_s=item_s)
    assert stats["landed"] >= kills - 1, stats
    assert_same_as_reference(out, ref, n)


def test_fake_jobs_2_survives_kills(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    n = 30
    for i in range(n):
        (src / f"{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * (i + 3))
    argv = [sys.executable, "-m", "tests.fakes.run_fake", "--models",
            str(write_manifest(tmp_path)), "fake-caption", str(src), "--output-dir"]
    _check(argv, n, tmp_path, dict(subprocess_env, FAKE_SLEEP="0.05"), seed=71, item_s=0.05,
           kills=6)


@pytest.mark.slow
def test_speak_jobs_2_survives_kills(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    require_models()
    n = 24
    script = tmp_path / "script.txt"
    script.write_text("".join(f"Line {i} of the script.\n" for i in range(n)))
    argv = [sys.executable, "-m", "mmcli", "--offline", "speak", "--input-file", str(script),
            "--lines", "--output-dir"]
    _check(argv, n, tmp_path, subprocess_env, seed=72, item_s=0.15)


@pytest.mark.slow
def test_caption_jobs_2_survives_kills(tmp_path: Path, subprocess_env: dict[str, str],
                                       tiny_vlm_manifest: Path) -> None:
    src = tmp_path / "in"
    n = 24
    for i in range(n):
        make_image(src / f"{i:02d}.{'png' if i % 2 else 'jpg'}", 200 + i, size=(160, 120))
    argv = [sys.executable, "-m", "mmcli", "--models", str(tiny_vlm_manifest), "caption",
            str(src), "--max-tokens", "48", "--output-dir"]
    _check(argv, n, tmp_path, subprocess_env, seed=73, item_s=0.03)
