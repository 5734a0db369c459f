"""vqa: answer questions about images (one record per image and question)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcli.errors import InputError, UsageError
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.outputs import json_suffix
from mmcli.records import ErrorInfo, Record, ResolvedModel, Timings, internal
from mmcli.settings import Settings
from mmcli.tasks import region, video
from mmcli.tasks.base import Process, Sidecar, Task
from mmcli.tasks.segment import MaskResult
from mmcli.tasks.vision import Session, VisionOptions, VisionRecord, fill, timings

__all__ = ["Options", "VqaRecord", "RegionVqaRecord", "TASK", "prepare"]

DEFAULT_MAX_TOKENS = 128


@dataclass
class Options(VisionOptions):
    """vqa options: questions for every image, per-image questions, --together."""

    questions: list[str] = field(default_factory=list)
    per_image: dict[str, list[str]] = field(default_factory=dict)  # resolved path -> questions
    together: bool = False


@dataclass
class VqaRecord(VisionRecord):
    """One answer.

    Attributes:
        image: the image asked about (``input`` too); with --together, all of them joined.
        images: every image in the prompt (one, or all with --together).
        question / answer: what was asked and the model's reply.
        number: the question's 1-based number for this image (names the sidecar ``.qN``).
    """

    image: str = ""
    images: list[str] = field(default_factory=list)
    question: str = ""
    answer: str = ""
    number: int = internal(1)
    several: bool = internal(False)

    def text(self) -> str:
        """The answer; prefixed by the question when several were asked."""
        if self.error is not None:
            return super().text()
        return f"{self.question}\t{self.answer}" if self.several else self.answer


@dataclass
class RegionVqaRecord(VqaRecord):
    """An answer about one region (``--point`` / ``--box``) of an image: the vqa fields, then
    ``region`` (the same object as one of segment's ``masks``) and ``crop`` (``[x0, y0, x1,
    y1]`` sent to the VLM, original pixels)."""

    region: MaskResult | None = None
    crop: list[int] = field(default_factory=list)
    region_number: int = internal(1)
    where: str = internal("")

    def text(self) -> str:
        """The answer, after the region's prompt (and the question when several)."""
        if self.error is not None or not self.several:
            return super().text()
        return f"{self.where}\t{super().text()}"


@dataclass
class ClipVqaRecord(VqaRecord):
    """An answer about a video clip: the vqa fields, then the evidence it came from
    (``duration_s``, ``frames``, ``transcript``, ``stages``: as caption's clip record)."""

    duration_s: float = 0.0
    frames: list[video.FrameNote] = field(default_factory=list)
    transcript: video.Transcript | None = None
    stages: dict[str, video.Stage] = field(default_factory=dict)


def prepare(options: Options, inputs: list[str] | None, questions_file: Path | None) -> list[str]:
    """Read ``--questions FILE.jsonl`` into ``options.per_image``; return all image arguments.

    Raises:
        UsageError: no question at all, or a malformed questions file.
    """
    args = list(inputs or [])
    if questions_file is not None:
        for image, question in _read_questions(questions_file):
            options.per_image.setdefault(str(image.resolve()), []).append(question)
            if str(image) not in args:
                args.append(str(image))
    if not options.questions and not options.per_image:
        raise UsageError("no question given", hint='use -q "QUESTION" (repeatable) or '
                                                   "--questions FILE.jsonl")
    if options.together and options.per_image:
        raise UsageError("--together asks the -q questions of all images; it does not take "
                         "--questions FILE")
    return args


