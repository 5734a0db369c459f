"""Typed stream events: what engines and tasks yield while they work.

Engines yield ``TextDelta`` pieces and a final ``ChatDone`` (llama); tasks yield ``TextDelta``,
``SegmentDone``, ``Measured`` and ``AudioChunk`` while an input is processed and one ``Done``
per finished record. The writer (``mmcli.outputs``) decides where each event goes (stdout on a
terminal, ``-o``, sidecars); consumers tell events apart with ``isinstance``, never ``hasattr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from mmcli.records import Record


@dataclass(frozen=True)
class TextDelta:
    """A piece of generated text, in order."""

    text: str


@dataclass(frozen=True)
class ChatDone:
    """Always the last event of a chat generation: token counts and timings."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    ttft_s: float
    total_s: float
    extra: dict[str, float] = field(default_factory=dict)
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused (not evaluated again)


@dataclass(frozen=True)
class SegmentDone:
    """A transcript segment, the moment it is decoded (seconds from the input's start)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Measured:
    """The input's media length, known before its results (progress inside one input)."""

    duration_s: float


@dataclass(frozen=True)
class AudioChunk:
    """Synthesized 16-bit little-endian mono PCM, in order (one sentence, or its silence)."""

    pcm: bytes
    sample_rate: int


@dataclass(frozen=True)
class Done:
    """A finished record (success or error): the writer renders and stores it."""

    record: Record


GenerationEvent = Union[TextDelta, ChatDone]
TaskEvent = Union[TextDelta, SegmentDone, Measured, AudioChunk, Done]
