"""Job journal and lock for batch runs that must survive cron, kills and reboots.

The journal is JSON Lines, one line per finished input: its key (path, size, mtime — or a
content hash — plus the model and a hash of the output-changing options), status, output files
and error. Lines are appended, flushed and fsynced after the outputs were renamed into place,
so a crash leaves at worst an input that is redone (atomically overwriting the same output)
and never one that is marked done without its output. A torn last line is ignored on read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcli.errors import LockedError, OutputError, UsageError
from mmcli.inputs import InputItem

# Open batch-job files without following a symbolic link (ELOOP instead); 0 where unsupported.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

JOURNAL_NAME = ".mmcli-journal.jsonl"
LOCK_NAME = ".mmcli.lock"


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h30m``, ``2h`` -> seconds (usage error otherwise)."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or parts is None or not any(parts.groups()):
        raise UsageError(f"--max-duration {text!r} is not a duration", hint="e.g. 90s, 30m, 1h30m")
    h, m, s = (int(g) if g else 0 for g in parts.groups())
    return float(h * 3600 + m * 60 + s)


def input_key(item: InputItem, model_id: str, options_hash: str, hash_inputs: bool) -> str:
    """Identity of one unit of work: the input's identity + model + output-changing options."""
    if item.parts:  # a group (vqa --together): the identities of its parts, in order
        ident = "group:" + "|".join(input_key(p, "", "", hash_inputs) for p in item.parts)
    elif item.path is None:
        ident = "bytes:" + hashlib.sha256(item.read_bytes()).hexdigest()
    elif hash_inputs:
        ident = "sha256:" + hashlib.sha256(item.path.read_bytes()).hexdigest()
    else:
        try:
            st = item.path.stat()
            ident = f"{item.path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            ident = f"{item.path}|missing"
    return hashlib.sha256(f"{ident}|{model_id}|{options_hash}".encode()).hexdigest()[:32]


def options_hash(options: Any, fmt: str) -> str:
    """Stable hash of the task options (a dataclass or dict) plus the output format.

    Dataclass fields declared with ``not_in_key()`` (a cache folder, a thread count) are left
    out: they cannot change an output, so changing them must not redo finished inputs.
    """
    if hasattr(options, "__dataclass_fields__"):
        from dataclasses import fields

        options = {f.name: getattr(options, f.name) for f in fields(options)
                   if f.metadata.get("journal_key", True)}
    blob = json.dumps({"options": options, "format": fmt}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def not_in_key(default: Any = None) -> Any:
    """A task ``Options`` field that does not change outputs, so it is not in the journal key."""
    return field(default=default, metadata={"journal_key": False})


@dataclass
class Journal:
    """Append-only record of finished inputs; ``state`` maps key -> last status line."""

    path: Path
    state: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Read an existing journal (ignoring a torn or corrupt line) or start a new one.

        Raises:
            UsageError: the journal is a symbolic link (never followed: it could point at any
                file the user can write).
        """
        journal = cls(path)
        refuse_link(path, "journal")
        if path.is_file():
            with os.fdopen(os.open(path, os.O_RDONLY | NOFOLLOW), "rb") as fh:
                for raw in fh:
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue  # a torn last line from a crash: that input is simply redone
                    if isinstance(line, dict) and "key" in line:
                        journal.state[line["key"]] = line
        return journal

    def status(self, key: str) -> str | None:
        """``done``, ``failed`` or None (never seen)."""
        line = self.state.get(key)
        if line is None:
            return None
        if line.get("status") == "done" and not all(Path(p).exists()
                                                      for p in line.get("outputs", [])):
            return None  # someone deleted the output: redo it
        return str(line.get("status"))

    def append(self, key: str, item: InputItem, status: str, outputs: list[Path],
               error: str | None = None) -> None:
        """Add one line, flushed and fsynced before returning."""
        line = {"key": key, "input": item.display, "status": status,
                "outputs": [str(p) for p in outputs], "error": error,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | NOFOLLOW, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                refuse_link(self.path, "journal")  # became a link mid-run
            # A torn line is ignored on read, so the input is simply redone by the next run.
            raise _unwritable(self.path, exc) from None
        self.state[key] = line


class JobLock:
    """An exclusive, non-blocking lock (filelock) with the holder's PID beside it."""

    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        self.path = path
        self.pid_path = path.with_name(path.name + ".pid")
        self._lock = FileLock(str(path), timeout=0)

    def __enter__(self) -> JobLock:
        from filelock import Timeout

        refuse_link(self.path, "lock")
        refuse_link(self.pid_path, "lock's PID")
        try:  # can the lock file exist at all? (filelock reports any failure as "held")
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644))
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
                raise _unwritable(self.path, exc) from None  # the disk, not the path: exit 1
            raise UsageError(f"cannot create the lock file {self.path}: {exc.strerror or exc}",
                             hint="pass --lock a path in a folder you can write") from None
        try:
            self._lock.acquire()
        except Timeout:
            try:
                holder = self.pid_path.read_text().strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise LockedError(f"another mmcli run (PID {holder}) holds the lock {self.path}",
                              hint="wait for it to finish; overlapping cron runs exit 75") from None
        except OSError as exc:  # read-only or full file system, no permission
            raise _unwritable(self.path, exc) from None
        try:
            fd = os.open(self.pid_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
        except OSError as exc:
            self._lock.release()
            raise _unwritable(self.pid_path, exc) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.pid_path.unlink(missing_ok=True)
        self._lock.release()


def refuse_link(path: Path, what: str) -> None:
    """Batch-job files are never opened through a symbolic link (exit 2, naming it)."""
    if path.is_symlink():
        raise UsageError(f"the {what} file {path} is a symbolic link; mmcli does not write "
                         "through links", hint="remove the link, or pass another path")


def _unwritable(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}",
                       hint="free space or fix permissions, then re-run: finished inputs are "
                            "kept and nothing half-written was left")
