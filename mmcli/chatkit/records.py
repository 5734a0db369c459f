"""Chat's typed values: the options of a chat, and the record of one turn.

``ChatRecord`` is what ``ChatSession.send`` ends every turn with, what ``mmcli chat --format
json`` prints and what ``mmcli.api.run("chat", ...)`` yields; ``Options`` are the CLI's chat
options (``mmcli.tasks.chat`` re-exports both for the task contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmcli.records import Record

if TYPE_CHECKING:
    from mmcli.tasks.segment import MaskResult


@dataclass
class Options:
    """Chat options; the defaults are the CLI's.

    Attributes:
        prompt: the user message (the input is attached to it).
        system: system prompt (None: the model's own default).
        max_tokens: reply length cap.
        temperature: 0 = greedy (deterministic).
        seed: sampling seed.
        caption_model: model describing images for a chat model that cannot see them.
        transcribe_model: model transcribing audio attachments.
        max_text_kb: size cap of one text attachment, in KB.
        max_frames: most frames of a video attachment a chat model that sees images gets as
            images (0: videos always enter as timed captions).
        segment_model: segments the regions of ``/attach IMG --point X,Y`` (None: segment's
            default).
    """

    prompt: str = "Describe this."
    system: str | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    caption_model: str | None = None
    transcribe_model: str | None = None
    max_text_kb: int = 256
    max_frames: int = 4
    segment_model: str | None = None


@dataclass
class Usage:
    """Tokens of the turn: the whole templated prompt and the generated reply.

    ``cached_tokens`` (OpenAI's meaning): the prompt tokens whose KV cache was reused from the
    previous turn instead of evaluated again - text and images alike (0 on a first turn, or
    when the history changed before its first token).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class AttachmentInfo:
    """One attachment of a turn and how it entered the conversation.

    Attributes:
        path: as given (``-`` for stdin).
        kind: ``image`` | ``audio`` | ``video`` | ``text``.
        sha256: of the file's bytes.
        bytes: file size.
        used_as: ``native`` (the model saw it; a video's sampled frames as images),
            ``described`` (caption; a video's timed frame captions), ``transcribed``,
            ``inlined`` (text file).
        by: the model that described or transcribed it (a native video: its sound track's).
        text: what entered the prompt for bridged attachments (description, transcript) and
            native videos (the timed transcript notes that follow the frames).
        cached: the bridged text (or a native video's frames) came from this session's cache.
        frames: how many frames of a native video entered as images (None otherwise).
        region: for ``/attach IMG --point X,Y``, the region: the same object as caption's
            ``region`` (one of segment's ``masks``); None for a whole file.
    """

    path: str
    kind: str
    sha256: str
    bytes: int
    used_as: str
    by: str | None = None
    text: str | None = None
    cached: bool = False
    frames: int | None = None
    region: MaskResult | None = None


@dataclass
class ChatRecord(Record):
    """One chat turn: the reply, token usage, timings (``ttft_s``, ``tokens_per_s``), attachments.

    ``turn`` counts from 1; ``dropped_turns`` = oldest turns dropped to fit ``n_ctx`` before
    this one; ``prefix_reused`` = the templated prompt extended the previous turn's (KV cache
    reuse), None on a first turn or after history changed.
    """

    reply: str = ""
    finish_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    attachments: list[AttachmentInfo] = field(default_factory=list)
    turn: int = 0
    context: int = 0
    dropped_turns: int = 0
    prefix_reused: bool | None = None

    def text(self) -> str:
        """The reply (or the error line)."""
        if self.error is not None:
            return f"error: {self.error.message}"
        return self.reply
