"""caption: describe each image with a vision-language model (one record per image)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mmcli.errors import InputError, UsageError
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.records import Record, ResolvedModel, Timings, internal
from mmcli.settings import Settings
from mmcli.tasks import region, video
from mmcli.tasks.base import Process, Sidecar, Task
from mmcli.tasks.segment import MaskResult
from mmcli.tasks.vision import Session, VisionOptions, VisionRecord, fill, timings

__all__ = ["DETAILS", "Options", "CaptionRecord", "ClipCaptionRecord", "RegionCaptionRecord",
           "TASK", "prompt_for"]

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


@dataclass
class RegionCaptionRecord(CaptionRecord):
    """The caption of one region (``--point`` / ``--box``) of an image.

    Attributes:
        region: the region's mask, the same object as one of segment's ``masks``
            (``segmentation`` COCO RLE, ``bbox``, ``area``, ``predicted_iou``, ``prompt``...,
            original-image pixels).
        crop: ``[x0, y0, x1, y1]``: the part of the image sent to the VLM (original pixels).
        width / height: the crop's size as sent (after upscaling a small region).
    """

    region: MaskResult | None = None
    crop: list[int] = field(default_factory=list)
    number: int = internal(1)
    where: str = internal("")
    several: bool = internal(False)

    def text(self) -> str:
        """The caption, after the region's prompt when several regions were asked."""
        if self.error is not None or not self.several:
            return super().text()
        return f"{self.where}\t{self.caption}"


@dataclass
class ClipCaptionRecord(CaptionRecord):
    """A video clip's caption: the image fields, then what the clip's caption was made from.

    Attributes:
        caption: the chat model's caption of the whole clip.
        duration_s: the clip's length.
        frames: ``[{"t": seconds, "caption": ...}]`` per sampled frame (caption null when the
            frames were described together, in ``visual``).
        visual: the vision model's description of all frames in one prompt ("" with each).
        transcript: ``{"text", "segments": [{"start", "end", "text"}]}``, null without a sound
            track (or with ``--no-audio``).
        stages: ``{"sample"|"vision"|"transcribe"|"merge": {"model", "s"}}``.
    """

    duration_s: float = 0.0
    frames: list[video.FrameNote] = field(default_factory=list)
    visual: str = ""
    transcript: video.Transcript | None = None
    stages: dict[str, video.Stage] = field(default_factory=dict)
    sheet: bytes = internal(b"")

    @property
    def notes(self) -> str:
        """The timed notes the caption was written from (frame captions, transcript)."""
        return video.Evidence(self.duration_s, self.frames, [], self.visual, self.transcript,
                              {}).notes()


# The chat model's instruction per --detail (``--prompt`` replaces it), with the preset budget.
MERGE = {
    "short": "Write a one-sentence caption of this video clip from what the frames show and "
             "what is said.",
    "normal": "Write one caption of this video clip in two or three sentences, using what the "
              "frames show and what is said.",
    "detailed": "Write one detailed paragraph about this video clip: what the frames show, how "
                "it changes over time, and what is said.",
}


# --detail presets for a region (the crop's marking is said before them: region.instruction)
REGION_DETAILS = {
    "short": "Describe the marked region in one sentence.",
    "normal": "Describe the marked region in a few sentences.",
    "detailed": "Describe the marked region in detail in one paragraph: what it is, its "
                "colours, any text, and how it relates to its surroundings.",
}


def prompt_for(options: Options) -> tuple[str, int]:
    """The instruction and default max tokens for ``--detail`` / ``--prompt`` (with regions:
    the sentence saying what is marked, then the region preset or ``--prompt``)."""
    if options.detail not in DETAILS:
        raise UsageError(f"--detail {options.detail!r} is not one of {', '.join(DETAILS)}")
    text, budget = DETAILS[options.detail]
    if region.wanted(options):
        text = region.instruction(options.prompt or REGION_DETAILS[options.detail],
                                  options.region_style)
        return text, budget
    return (options.prompt or text), budget


