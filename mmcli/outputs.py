"""Where records go: stdout (text/json/jsonl), ``-o FILE``, or sidecars under ``--output-dir``.

Every file write is atomic (temp file in the same folder, fsync, rename), so a kill never
leaves a half-written output behind.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from mmcli.errors import OutputError, UsageError
from mmcli.inputs import InputItem
from mmcli.records import Record

BASE_FORMATS = ("text", "json", "jsonl")

Renderer = Callable[[Record, str], str]
# A task's sidecar files for one record: [(suffix, content)], e.g. [(".wav", b"RIFF…")] or one
# PNG per mask. Tasks without it get one text sidecar: [(suffix(fmt), render(record, fmt))].
Sidecars = Callable[[Record, str], list[tuple[str, "bytes | str"]]]


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


def default_render(record: Record, fmt: str) -> str:
    """Render a record in one of the base formats (tasks pass their own for srt, vtt…)."""
    if fmt == "json":
        return record.to_json(indent=2) + "\n"
    if fmt == "jsonl":
        return record.to_json() + "\n"
    return record.text() + "\n"


def sidecar_path(out_dir: Path, item: InputItem, suffix: str) -> Path:
    """``out_dir/<rel path of the input><suffix>``, refusing anything that escapes out_dir."""
    rel = item.rel
    target = (out_dir / rel.parent / (rel.name + suffix)).resolve()
    root = out_dir.resolve()
    if root != target and root not in target.parents:
        raise UsageError(f"output for {item.display} would be written outside {out_dir}")
    return target


class Writer:
    """Receives records as they finish and sends them where the options say.

    Args:
        fmt: output format name.
        render: record + format -> text.
        output: ``-o FILE`` (written atomically at close) or None for stdout.
        output_dir: ``--output-dir``: one sidecar per input.
        suffix: sidecar suffix for ``fmt`` (e.g. ``.txt``).
        many: more than one input (text output gets ``input: `` prefixes; json a list).
        stdout: the stream for data (tests pass their own).
        files: the task's ``files(record, fmt)`` for binary or several sidecars per record.
    """

    def __init__(self, fmt: str, render: Renderer = default_render, *, output: Path | None = None,
                 output_dir: Path | None = None, suffix: str = ".txt", many: bool = False,
                 stdout: TextIO | None = None, files: Sidecars | None = None) -> None:
        if output is not None and output_dir is not None:
            raise UsageError("-o and --output-dir cannot be used together")
        self.fmt, self.render, self.output, self.output_dir = fmt, render, output, output_dir
        self.suffix, self.many, self.files = suffix, many, files
        self.stdout = stdout or sys.stdout
        if output_dir is not None:
            clean_stale_temps(output_dir)  # a SIGKILLed run's half-written files
        self.records: list[Record] = []
        self.buffer: list[str] = []
        self.written: list[Path] = []

    def write(self, record: Record, item: InputItem | None = None) -> None:
        """Emit one record now (jsonl/text/sidecar) or keep it for ``close`` (json, -o)."""
        if self.output_dir is not None and item is not None:
            if record.ok:
                for suffix, data in self.sidecars(record):
                    target = sidecar_path(self.output_dir, item, suffix)
                    self.save(target, data)
                    self._emit(f"{target}\n")
            return
        if self.fmt == "json":
            self.records.append(record)
            return
        if self.fmt == "text" and not record.ok:
            return  # the error line already went to stderr; stdout stays data only
        text = self.render(record, self.fmt)
        if not text:
            return  # already delivered (speak's audio, transcribe streamed on a TTY)
        if self.fmt == "text" and self.many:
            text = f"{record.input}: {text}"
        self._emit(text)

    def sidecars(self, record: Record) -> list[tuple[str, bytes | str]]:
        """The (suffix, content) pairs written under ``--output-dir`` for one record."""
        if self.files is not None:
            return self.files(record, self.fmt)
        return [(self.suffix, self.render(record, self.fmt))]

    def save(self, target: Path, data: bytes | str) -> None:
        """Atomically write one output file; a write failure stops the batch cleanly."""
        try:
            atomic_write(target, data)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}",
                              hint="free space or fix permissions, then re-run: finished "
                                   "inputs are kept and nothing half-written was left") from None
        self.written.append(target)

    def _emit(self, text: str) -> None:
        if self.output is not None:
            self.buffer.append(text)
        else:
            self.stdout.write(text)
            self.stdout.flush()

    def close(self) -> None:
        """Flush json documents and ``-o`` files."""
        if self.fmt == "json" and self.output_dir is None:
            if self.many or len(self.records) != 1:
                doc = json.dumps([r.to_dict() for r in self.records], ensure_ascii=False, indent=2)
            else:
                doc = self.records[0].to_json(indent=2)
            self._emit(doc + "\n")
        if self.output is not None:
            self.save(self.output, "".join(self.buffer))
