"""The batch's terminal view: one live bar on stderr that says what is happening, with the data
lines printed *above* it when stdout is the same terminal.

The bar names the task and model, the input in progress (shortened), done / failed / skipped,
inputs per second and, for audio, the real-time factor (audio seconds per wall second). For one
long input it follows the position inside it (``SegmentDone`` ends against ``Measured``).
Messages written to stderr while the bar runs (warnings, errors) print above it too (Rich's
stderr redirect). Rich is imported only when a bar is really shown; piped stdout is never
touched.
"""

from __future__ import annotations

import os
import time
from typing import Any, TextIO

from mmcli.events import Measured, SegmentDone, TaskEvent


def same_terminal(a: Any, b: Any) -> bool:
    """True when both streams are the same terminal (data would land on the bar's line)."""
    try:
        if not (a.isatty() and b.isatty()):
            return False
        return os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (AttributeError, ValueError, OSError):
        return False


def short(name: str, width: int = 28) -> str:
    """``…ecordings/2024/clip-0042.wav``: the end of a path is the part that tells inputs apart."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


class AboveBar:
    """A text stream that prints whole lines above the live bar (through Rich's console)."""

    def __init__(self, console: Any, real: TextIO) -> None:
        self.console, self.real, self._pending = console, real, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self.console.print(line, markup=False, highlight=False, emoji=False,
                               soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return True

    @property
    def buffer(self) -> Any:  # binary data (raw PCM) goes straight to the real stream
        return getattr(self.real, "buffer", self.real)


class BatchBar:
    """The live bar of one batch (a context manager); a no-op object when not shown."""

    def __init__(self, total: int, title: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        width = Console(stderr=True).width
        columns: list[Any] = [TextColumn("{task.description}"), BarColumn(bar_width=None)]
        if width >= 60:  # a narrow terminal keeps the bar on one line: fewer columns
            columns.append(TextColumn("{task.fields[stats]}"))
        self.progress = Progress(*columns, console=Console(stderr=True), transient=False,
                                 redirect_stdout=False, redirect_stderr=True)
        self.title, self.total = title, total
        self.done = self.failed = self.skipped = 0
        self.audio_s = 0.0
        self.inside: tuple[float, float] | None = None  # (position, length) of the input
        self.started = time.perf_counter()
        self.task = self.progress.add_task(title, total=total, stats="")

    @property
    def console(self) -> Any:
        """Rich's console: printing through it keeps the bar at the bottom."""
        return self.progress.console

    def __enter__(self) -> BatchBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def start(self, name: str) -> None:
        """An input begins."""
        self.inside = None
        self._show(short(name, max(12, self.console.width // 4)))

    def event(self, event: TaskEvent) -> None:
        """Follow the input in progress: its media length, then each decoded segment's end."""
        if isinstance(event, Measured):
            self.inside = (0.0, event.duration_s)
        elif isinstance(event, SegmentDone) and self.inside is not None:
            self.inside = (event.end, self.inside[1])
            if self.total == 1 and self.inside[1] > 0:  # one long input: move with it
                self.progress.update(self.task, completed=min(event.end / self.inside[1], 1.0))
            self._show(None)

    def finish(self, state: str) -> None:
        """The input ended: ``done``, ``failed`` or ``skipped``."""
        setattr(self, state, getattr(self, state) + 1)
        if self.inside is not None:
            self.audio_s += self.inside[1]
            self.inside = None
        self.progress.update(self.task, completed=self.done + self.failed + self.skipped)
        self._show(None)

    def _show(self, current: str | None) -> None:
        took = max(time.perf_counter() - self.started, 1e-6)
        handled = self.done + self.failed + self.skipped
        stats = f"{self.done} done"
        if self.failed:
            stats += f", {self.failed} failed"
        if self.skipped:
            stats += f", {self.skipped} skipped"
        if handled:
            stats += f" · {handled / took:.2f}/s"
        audio = self.audio_s + (self.inside[0] if self.inside else 0.0)
        if audio:
            stats += f" · {audio / took:.1f}× real time"
        if self.inside is not None and self.inside[1]:
            stats += f" · {self.inside[0]:.0f}/{self.inside[1]:.0f} s"
        fields: dict[str, Any] = {"stats": stats}
        if current is not None:
            fields["description"] = f"{self.title} {current}"
        self.progress.update(self.task, **fields)
