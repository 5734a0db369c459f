"""Modality bridging: images a chat model cannot see are captioned, audio is transcribed, a
video becomes timed notes (each sampled frame captioned - by the chat model itself when it sees
images - and the sound track's timed transcript).

Both go through the library API (``mmcli.api.run``), i.e. the same task modules, models and
errors as ``mmcli caption`` / ``mmcli transcribe``. Results are cached per (task, sha256) for
the life of the session, so re-attaching a file (or resending it every turn) costs nothing.
"""

from __future__ import annotations

from typing import Any

from mmcli.chatkit.attachments import Attachment
from mmcli.errors import InputError, MmcliError, NotAvailableError
from mmcli.settings import Settings

TASK_OF = {"image": "caption", "audio": "transcribe", "video": "caption"}
USED_AS = {"caption": "described", "transcribe": "transcribed"}


class Bridge:
    """Turns non-native attachments into labelled text, with a per-hash cache."""

    def __init__(self, settings: Settings, caption_model: str | None = None,
                 transcribe_model: str | None = None) -> None:
        self.settings = settings
        self.models = {"caption": caption_model, "transcribe": transcribe_model}
        self.cache: dict[tuple[str, str], tuple[str, str]] = {}

    def prepare(self, att: Attachment, *, chat_model: str, has_vision: bool) -> None:
        """Decide how ``att`` enters the prompt for this chat model, bridging when needed.

        Raises:
            InputError: the bridge model failed on this file.
            ModelUnavailableError / NotAvailableError: no bridge model can be used.
        """
        if att.kind == "text" or att.used_as == "missing":
            return
        if att.kind == "image" and has_vision:
            att.used_as, att.by, att.text, att.cached = "native", None, None, False
            return
        task = TASK_OF[att.kind]
        key = (task, att.sha256)
        att.cached = key in self.cache
        if not att.cached:
            self.cache[key] = (self._video(att, chat_model, has_vision) if att.kind == "video"
                               else self._run(task, att, chat_model))
        att.by, att.text = self.cache[key]
        att.used_as = USED_AS[task]

    def remember(self, kind: str, sha256: str, by: str, text: str) -> None:
        """Seed the cache (a loaded transcript brings its bridged texts back)."""
        self.cache[(TASK_OF[kind], sha256)] = (by, text)

    def _video(self, att: Attachment, chat_model: str, has_vision: bool) -> tuple[str, str]:
        """Timed notes of a clip: frame captions (by the chat model when it sees images, else
        the caption model) and the transcript; no merged caption (the chat model reads the
        notes itself)."""
        model = self.models["caption"] or (chat_model if has_vision else None)
        record = self._run("caption", att, chat_model, model=model, frames="each",
                           merge=False, transcribe_model=self.models["transcribe"])
        by = record.model.name if record.model is not None else str(model)
        heard = record.stages.get("transcribe")
        if heard is not None:
            by += f" and {heard.model} (sound track)"
        return by, record.notes

    def _run(self, task: str, att: Attachment, chat_model: str, *, model: str | None = None,
             **options: Any) -> Any:
        from mmcli import api

        why = ("video clips are described before they enter the chat" if att.kind == "video"
               else f"chat model '{chat_model}' cannot see images" if task == "caption"
               else "audio is transcribed before it enters the chat")
        try:
            source: str | bytes = att.path if att.path != "-" else att.data
            records = list(api.run(task, [source], model=model or self.models[task],
                                   settings=self.settings, **options))
        except (ImportError, KeyError):
            raise NotAvailableError(
                f"{att.name}: {why}, and the '{task}' task is not available in this version",
                hint="pick a vision-language chat model with --model" if task == "caption"
                else None)
        except MmcliError as exc:
            if isinstance(exc, InputError):
                raise
            raise type(exc)(f"{att.name}: {why}, and no {task} model is usable: {exc.message}",
                            hint=exc.hint)
        if not records:
            raise InputError(f"{att.name}: the {task} task returned nothing")
        record = records[0]
        if record.error is not None:
            raise InputError(f"{att.name}: {task} failed: {record.error.message}")
        if options:
            return record
        by = record.model.name if record.model is not None else str(self.models[task])
        return by, record.text().strip()
