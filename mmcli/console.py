"""stderr messages: one red error line plus a hint, warnings, and progress bars on a TTY.

Plain ANSI instead of Rich for messages so an error path never pays Rich's import time;
Rich is imported only when a progress bar is really shown.
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any


def _color(stream: Any) -> bool:
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def _paint(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if _color(sys.stderr) else text


def error(message: str, hint: str | None = None) -> None:
    """``mmcli: error: message`` in red, then ``hint: …`` on its own line."""
    sys.stderr.write(_paint(f"mmcli: error: {message}", "31") + "\n")
    if hint:
        sys.stderr.write(_paint(f"hint: {hint}", "2") + "\n")
    sys.stderr.flush()


def warn(message: str, *, quiet: bool = False) -> None:
    """A yellow warning line (suppressed by --quiet)."""
    if not quiet:
        sys.stderr.write(_paint(f"mmcli: {message}", "33") + "\n")
        sys.stderr.flush()


def info(message: str, *, quiet: bool = False) -> None:
    """A plain status line on stderr (suppressed by --quiet)."""
    if not quiet:
        sys.stderr.write(f"{message}\n")
        sys.stderr.flush()


def show_progress(quiet: bool) -> bool:
    """Progress bars only on an interactive stderr, never under --quiet or NO_COLOR."""
    return not quiet and not os.environ.get("NO_COLOR") and sys.stderr.isatty()


def progress(total: int, description: str, *, enabled: bool) -> AbstractContextManager[Any]:
    """A Rich progress bar on stderr, or a no-op context when disabled."""
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    bar.add_task(description, total=total)
    return bar
