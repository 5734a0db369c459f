"""Atomic file writes: a file appears under its final name only when complete.

Written to a temp file beside the target (named with the writer's PID), fsynced, then renamed;
a kill never leaves a half-written output, and ``clean_stale_temps`` removes the temps of
writers that died.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only when the block finishes: written to a temp
    file beside it, fsynced, then renamed; on any error (or a kill) the temp goes away and
    ``path`` is untouched. For outputs streamed in pieces (a WAV sentence by sentence)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's PID is in the name so a cleaner never takes a live process's temp file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:
            # mkstemp creates 0600; outputs are ordinary files, so follow the umask like open().
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temp file + rename; nothing partial is ever visible."""
    with atomic_file(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# atomic_write's temp names: ".<target name>.<writer pid>.<mkstemp's 8 random chars>.tmp"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp$")


def clean_stale_temps(folder: Path) -> int:
    """Delete temp files that a killed run left mid-``atomic_write`` under ``folder``.

    Only temps whose writer process is gone: sharded runs (separate locks, one output folder)
    may be writing right now. Returns the count.
    """
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.rglob(".*.tmp"):
        match = _TEMP_NAME.match(path.name)
        if match is None or _alive(int(match.group(1))) or not path.is_file():
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