def _read_questions(path: Path) -> Iterator[tuple[Path, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --questions {path}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image, question = row["image"], row["question"]
            if not isinstance(image, str) or not isinstance(question, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{path}:{n}: expected {{\"image\": PATH, \"question\": TEXT}}")
        p = Path(image)
        yield (p if p.is_absolute() else path.parent / p), question


class VqaTask(Task[Options]):
    """``vqa``: images and questions in, one ``VqaRecord`` per (image, question); with
    ``--together`` all images form one unit of work and each question is asked once."""

    name = "vqa"
    kinds = frozenset({"image", "video"})
    options_type = Options
    record_type = VqaRecord

    def suffix(self, fmt: str) -> str:
        """The first question's sidecar suffix (``photo.jpg.q1.txt``): --skip-existing."""
        return ".q1" + json_suffix(fmt)

    def skip_suffix(self, fmt: str, options: Options) -> str:
        """With ``--point`` / ``--box`` the first sidecar is the first region's (``.r1``)."""
        return (".r1" if region.wanted(options) else "") + self.suffix(fmt)

    def files(self, record: Record, fmt: str) -> list[Sidecar]:
        """One sidecar per question: ``photo.jpg.q1.txt``, ``photo.jpg.q2.txt``… (per region
        ``photo.jpg.r1.q1.txt``)."""
        number = record.number if isinstance(record, VqaRecord) else 1
        prefix = f".r{record.region_number}" if isinstance(record, RegionVqaRecord) else ""
        return [(f"{prefix}.q{number}{json_suffix(fmt)}", self.render(record, fmt))]

    def check(self, fmt: str, options: Any, *, output_dir: bool) -> None:
        """``--together`` gives one answer per question, not per image: no sidecars."""
        video.check(options)
        region.check(options)
        if options.together and region.wanted(options):
            raise UsageError("--point / --box ask about a region of each image; drop --together")
        if options.together and output_dir:
            raise UsageError("--together gives one answer per question, not per image",
                             hint="use -o FILE (or stdout) instead of --output-dir")

    def group(self, items: list[InputItem], options: Options) -> list[InputItem]:
        """``--together``: every image in one unit of work (one prompt)."""
        if not options.together or not items:
            return items
        return [InputItem.group(items)]

    def error_record(self, item: InputItem, info: ErrorInfo, model: ResolvedModel) -> Record:
        """The record of an image (or a --together group) that failed."""
        names = [p.display for p in item.parts] or [item.display]
        return VqaRecord(input=item.display, task="vqa", model=model.info, image=item.display,
                         images=names, error=info)

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        """``item -> Done(VqaRecord) per question``; the model loads once, on the first item."""
        session = Session(model, settings, options)
        segmenter = region.Segmenter(settings, options) if region.wanted(options) else None
        if segmenter is not None:
            segmenter.model()  # a missing segment model stops the run before the VLM loads

        def process(item: InputItem) -> Iterator[TaskEvent]:
            parts = list(item.parts) or [item]
            key = str(item.path.resolve()) if item.path is not None else ""
            asked = options.questions + options.per_image.get(key, [])
            if not asked:
                raise InputError(f"{item.display}: no question for this image")
            engine, load_s = session.engine()
            if any(video.is_video(part) for part in parts):
                if len(parts) > 1:
                    raise InputError("--together compares images; ask about a video on its own")
                if segmenter is not None:
                    raise InputError("--point / --box mark regions of images, not of clips")
                yield from clip(item, asked, engine, load_s)
                return
            if segmenter is not None:
                yield from regions(item, asked, engine, load_s, segmenter)
                return
            start = time.perf_counter()
            pictures = [session.picture(part) for part in parts]
            decode_s = time.perf_counter() - start
            names = [part.display for part in parts]
            for number, question in enumerate(asked, 1):
                t0 = time.perf_counter()
                answer = session.ask(engine, pictures, question, DEFAULT_MAX_TOKENS)
                record = VqaRecord(input=item.display, task="vqa", model=model.info,
                                   device=engine.device, image=item.display, images=names,
                                   question=question, answer=answer.text, number=number,
                                   several=len(asked) > 1,
                                   timings=timings(load_s, t0, answer, decode_s))
                fill(record, answer, question, pictures[0] if len(pictures) == 1 else None)
                load_s = decode_s = 0.0
                yield Done(record)

        def regions(item: InputItem, asked: list[str], engine: Any, load_s: float,
                    segmenter: region.Segmenter) -> Iterator[TaskEvent]:
            found, extra = segmenter.regions(item, session.max_side)
            several = len(asked) > 1 or len(found) > 1
            for reg in found:
                if reg.error is not None:  # an empty mask fails this region only
                    yield Done(RegionVqaRecord(
                        input=item.display, task="vqa", model=model.info, device=engine.device,
                        image=item.display, images=[item.display], several=several,
                        region=reg.mask, region_number=reg.number, where=reg.where,
                        error=reg.error))
                    continue
                for number, question in enumerate(asked, 1):
                    prompt = region.instruction(question, options.region_style)
                    t0 = time.perf_counter()
                    answer = session.ask(engine, [reg.picture], prompt, DEFAULT_MAX_TOKENS)
                    record = RegionVqaRecord(
                        input=item.display, task="vqa", model=model.info, device=engine.device,
                        image=item.display, images=[item.display], question=question,
                        answer=answer.text, number=number, several=several, region=reg.mask,
                        crop=list(reg.crop), region_number=reg.number, where=reg.where,
                        timings=timings(load_s, t0, answer, 0.0))
                    record.timings.extra.update(extra)
                    fill(record, answer, prompt, reg.picture)
                    record.question = question
                    load_s, extra = 0.0, {}
                    yield Done(record)

        def clip(item: InputItem, asked: list[str], engine: Any,
                 load_s: float) -> Iterator[TaskEvent]:
            start = time.perf_counter()
            evidence = video.gather(session, engine, item, options, settings, see=False)
            gather_s = time.perf_counter() - start
            for number, question in enumerate(asked, 1):
                t0 = time.perf_counter()
                answer, _ = video.answer(session, engine, evidence, question,
                                         DEFAULT_MAX_TOKENS, options, settings)
                record = ClipVqaRecord(
                    input=item.display, task="vqa", model=model.info, device=engine.device,
                    image=item.display, images=[item.display], question=question,
                    answer=answer.text, number=number, several=len(asked) > 1,
                    duration_s=evidence.duration_s, frames=list(evidence.frames),
                    transcript=evidence.transcript, stages=dict(evidence.stages),
                    timings=Timings(load_s=load_s, run_s=time.perf_counter() - t0 + gather_s,
                                    extra={f"{k}_s": v.s for k, v in evidence.stages.items()}))
                fill(record, answer, question, evidence.pictures[0])
                load_s = gather_s = 0.0
                yield Done(record)

        return process


TASK = VqaTask()
