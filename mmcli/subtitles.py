"""Subtitle and table formats for timed text: SRT, WebVTT and TSV (openai-whisper's layout).

Timestamps are clamped so they never go backwards (whisper segments may overlap by a few ms),
which every subtitle player expects. That no cue ends after the audio is the record's business:
``mmcli.tasks.transcribe`` clamps segment and word times to ``duration_s`` when it builds them,
so JSON and these formats agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class Timed(Protocol):
    """Anything with ``start``/``end`` seconds and ``text`` (a transcript segment)."""

    start: float
    end: float
    text: str


def timestamp(seconds: float, sep: str = ",", always_hours: bool = True) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (VTT, ``sep='.'``)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def monotonic(segments: Iterable[Timed]) -> list[tuple[float, float, str]]:
    """``(start, end, text)`` with empty texts dropped and times never going backwards."""
    out: list[tuple[float, float, str]] = []
    last = 0.0
    for seg in segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        start = max(seg.start, last)
        end = max(seg.end, start)
        out.append((start, end, text))
        last = end
    return out


def srt(segments: Sequence[Timed]) -> str:
    """SubRip: numbered cues, ``00:00:01,000 --> 00:00:02,500``, blank line between cues."""
    cues = [f"{i}\n{timestamp(s)} --> {timestamp(e)}\n{t}\n"
            for i, (s, e, t) in enumerate(monotonic(segments), start=1)]
    return "\n".join(cues)


def vtt(segments: Sequence[Timed]) -> str:
    """WebVTT: ``WEBVTT`` header, ``00:00:01.000 --> 00:00:02.500`` cues."""
    cues = [f"{timestamp(s, '.')} --> {timestamp(e, '.')}\n{t}\n"
            for s, e, t in monotonic(segments)]
    return "WEBVTT\n\n" + "\n".join(cues)


def tsv(segments: Sequence[Timed]) -> str:
    """``start<TAB>end<TAB>text`` with integer milliseconds, as openai-whisper writes it."""
    rows = ["start\tend\ttext"]
    rows += [f"{round(s * 1000)}\t{round(e * 1000)}\t{t.replace(chr(9), ' ')}"
             for s, e, t in monotonic(segments)]
    return "\n".join(rows) + "\n"
