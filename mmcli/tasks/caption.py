"""caption: describe each image with a vision-language model (one record per image)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mmcli.errors import UsageError
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.records import ResolvedModel
from mmcli.settings import Settings
from mmcli.tasks.base import Process, Task
from mmcli.tasks.vision import Session, VisionOptions, VisionRecord, fill, timings

__all__ = ["DETAILS", "Options", "CaptionRecord", "TASK", "prompt_for"]

# --detail presets: the prompt and a max-token budget that fits it.
DETAILS = {
    "short": ("Describe this image in one sentence.", 64),
    "normal": ("Describe this image in a few sentences.", 160),
    "detailed": ("Describe this image in detail in one paragraph: the subject, the setting, "
                 "colours, any text, and anything notable.", 400),
}

@dataclass
class Options(VisionOptions):
    """caption options: ``--detail`` preset or ``--prompt``, plus the shared vision options."""

    detail: str = "normal"
    prompt: str | None = None


@dataclass
class CaptionRecord(VisionRecord):
    """One image's caption.

    Attributes:
        caption: the model's description (whitespace-trimmed).
        prompt: the instruction sent with the image.
        prompt_tokens / completion_tokens: token counts (image tokens included in the first).
        finish_reason: ``stop`` (the model ended) or ``length`` (hit ``--max-tokens``).
        width / height: the image size sent to the model (after EXIF rotation and --max-side).
    """

    caption: str = ""

    def text(self) -> str:
        """The caption (or the error)."""
        return self.caption if self.error is None else super().text()


def prompt_for(options: Options) -> tuple[str, int]:
    """The instruction and default max tokens for ``--detail`` / ``--prompt``."""
    if options.detail not in DETAILS:
        raise UsageError(f"--detail {options.detail!r} is not one of {', '.join(DETAILS)}")
    text, budget = DETAILS[options.detail]
    return (options.prompt or text), budget


class CaptionTask(Task[Options]):
    """``caption``: images in, one ``CaptionRecord`` each (sidecar ``photo.jpg.txt``)."""

    name = "caption"
    kinds = frozenset({"image"})
    options_type = Options
    record_type = CaptionRecord

    def check(self, fmt: str, options: Any, *, output_dir: bool) -> None:
        """A bad ``--detail`` is a usage error before anything loads."""
        prompt_for(options)

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        """``item -> Done(CaptionRecord)``; the model loads on the first item, once."""
        prompt, budget = prompt_for(options)
        session = Session(model, settings, options)

        def process(item: InputItem) -> Iterator[TaskEvent]:
            engine, load_s = session.engine()
            start = time.perf_counter()
            picture = session.picture(item)
            decode_s = time.perf_counter() - start
            answer = session.ask(engine, [picture], prompt, budget)
            record = CaptionRecord(input=item.display, task="caption", model=model.info,
                                   device=engine.device, caption=answer.text,
                                   timings=timings(load_s, start, answer, decode_s))
            fill(record, answer, prompt, picture)
            yield Done(record)

        return process


TASK = CaptionTask()
