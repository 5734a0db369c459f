"""Fault-injection harness for batch commands: kill at random moments, rerun, compare.

Used by tests/test_faults*.py for every task command. A run is killed (alternating SIGTERM and
SIGKILL) once the journal has reached a seeded random number of finished inputs, plus a random
fraction of one input's time, then the command is rerun until it completes. The outputs must
equal an uninterrupted reference run byte for byte, exist exactly once, leave no temp files,
and the journal must list every input exactly once as done.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

JOURNAL = ".mmcli-journal.jsonl"


def outputs(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every output file (journal and lock excluded)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".mmcli")}


def temp_files(folder: Path) -> list[Path]:
    """Leftover temp files of atomic writes (there must be none)."""
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".part"))]


def journal_lines(folder: Path) -> list[dict]:
    path = folder / JOURNAL
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            pass  # a torn line from SIGKILL is allowed; the reader ignores it too
    return out


def _wait_done(folder: Path, n: int, proc: subprocess.Popen, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if sum(1 for x in journal_lines(folder) if x.get("status") == "done") >= n:
            return
        time.sleep(0.02)


def run_with_faults(argv: list[str], out: Path, n_inputs: int, *, env: dict[str, str],
                    cwd: Path, kills: int = 5, seed: int = 1234, item_s: float = 0.2,
                    timeout: float = 240) -> dict[str, int]:
    """Run ``argv`` (which writes into ``out``) with ``kills`` interruptions, then to the end.

    Returns counts: how many kills landed mid-batch and how many reruns were needed.
    """
    rng = random.Random(seed)
    landed = 0
    for i in range(kills):
        done_before = sum(1 for x in journal_lines(out) if x.get("status") == "done")
        if done_before >= n_inputs:
            break
        # Spread the targets so every remaining kill still has inputs left to land in; a target
        # near the end would let the batch finish first and the kill would miss.
        room = max(1, (n_inputs - 1 - done_before) // (kills - i))
        target = done_before + rng.randint(1, room)
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        _wait_done(out, target, proc, timeout)
        time.sleep(rng.uniform(0, item_s / 2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if i % 2 else signal.SIGTERM)
            landed += 1
        _, err = proc.communicate(timeout=timeout)
        assert "Traceback" not in err, err
        if i % 2 == 0 and proc.returncode not in (0, 143):
            raise AssertionError(f"SIGTERM run exited {proc.returncode}: {err}")
    reruns = 0
    while True:
        reruns += 1
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode == 0:
            break
        assert reruns < 4, proc.stderr
    return {"landed": landed, "reruns": reruns}


def assert_same_as_reference(out: Path, ref: Path, n_inputs: int) -> None:
    """Byte-identical outputs, no temp files, every input done exactly once in the journal."""
    got, want = outputs(out), outputs(ref)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], f"{name} differs from the uninterrupted run"
    assert temp_files(out) == []
    done = Counter(x["input"] for x in journal_lines(out) if x.get("status") == "done")
    assert len(done) == n_inputs and set(done.values()) == {1}, done
