"""Chat: the task contract for ``chat``, a thin adapter over ``mmcli.chatkit``.

``mmcli chat`` (one-shot, scripted, REPL) drives ``mmcli.chatkit.session.ChatSession`` directly;
this module gives the library API (``mmcli.api.run("chat", files, prompt=...)``) the same shape as
every other task: each input is attached to ``Options.prompt`` in a fresh one-turn conversation.
``Options`` and ``ChatRecord`` live in ``mmcli.chatkit.records`` and are re-exported here as
the task contract's names.
"""

from __future__ import annotations

from collections.abc import Iterator

from mmcli.chatkit.records import ChatRecord, Options
from mmcli.events import Done, TaskEvent, TextDelta
from mmcli.inputs import InputItem
from mmcli.records import ResolvedModel
from mmcli.settings import Settings
from mmcli.tasks.base import Process, Task

__all__ = ["ChatRecord", "Options", "TASK"]


class ChatTask(Task[Options]):
    """``chat`` over inputs: each input attached to ``Options.prompt``, one turn each."""

    name = "chat"
    kinds = frozenset({"image", "audio", "video", "text"})
    options_type = Options
    record_type = ChatRecord

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        """``item -> TextDelta… Done(ChatRecord)``: the item attached to the prompt.

        The engine is loaded once (``mmcli.engines.load``) and shared by all items; each item
        gets a fresh conversation, so answers do not leak between files.
        """
        from mmcli.chatkit.attachments import from_item
        from mmcli.chatkit.session import ChatSession

        session = ChatSession(model, settings, options, shared=True)

        def process(item: InputItem) -> Iterator[TaskEvent]:
            session.reset()
            attachment = from_item(item, options.max_text_kb)
            for event in session.send(options.prompt, [attachment]):
                if isinstance(event, ChatRecord):
                    event.input = item.display
                    yield Done(event)
                else:
                    yield TextDelta(event)

        return process


TASK = ChatTask()