class CaptionTask(Task[Options]):
    """``caption``: images in, one ``CaptionRecord`` each (sidecar ``photo.jpg.txt``)."""

    name = "caption"
    kinds = frozenset({"image", "video"})
    options_type = Options
    record_type = CaptionRecord

    def skip_suffix(self, fmt: str, options: Options) -> str:
        """With ``--point`` / ``--box`` the first sidecar is the first region's (``.r1``)."""
        return (".r1" if region.wanted(options) else "") + self.suffix(fmt)

    def files(self, record: Record, fmt: str) -> list[Sidecar]:
        """The caption sidecar (``photo.jpg.r1.txt`` per region), plus ``clip.mp4.sheet.jpg``
        with ``--sheet``."""
        if isinstance(record, RegionCaptionRecord):
            return [(f".r{record.number}{self.suffix(fmt)}", self.render(record, fmt))]
        out = super().files(record, fmt)
        if isinstance(record, ClipCaptionRecord) and record.sheet:
            out.append((".sheet.jpg", record.sheet))
        return out

    def check(self, fmt: str, options: Any, *, output_dir: bool) -> None:
        """A bad ``--detail`` or video option is a usage error before anything loads."""
        region.check(options)
        prompt_for(options)
        video.check(options)
        if options.sheet and not output_dir:
            raise UsageError("--sheet writes clip.mp4.sheet.jpg next to each caption",
                             hint="add --output-dir DIR")

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        """``item -> Done(CaptionRecord)``; the model loads on the first item, once."""
        prompt, budget = prompt_for(options)
        session = Session(model, settings, options)
        segmenter = region.Segmenter(settings, options) if region.wanted(options) else None
        if segmenter is not None:
            segmenter.model()  # a missing segment model stops the run before the VLM loads

        def process(item: InputItem) -> Iterator[TaskEvent]:
            engine, load_s = session.engine()
            if video.is_video(item):
                if segmenter is not None:
                    raise InputError("--point / --box mark regions of images, not of clips")
                yield Done(clip(item, engine, load_s))
                return
            if segmenter is not None:
                yield from regions(item, engine, load_s, segmenter)
                return
            start = time.perf_counter()
            picture = session.picture(item)
            decode_s = time.perf_counter() - start
            answer = session.ask(engine, [picture], prompt, budget)
            record = CaptionRecord(input=item.display, task="caption", model=model.info,
                                   device=engine.device, caption=answer.text,
                                   timings=timings(load_s, start, answer, decode_s))
            fill(record, answer, prompt, picture)
            yield Done(record)

        def regions(item: InputItem, engine: Any, load_s: float,
                    segmenter: region.Segmenter) -> Iterator[TaskEvent]:
            start = time.perf_counter()
            found, extra = segmenter.regions(item, session.max_side)
            first = True
            for reg in found:
                if reg.error is not None:  # an empty mask fails this region only
                    yield Done(RegionCaptionRecord(
                        input=item.display, task="caption", model=model.info,
                        device=engine.device, region=reg.mask, number=reg.number,
                        where=reg.where, several=len(found) > 1, error=reg.error))
                    continue
                t0 = time.perf_counter()
                answer = session.ask(engine, [reg.picture], prompt, budget)
                record = RegionCaptionRecord(
                    input=item.display, task="caption", model=model.info, device=engine.device,
                    caption=answer.text, region=reg.mask, crop=list(reg.crop),
                    number=reg.number, where=reg.where, several=len(found) > 1,
                    timings=timings(load_s, t0, answer, 0.0))
                record.timings.extra.update(extra)
                if first:  # the image's shared work is counted once
                    record.timings.run_s += t0 - start
                fill(record, answer, prompt, reg.picture)
                load_s, extra, first = 0.0, {}, False
                yield Done(record)

        def clip(item: InputItem, engine: Any, load_s: float) -> ClipCaptionRecord:
            start = time.perf_counter()
            evidence = video.gather(session, engine, item, options, settings)
            instruction = options.prompt or MERGE[options.detail]
            answer = (video.write(evidence, instruction, options, settings,
                                  budget=DETAILS[options.detail][1]) if options.merge
                      else video.Answer("", 0, 0, "", {}))
            record = ClipCaptionRecord(
                input=item.display, task="caption", model=model.info, device=engine.device,
                caption=answer.text, duration_s=evidence.duration_s, frames=evidence.frames,
                visual=evidence.visual, transcript=evidence.transcript, stages=evidence.stages,
                timings=Timings(load_s=load_s, run_s=time.perf_counter() - start,
                                extra={f"{k}_s": v.s for k, v in evidence.stages.items()}))
            fill(record, answer, instruction, evidence.pictures[0])
            if options.sheet:
                record.sheet = video.sheet(evidence, item.display)
            return record

        return process


TASK = CaptionTask()
