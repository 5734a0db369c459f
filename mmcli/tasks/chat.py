"""Chat: the task contract for ``chat``, a thin adapter over ``mmcli.chatkit``.

``mmcli chat`` (one-shot, scripted, REPL) drives ``mmcli.chatkit.session.ChatSession`` directly;
this module gives the library API (``mmcli.api.run("chat", files, prompt=...)``) the same shape as
every other task: each input is attached to ``Options.prompt`` in a fresh one-turn conversation.
``Options`` and ``ChatRecord`` live in ``mmcli.chatkit.records`` and are re-exported here as
the task contract's names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mmcli.chatkit.records import ChatRecord, Options
from mmcli.inputs import InputItem
from mmcli.outputs import default_render
from mmcli.records import ErrorInfo, Record, ResolvedModel
from mmcli.settings import Settings

__all__ = ["FORMATS", "KINDS", "STDIN_BYTES", "ChatRecord", "Options", "error_record",
           "processor", "render", "suffix"]

KINDS = frozenset({"image", "audio", "text"})
STDIN_BYTES = True
FORMATS = ("text", "json", "jsonl")
render = default_render


def suffix(fmt: str) -> str:
    """Sidecar suffix for ``--output-dir``."""
    return ".json" if fmt in ("json", "jsonl") else ".txt"


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
