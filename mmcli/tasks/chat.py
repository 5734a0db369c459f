"""Chat: the task contract for ``chat`` plus its typed record.

``mmcli chat`` (one-shot, scripted, REPL) drives ``mmcli.chatkit.session.ChatSession`` directly;
this module gives the library API (``mmcli.api.run("chat", files, prompt=...)``) the same shape as
every other task: each input is attached to ``Options.prompt`` in a fresh one-turn conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mmcli.inputs import InputItem
from mmcli.outputs import default_render
from mmcli.records import ErrorInfo, Record
from mmcli.records import ResolvedModel
from mmcli.settings import Settings

KINDS = frozenset({"image", "audio", "text"})
STDIN_BYTES = True
FORMATS = ("text", "json", "jsonl")
render = default_render


def suffix(fmt: str) -> str:
    """Sidecar suffix for ``--output-dir``."""
    return ".json" if fmt in ("json", "jsonl") else ".txt"


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
    """

    prompt: str = "Describe this."
    system: str | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    caption_model: str | None = None
    transcribe_model: str | None = None
    max_text_kb: int = 256


@dataclass
class Usage:
    """Tokens of the turn: the whole templated prompt and the generated reply."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class AttachmentInfo:
    """One attachment of a turn and how it entered the conversation.

    Attributes:
        path: as given (``-`` for stdin).
        kind: ``image`` | ``audio`` | ``text``.
        sha256: of the file's bytes.
        bytes: file size.
        used_as: ``native`` (the model saw it), ``described`` (caption), ``transcribed``,
            ``inlined`` (text file).
        by: the model that described or transcribed it.
        text: what entered the prompt for bridged attachments (description, transcript).
        cached: the bridged text came from this session's per-hash cache.
    """

    path: str
    kind: str
    sha256: str
    bytes: int
    used_as: str
    by: str | None = None
    text: str | None = None
    cached: bool = False


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


def processor(model: ResolvedModel, settings: Settings,
              options: Options) -> Callable[[InputItem], Iterator[Record]]:
    """Return ``item -> [ChatRecord]``: the item attached to ``options.prompt``, one turn.

    The engine is loaded once (``mmcli.engines.load``) and shared by all items; each item gets
    a fresh conversation, so answers do not leak between files.
    """
    from mmcli.chatkit.attachments import from_item
    from mmcli.chatkit.session import ChatSession

    session = ChatSession(model, settings, options, shared=True)

    def process(item: InputItem) -> Iterator[Record]:
        session.reset()
        attachment = from_item(item, options.max_text_kb)
        record = None
        for event in session.send(options.prompt, [attachment]):
            if isinstance(event, ChatRecord):
                record = event
        assert record is not None
        record.input = item.display
        yield record

    return process


def error_record(item: InputItem, info: ErrorInfo, model: ResolvedModel) -> Record:
    """The record of an input that failed."""
    return ChatRecord(input=item.display, task="chat", model=model.info, error=info)
