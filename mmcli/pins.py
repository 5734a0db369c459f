"""sha256 pins: hashing model files, and the record of files already verified.

Hashing a 3 GB model on every load would cost seconds, so each verified file is remembered in
``<mmcli cache>/verified.json`` as ``path -> (size, mtime_ns, sha256)``. A file whose size and
mtime are unchanged since then is trusted without re-reading it; any change (a re-download, a
truncation, an edit) makes the next check hash it again. The record is rewritten atomically
and merged with what other processes wrote meanwhile; losing an entry only costs a re-hash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mmcli.atomic import atomic_write
from mmcli.settings import cache_dir

RECORD_NAME = "verified.json"
VERSION = 1

Stamp = tuple[int, int, str]  # (size, mtime_ns, sha256)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    import hashlib  # only when a file is really hashed: `models list` must start fast

    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_path() -> Path:
    """Where the record lives (mmcli's cache, beside the ``url`` blobs)."""
    return cache_dir() / RECORD_NAME


def _key(path: Path) -> str:
    # Hub snapshots are symlinks into blobs/: the blob is what is hashed and stat'ed.
    return str(path.resolve())


def _load() -> dict[str, Stamp]:
    try:
        data = json.loads(record_path().read_text("utf-8"))
        files = data["files"] if data.get("version") == VERSION else {}
        return {k: (int(v[0]), int(v[1]), str(v[2])) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return {}  # no record yet, or a damaged one: everything is simply hashed again


def _save(new: dict[str, Stamp]) -> None:
    """Merge ``new`` into the record on disk (another process may have added entries)."""
    merged = {k: v for k, v in _load().items() if os.path.exists(k)}  # drop deleted files
    merged.update(new)
    body = {"version": VERSION, "files": {k: list(v) for k, v in sorted(merged.items())}}
    try:
        atomic_write(record_path(), json.dumps(body, indent=0))
    except OSError:
        pass  # a read-only cache: verification still happened, it is just not remembered


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def check(files: dict[str, Path], expected: dict[str, str], *,
          rehash: bool = False) -> dict[str, str]:
    """Compare files with their expected sha256, hashing only what changed since last time.

    Args:
        files: role -> local file (every role of ``expected`` must be present).
        expected: role -> expected hex sha256.
        rehash: hash every file even when the record says it is unchanged (``models verify``).

    Returns:
        Role -> ``"ok"`` or ``"mismatch"``, for each role of ``expected``.
    """
    record = _load()
    new: dict[str, Stamp] = {}
    out: dict[str, str] = {}
    for role, want in expected.items():
        path = files[role]
        key = _key(path)
        before = _stat(path)
        known = record.get(key)
        if rehash or known is None or known[:2] != before:
            digest = sha256_file(path)
            if _stat(path) == before:  # not written to while it was read
                new[key] = (*before, digest)
        else:
            digest = known[2]
        out[role] = "ok" if digest == want.lower() else "mismatch"
    if new:
        _save(new)
    return out


def remember(path: Path, digest: str) -> None:
    """Record a file whose sha256 is already known (hashed while it was downloaded)."""
    _save({_key(path): (*_stat(path), digest.lower())})


def prune() -> None:
    """Forget files that no longer exist (after ``models rm``); no record left when empty."""
    record = _load()
    kept = {k: v for k, v in record.items() if os.path.exists(k)}
    if kept == record:
        return
    if kept:
        _save({})
    else:
        record_path().unlink(missing_ok=True)


def known_state(path: Path, expected: str | None) -> str:
    """What the record says of a file, without hashing it.

    Returns:
        ``"ok"`` (verified and unchanged since), ``"mismatch"`` (hashed, unchanged since, and
        different from ``expected``) or ``"not verified"`` (never hashed, changed since, or
        nothing to compare with).
    """
    known = _load().get(_key(path))
    if expected is None or known is None or path.is_dir() or known[:2] != _stat(path):
        return "not verified"
    return "ok" if known[2] == expected.lower() else "mismatch"
