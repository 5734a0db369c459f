"""Video clips for caption and vqa: sampled frames + the sound track's transcript, merged.

A clip becomes ``Evidence``: a few frames (``mmcli.backends.frames``, imported lazily) seen by
the vision model — all in one prompt when they fit its context, else one by one — and the
sound track transcribed by the transcribe task's own processor (same silence rules, same
errors). ``caption`` then has the chat model write one caption from the timed notes; ``vqa``
asks its question of the same notes. Each stage records its model and seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcli import engines, manifest, resolve, tasks
from mmcli.enginetypes import ChatEngine
from mmcli.errors import InputError, ModelUnavailableError, UsageError
from mmcli.events import Done
from mmcli.inputs import InputItem, kind_of, sniff
from mmcli.records import ResolvedModel
from mmcli.settings import Settings
from mmcli.tasks.vision import Answer, Session, VisionOptions, collect

FRAME_PROMPT = "Describe this image in one sentence."
FRAME_BUDGET = 64
FRAME_MODES = ("auto", "together", "each")
MERGE_BUDGET = 160


@dataclass
class FrameNote:
    """One sampled frame: its time in seconds and the vision model's caption (null when the
    frames were described together)."""

    t: float
    caption: str | None = None


@dataclass
class Line:
    """A transcript segment: seconds from the clip's start and its text."""

    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """The sound track's words."""

    text: str
    segments: list[Line] = field(default_factory=list)


@dataclass
class Stage:
    """Which model did one stage, how long it ran and how long its model took to load
    (seconds; the load is 0 once the model is in memory)."""

    model: str | None
    s: float
    load_s: float = 0.0


@dataclass
class Evidence:
    """Everything known about one clip before the final answer."""

    duration_s: float
    frames: list[FrameNote]
    pictures: list[Any]  # mmcli.images.Picture per frame (kept for --frames together / --sheet)
    visual: str  # the vision model's description of all frames together ("" with --frames each)
    transcript: Transcript | None
    stages: dict[str, Stage]

    def notes(self) -> str:
        """The timed notes a text model reads: frame captions, then the transcript."""
        lines = [f"Video clip, {self.duration_s:.1f} seconds."]
        if self.visual:
            lines.append(f"What the frames show: {self.visual}")
        lines += [f"[{f.t:.1f}s] frame: {f.caption}" for f in self.frames if f.caption]
        if self.transcript is None:
            lines.append("(no sound track)")
        elif not self.transcript.segments:
            lines.append("(no speech)")
        else:
            lines += [f"[{s.start:.1f}-{s.end:.1f}s] speech: {s.text}"
                      for s in self.transcript.segments]
        return "\n".join(lines)


def is_video(item: InputItem) -> bool:
    """True when the item is a video file (content first, then extension)."""
    if item.data is not None:
        return sniff(item.data[:16]) == "video"
    return item.path is not None and kind_of(item.path) == "video"


def source(item: InputItem) -> Path | bytes:
    """The file path or the stdin bytes of a clip."""
    if item.data is not None:
        return item.data
    assert item.path is not None
    return item.path


def check(options: VisionOptions) -> None:
    """Usage errors of the video options, before anything loads."""
    if options.frames not in FRAME_MODES:
        raise UsageError(f"--frames {options.frames!r} is not one of {', '.join(FRAME_MODES)}")
    if options.fps <= 0 or options.max_frames < 1:
        raise UsageError("--fps must be above 0 and --max-frames at least 1")


def other_model(task: str, name: str | None, settings: Settings) -> ResolvedModel:
    """The model of another task (the sound track's transcribe model, the merging chat model).

    Raises:
        UsageError / ModelUnavailableError: for the whole run, naming the option to change.
    """
    try:
        return resolve.resolve(name, task, manifest.load(settings.models_file), settings)
    except (UsageError, ModelUnavailableError) as exc:
        option = "--chat-model" if task == "chat" else "--transcribe-model"
        raise type(exc)(f"a video clip's {task} model ({option}): {exc.message}",
                        hint=exc.hint) from None


def gather(session: Session, engine: ChatEngine, item: InputItem, options: VisionOptions,
           settings: Settings, *, see: bool = True) -> Evidence:
    """Sample, see (unless ``see`` is False: vqa shows the frames with its question) and hear
    one clip.

    Raises:
        InputError: not a readable video, no video stream, no decodable frame.
    """
    from mmcli.backends import frames as sampler

    src = source(item)
    t0 = time.perf_counter()
    info = sampler.probe(src)
    if not info.has_video:
        raise sampler.no_video(info.has_audio)
    at = sampler.scene_times(src, options.max_frames) if options.scenes else None
    sampled = list(sampler.sample(src, fps=options.fps, max_frames=options.max_frames,
                                  max_side=session.max_side, name=item.display, at=at))
    stages = {"sample": Stage(None, time.perf_counter() - t0)}
    notes = [FrameNote(f.t) for f in sampled]
    pictures = [f.picture for f in sampled]
    evidence = Evidence(info.duration_s, notes, pictures, "", None, stages)
    if see:
        describe(session, engine, evidence, options.frames)
    if options.audio and info.has_audio:
        t2 = time.perf_counter()
        model = other_model("transcribe", options.transcribe_model, settings)
        evidence.transcript, load_s = _hear(model, item, settings)
        stages["transcribe"] = Stage(model.name, time.perf_counter() - t2 - load_s, load_s)
    return evidence


