"""A really full disk (a tiny tmpfs) mid-batch: clean error, consistent journal, rerun completes.

Needs permission to mount a tmpfs (root, as on CI); skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

LINES = [f"Sentence number {n} of the disk test." for n in range(1, 7)]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not permitted'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def speak(src: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmcli", "speak", "-i", str(src), "--lines",
                           "--output-dir", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_full_disk_mid_batch_then_rerun_after_freeing_space(tiny_disk, tmp_path,
                                                             subprocess_env):
    src = tmp_path / "script.txt"
    src.write_text("\n".join(LINES) + "\n")
    filler = tiny_disk / "filler.bin"
    # About 150 KB stay free: one ~95 KB WAV fits, the rest of the batch does not.
    filler.write_bytes(b"\0" * (1024 * 1024 - 150 * 1024))
    out = tiny_disk / "out"
    first = speak(src, out, subprocess_env)
    assert first.returncode == 1, first.stderr
    assert "No space left on device" in first.stderr and "Traceback" not in first.stderr
    assert len(first.stderr.strip().splitlines()) <= 4, first.stderr  # a line + hint + summary
    wavs = sorted(p.name for p in out.glob("*.wav"))
    assert 1 <= len(wavs) < len(LINES)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    journal = out / ".mmcli-journal.jsonl"
    done = [json.loads(x) for x in journal.read_text().splitlines() if x.strip()]
    for line in done:  # every "done" line names files that exist in full
        assert line["status"] == "done"
        for path in line["outputs"]:
            assert Path(path).stat().st_size > 44
    os.unlink(filler)  # the fix: free space
    second = speak(src, out, subprocess_env)
    assert second.returncode == 0, second.stderr
    assert [p.name[:5] for p in sorted(out.glob("*.wav"))] == [f"{n:04d}-" for n in range(1, 7)]
    lines = [json.loads(x) for x in journal.read_text().splitlines() if x.strip()]
    assert sorted(x["input"] for x in lines if x["status"] == "done") == \
        sorted({x["input"] for x in lines})  # each input done once, none lost
    assert len(lines) == len(LINES)


def test_read_only_output_dir_then_fixed(tiny_disk, tmp_path, subprocess_env):
    """Root ignores directory modes, so make the folder's file system read-only instead."""
    src = tmp_path / "script.txt"
    src.write_text(LINES[0] + "\n")
    out = tiny_disk / "out"
    assert speak(src, out, subprocess_env).returncode == 0  # one line done
    src.write_text("\n".join(LINES[:3]) + "\n")  # the job grows while the disk turns read-only
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    try:
        stuck = speak(src, out, subprocess_env)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    assert stuck.returncode == 1 and "Read-only file system" in stuck.stderr
    assert "Traceback" not in stuck.stderr
    assert [p.name[:5] for p in sorted(out.glob("*.wav"))] == ["0001-"]
    fixed = speak(src, out, subprocess_env)
    assert fixed.returncode == 0, fixed.stderr
    assert [p.name[:5] for p in sorted(out.glob("*.wav"))] == ["0001-", "0002-", "0003-"]
