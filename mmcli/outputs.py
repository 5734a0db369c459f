"""Where records and stream events go: stdout (text/json/jsonl), ``-o FILE``, or sidecars under
``--output-dir``; live text on a terminal; audio through ``mmcli.sinks``.

Every file write is atomic (``mmcli.atomic``), so a kill never leaves a half-written output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from mmcli.atomic import atomic_file, atomic_write, clean_stale_temps
from mmcli.errors import OutputError, UsageError
from mmcli.events import AudioChunk, SegmentDone, TaskEvent, TextDelta
from mmcli.inputs import InputItem
from mmcli.records import Record
from mmcli.sinks import AudioSink, AudioTarget, Sidecar

__all__ = ["Writer", "default_render", "json_suffix", "sidecar_path", "atomic_file",
           "atomic_write", "clean_stale_temps"]

Renderer = Callable[[Record, str], str]
# A task's sidecar files for one record: [(suffix, content)], e.g. one PNG per mask. Tasks
# without it get one text sidecar: [(suffix(fmt), render(record, fmt))].
Sidecars = Callable[[Record, str], list[Sidecar]]


def json_suffix(fmt: str) -> str:
    """``.json`` for json/jsonl sidecars, ``.txt`` otherwise."""
    return ".json" if fmt in ("json", "jsonl") else ".txt"


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
    """Receives a task's events and records as they come and sends them where the options say.

    Args:
        fmt: output format name.
        render: record + format -> text.
        output: ``-o FILE`` (written atomically at close) or None for stdout.
        output_dir: ``--output-dir``: one sidecar per input.
        suffix: sidecar suffix for ``fmt`` (e.g. ``.txt``).
        many: more than one input (text output gets ``input: `` prefixes; json a list).
            With ``output_dir``, text output lists the files written, json/jsonl print each
            record with ``outputs`` (the files written for it).
        stdout: the stream for data (tests pass their own).
        files: the task's ``files(record, fmt)`` for binary or several sidecars per record.
        audio: where ``AudioChunk`` events go (tasks that make audio); their records are then
            printed only as JSON: in text format stdout carries the audio, or nothing.
    """

    def __init__(self, fmt: str, render: Renderer = default_render, *, output: Path | None = None,
                 output_dir: Path | None = None, suffix: str = ".txt", many: bool = False,
                 stdout: TextIO | None = None, files: Sidecars | None = None,
                 audio: AudioTarget | None = None) -> None:
        if output is not None and output_dir is not None:
            raise UsageError("-o and --output-dir cannot be used together")
        self.fmt, self.render, self.output, self.output_dir = fmt, render, output, output_dir
        self.suffix, self.many, self.files = suffix, many, files
        self.stdout = stdout or sys.stdout
        self.audio = AudioSink(audio, self.stdout) if audio is not None else None
        # Text streams live (segment by segment) only to a person watching one input.
        self.live = (fmt == "text" and output is None and output_dir is None and not many
                     and audio is None and _isatty(self.stdout))
        self._shown = ""  # what went live for the record in progress
        if output_dir is not None:
            clean_stale_temps(output_dir)  # a SIGKILLed run's half-written files
        self.docs: list[dict[str, Any]] = []  # --format json: one document at close
        self.buffer: list[str] = []
        self.written: list[Path] = []

    def event(self, event: TaskEvent, item: InputItem | None = None) -> None:
        """A stream event of the input in progress (``Done`` records go to ``write``)."""
        if isinstance(event, AudioChunk):
            if self.audio is None:
                raise TypeError("this writer takes no audio")
            self.audio.chunk(event)
        elif self.live and isinstance(event, SegmentDone):
            self._live(event.text.strip() + "\n")
        elif self.live and isinstance(event, TextDelta):
            self._live(event.text)

    def _live(self, text: str) -> None:
        self._shown += text
        self.stdout.write(text)
        self.stdout.flush()

    def write(self, record: Record, item: InputItem | None = None) -> None:
        """Emit one record now (jsonl/text/sidecar) or keep it for ``close`` (json, -o)."""
        shown, self._shown = self._shown, ""
        audio_files: list[Sidecar] = []
        if self.audio is not None:
            if not record.ok:
                self.audio.abort()
            else:
                audio_files, done = self.audio.finish()
                self.written.extend(done)
        if self.output_dir is not None and item is not None:
            written = []
            if record.ok:
                for suffix, data in audio_files + self.sidecars(record):
                    target = sidecar_path(self.output_dir, item, suffix)
                    self.save(target, data)
                    written.append(str(target))
            if self.fmt in ("json", "jsonl"):  # records on stdout, naming their sidecars
                self._record({**record.to_dict(), "outputs": written})
            else:
                self._emit("".join(f"{path}\n" for path in written))
            return
        if self.fmt == "json":
            self.docs.append(record.to_dict())
            return
        if self.fmt == "text" and (not record.ok or self.audio is not None):
            return  # errors went to stderr; audio went to its target: stdout stays data only
        if shown:  # the text went out live; end its line
            if not shown.endswith("\n"):
                self._emit("\n")
            return
        text = self.render(record, self.fmt)
        if self.fmt == "text" and self.many:
            text = f"{record.input}: {text}"
        self._emit(text)

    def _record(self, doc: dict[str, Any]) -> None:
        if self.fmt == "json":
            self.docs.append(doc)
        else:
            self._emit(json.dumps(doc, ensure_ascii=False) + "\n")

    def sidecars(self, record: Record) -> list[Sidecar]:
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
        if self.fmt == "json":
            one = not self.many and len(self.docs) == 1
            doc = json.dumps(self.docs[0] if one else self.docs, ensure_ascii=False, indent=2)
            self._emit(doc + "\n")
        if self.output is not None:
            self.save(self.output, "".join(self.buffer))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