def describe(session: Session, engine: ChatEngine, evidence: Evidence, mode: str) -> None:
    """The ``vision`` stage: fill ``evidence.visual`` or each frame's caption."""
    start = time.perf_counter()
    evidence.visual = _see(session, engine, evidence.frames, evidence.pictures, mode)
    evidence.stages["vision"] = Stage(session.model.name, time.perf_counter() - start)


def _see(session: Session, engine: ChatEngine, notes: list[FrameNote], pictures: list[Any],
         mode: str) -> str:
    """Describe the frames: together (one prompt) when asked or when they fit, else each."""
    if mode != "each":
        stamps = ", ".join(f"{n.t:.1f}s" for n in notes)
        question = (f"These are {len(notes)} frames of one video, in order (at {stamps}). "
                    "Describe what the video shows.")
        try:
            return session.ask(engine, pictures, question, FRAME_BUDGET * 2).text
        except InputError:
            if mode == "together":
                raise  # asked for explicitly: the context error names the fix
    for note, picture in zip(notes, pictures):
        note.caption = session.ask(engine, [picture], FRAME_PROMPT, FRAME_BUDGET).text
    return ""


def _hear(model: ResolvedModel, item: InputItem,
          settings: Settings) -> tuple[Transcript, float]:
    """The transcribe task's own processor on the clip (its sound track); ``(transcript,
    model load seconds)``."""
    task = tasks.get("transcribe")
    process = task.processor(model, settings, task.options_type())
    record: Any = None
    for event in process(item):
        if isinstance(event, Done):
            record = event.record
    assert record is not None
    if record.error is not None:
        raise InputError(f"sound track: {record.error.message}")
    return Transcript(record.transcript.strip(),
                      [Line(s.start, s.end, s.text.strip()) for s in record.segments]
                      ), record.timings.load_s


def write(evidence: Evidence, instruction: str, options: VisionOptions, settings: Settings,
          *, stage: str = "merge", budget: int = MERGE_BUDGET) -> Answer:
    """Ask the chat model ``instruction`` about the clip's notes (recorded as ``stage``)."""
    start = time.perf_counter()
    model = other_model("chat", options.chat_model, settings)
    engine: ChatEngine
    engine, load_s = engines.load(model, settings)
    prompt = f"{evidence.notes()}\n\n{instruction}"
    reply = ask_text(engine, prompt, options.max_tokens or budget, options)
    evidence.stages[stage] = Stage(model.name, time.perf_counter() - start - load_s, load_s)
    return reply


def answer(session: Session, engine: ChatEngine, evidence: Evidence, question: str,
           budget: int, options: VisionOptions, settings: Settings) -> tuple[Answer, str]:
    """Answer ``question`` about the clip: the vision model sees the frames with the timed
    transcript (one prompt); when that does not fit its context (or ``--frames each``), the
    frames are captioned one by one and the chat model answers from the notes. Returns the
    answer and the name of the model that gave it."""
    if options.frames != "each":
        start = time.perf_counter()
        spoken = (Evidence(evidence.duration_s, evidence.frames, [], "", evidence.transcript,
                           {}).notes())
        prompt = (f"These are {len(evidence.frames)} frames of one video, in order "
                  f"(at {', '.join(f'{n.t:.1f}s' for n in evidence.frames)}).\n{spoken}\n\n"
                  f"Question: {question}")
        try:
            reply = session.ask(engine, evidence.pictures, prompt, budget)
            evidence.stages["answer"] = Stage(session.model.name, time.perf_counter() - start)
            return reply, session.model.name
        except InputError:
            if options.frames == "together":
                raise
    if "vision" not in evidence.stages:
        describe(session, engine, evidence, "each")
    reply = write(evidence, f"Question: {question}\nAnswer briefly.", options, settings,
                  stage="answer", budget=budget)
    return reply, evidence.stages["answer"].model or ""


def ask_text(engine: ChatEngine, prompt: str, budget: int, options: VisionOptions) -> Answer:
    """One text-only user turn; the reply with its counts."""
    return collect(engine.chat([{"role": "user", "content": prompt}], max_tokens=budget,
                               temperature=options.temperature, seed=options.seed))


def sheet(evidence: Evidence, name: str) -> bytes:
    """A contact-sheet JPEG of the sampled frames, each labelled with its time."""
    from mmcli.contactsheet import render

    return render(evidence.pictures, [n.t for n in evidence.frames], Path(name).name)

