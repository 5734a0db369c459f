"""vqa: answer questions about images (one record per image and question)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mmcli.errors import InputError, UsageError
from mmcli.inputs import InputItem
from mmcli.outputs import default_render
from mmcli.records import ErrorInfo, Record, internal
from mmcli.records import ResolvedModel
from mmcli.settings import Settings
from mmcli.tasks.vision import (
    FORMATS,
    KINDS,
    STDIN_BYTES,
    Session,
    VisionOptions,
    VisionRecord,
    fill,
    suffix_for,
    timings,
)

__all__ = ["KINDS", "STDIN_BYTES", "FORMATS", "Options", "VqaRecord", "suffix", "render",
           "files", "processor", "error_record", "prepare", "ask_together"]

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


render = default_render


def suffix(fmt: str) -> str:
    """The first question's sidecar suffix (``photo.jpg.q1.txt``), used by --skip-existing."""
    return ".q1" + suffix_for(fmt)


def files(record: Record, fmt: str) -> list[tuple[str, bytes | str]]:
    """One sidecar per question: ``photo.jpg.q1.txt``, ``photo.jpg.q2.txt``…"""
    number = getattr(record, "number", 1)
    return [(f".q{number}{suffix_for(fmt)}", render(record, fmt))]


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


def processor(model: ResolvedModel, settings: Settings,
              options: Options) -> Callable[[InputItem], Iterator[Record]]:
    """``item -> [VqaRecord per question]``; the model loads once, on the first item."""
    session = Session(model, settings, options)

    def process(item: InputItem) -> Iterator[Record]:
        key = str(item.path.resolve()) if item.path is not None else ""
        asked = options.questions + options.per_image.get(key, [])
        if not asked:
            raise InputError(f"{item.display}: no question for this image")
        engine, load_s = session.engine()
        start = time.perf_counter()
        picture = session.picture(item)
        decode_s = time.perf_counter() - start
        for number, question in enumerate(asked, 1):
            t0 = time.perf_counter()
            answer = session.ask(engine, [picture], question, DEFAULT_MAX_TOKENS)
            record = VqaRecord(input=item.display, task="vqa", model=model.info,
                               device=engine.device, image=item.display,
                               images=[item.display], question=question, answer=answer.text,
                               number=number, several=len(asked) > 1,
                               timings=timings(load_s, t0, answer, decode_s))
            fill(record, answer, question, picture)
            load_s = decode_s = 0.0
            yield record

    return process


def ask_together(model: ResolvedModel, settings: Settings, items: list[InputItem],
                 options: Options) -> Iterator[VqaRecord]:
    """``--together``: every question asked once about all ``items`` in one prompt.

    Raises:
        InputError: an image cannot be read (the comparison needs all of them).
    """
    session = Session(model, settings, options)
    engine, load_s = session.engine()
    start = time.perf_counter()
    for item in items:
        if item.error:
            raise InputError(item.error)
    pictures = [session.picture(item) for item in items]
    decode_s = time.perf_counter() - start
    names = [item.display for item in items]
    for number, question in enumerate(options.questions, 1):
        t0 = time.perf_counter()
        answer = session.ask(engine, pictures, question, DEFAULT_MAX_TOKENS)
        record = VqaRecord(input=" + ".join(names), task="vqa", model=model.info,
                           device=engine.device, image=" + ".join(names), images=names,
                           question=question, answer=answer.text, number=number,
                           several=len(options.questions) > 1,
                           timings=timings(load_s, t0, answer, decode_s))
        fill(record, answer, question, None)
        load_s = decode_s = 0.0
        yield record


def error_record(item: InputItem, info: ErrorInfo, model: ResolvedModel) -> Record:
    """The record of an image that failed."""
    return VqaRecord(input=item.display, task="vqa", model=model.info, image=item.display,
                     images=[item.display], error=info)
