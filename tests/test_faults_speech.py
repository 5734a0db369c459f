"""Fault injection on real speech batches: SIGTERM/SIGKILL mid-batch, rerun, identical outputs.

transcribe: 30 clips (newsreel windows + spoken lines) -> SRT sidecars; speak: 30 lines -> WAV
files (piper's noise is seeded, so a resumed batch gives the same bytes as an uninterrupted one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.faults import assert_same_as_reference, run_with_faults
from tests.speech_helpers import require_models, wav

N = 30


# Newsreel windows whose decoding falls back to temperature sampling (the path that needs the
# sampler reset to stay reproducible); the other inputs are short spoken lines (fast, clean).
SAMPLED = (7, 11)


def _clips(media: Path, folder: Path) -> None:
    """30 clips: 4 x 1.2 s newsreel windows + 26 lines spoken by the bundled voice."""
    import numpy as np

    from mmcli.backends.media import decode_audio
    from tests.speech_helpers import synthesize

    audio = decode_audio(media / "newsreel.mp3", 16000)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    folder.mkdir()
    for i in SAMPLED:
        (folder / f"news{i:02d}.wav").write_bytes(wav(pcm[i * 8000:i * 8000 + 19200].tobytes()))
    for i in range(N - len(SAMPLED)):
        (folder / f"line{i:02d}.wav").write_bytes(synthesize(f"Item {i} is on the list."))


def _check(argv: list[str], tmp_path: Path, env: dict[str, str], seed: int) -> None:
    ref = tmp_path / "ref"
    done = subprocess.run([*argv, str(ref)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    stats = run_with_faults([*argv, str(out)], out, N, env=env, cwd=REPO, kills=5, seed=seed,
                            item_s=0.15)
    assert stats["landed"] >= 5, stats
    assert_same_as_reference(out, ref, N)


def test_transcribe_batch_survives_kills(tmp_path: Path, media: Path,
                                         subprocess_env: dict[str, str]) -> None:
    require_models()
    _clips(media, tmp_path / "clips")
    argv = [sys.executable, "-m", "mmcli", "--offline", "--threads", "1", "transcribe",
            str(tmp_path / "clips"),
            "--format", "srt", "--beam-size", "1", "--output-dir"]
    _check(argv, tmp_path, subprocess_env, seed=31)


def test_speak_batch_survives_kills(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    require_models()
    script = tmp_path / "script.txt"
    script.write_text("".join(f"Line {i}.\n"
                              for i in range(N)))
    argv = [sys.executable, "-m", "mmcli", "--offline", "speak", "--input-file", str(script),
            "--lines", "--output-dir"]
    _check(argv, tmp_path, subprocess_env, seed=32)
