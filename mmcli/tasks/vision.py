"""What caption and vqa share: loading the VLM once, turning images into a prompt, asking.

Pure library code: no CLI, and the engine is imported only through ``mmcli.engines.load``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mmcli import engines
from mmcli.enginetypes import ChatEngine
from mmcli.errors import ModelUnavailableError, UsageError
from mmcli.events import ChatDone, GenerationEvent, TextDelta
from mmcli.inputs import InputItem
from mmcli.records import Record, ResolvedModel, Timings
from mmcli.settings import Settings


@dataclass
class VisionOptions:
    """Options caption and vqa share (defaults = the CLI defaults)."""

    max_tokens: int | None = None
    temperature: float = 0.0
    seed: int = 0
    max_side: int | None = None
    gpu_layers: int | None = None
    # video clips (mmcli.tasks.video): frame sampling, sound track, the merging models
    fps: float = 0.5
    max_frames: int = 8
    scenes: bool = False  # frames at scene changes instead of evenly spread
    frames: str = "auto"  # together | each | auto (together when the frames fit the context)
    audio: bool = True
    sheet: bool = False
    transcribe_model: str | None = None
    chat_model: str | None = None
    merge: bool = True  # False: a clip's record carries its notes only (chat's video bridge)
    # regions (mmcli.tasks.region): each --point / --box is one region, in original pixels
    points: list[tuple[float, float]] = field(default_factory=list)
    neg_points: list[tuple[float, float]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    segment_model: str | None = None
    region_style: str = "outline"  # outline | dim


# A region shown to the VLM (caption/vqa --point, segment --label): how the crop marks it.
STYLES = ("outline", "dim")
LEAD = {
    "outline": "This picture is a crop of a larger image; the region it is about is outlined "
               "in red.",
    "dim": "This picture is a crop of a larger image; the region it is about is shown bright "
           "and everything else is dimmed.",
}
MIN_SIDE = 224  # smaller crops are upscaled to this long side
LABEL_PROMPT = "Name the marked object in a short noun phrase (one to four words), nothing else."
LABEL_BUDGET = 12


@dataclass
class VisionRecord(Record):
    """Fields every vision record carries after the common ones."""

    prompt: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    width: int = 0
    height: int = 0


@dataclass
class Answer:
    """One reply of the model with its counts and timings."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    extra: dict[str, float] = field(default_factory=dict)


class Session:
    """A vision model loaded lazily on first use (once per process, via the registry)."""

    def __init__(self, model: ResolvedModel, settings: Settings, options: VisionOptions) -> None:
        if options.gpu_layers is not None:
            model = dataclasses.replace(
                model, options={**model.options, "n_gpu_layers": options.gpu_layers})
        self.model, self.settings, self.options = model, settings, options
        self.max_side = options.max_side if options.max_side is not None else \
            int(model.options.get("max_side", 1024))

    def engine(self) -> tuple[ChatEngine, float]:
        """``(engine, load seconds)``; refuses a model that cannot see images."""
        engine: ChatEngine
        engine, load_s = engines.load(self.model, self.settings)
        if not getattr(engine, "has_vision", False):
            raise UsageError(f"model '{self.model.name}' cannot see images: it has no mmproj "
                             "(vision projector) file",
                             hint="pick a vision model (`mmcli models list`), or pass "
                                  "--model FILE.gguf --mmproj MMPROJ.gguf")
        return engine, load_s

    def picture(self, item: InputItem) -> Any:
        """The item's image, decoded, upright, RGB and downsized (InputError if it is bad)."""
        from mmcli import images

        return images.load(item.read_bytes(), item.display, self.max_side)

    def ask(self, engine: ChatEngine, pictures: list[Any], question: str,
            default_max_tokens: int) -> Answer:
        """Ask ``question`` about ``pictures`` (all in one user turn); collect the reply."""
        from mmcli.backends.mtmd import RawImage

        parts: list[dict[str, Any]] = [
            {"type": "image_rgb", "image_rgb": RawImage(p.width, p.height, p.rgb)}
            for p in pictures]
        parts.append({"type": "text", "text": question})
        return collect(engine.chat([{"role": "user", "content": parts}],
                                   max_tokens=self.options.max_tokens or default_max_tokens,
                                   temperature=self.options.temperature,
                                   seed=self.options.seed))


def collect(events: Iterable[GenerationEvent]) -> Answer:
    """One generation's events -> the reply with its counts and the engine's timings."""
    pieces: list[str] = []
    done: ChatDone | None = None
    for event in events:
        if isinstance(event, TextDelta):
            pieces.append(event.text)
        elif isinstance(event, ChatDone):
            done = event
    if done is None:
        raise RuntimeError("the engine ended a reply without its ChatDone event")
    return Answer("".join(pieces).strip(), done.prompt_tokens, done.completion_tokens,
                  done.finish_reason, dict(done.extra, generate_s=done.total_s))


def timings(load_s: float, start: float, answer: Answer, decode_s: float) -> Timings:
    """Record timings: load, total run, image decode, and the engine's own split."""
    extra = {"decode_s": decode_s, **answer.extra}
    return Timings(load_s=load_s, run_s=time.perf_counter() - start, extra=extra)


def fill(record: VisionRecord, answer: Answer, prompt: str, picture: Any | None) -> None:
    """Copy the answer's counts (and the image size) into ``record``."""
    record.prompt = prompt
    record.prompt_tokens = answer.prompt_tokens
    record.completion_tokens = answer.completion_tokens
    record.finish_reason = answer.finish_reason
    if picture is not None:
        record.width, record.height = picture.width, picture.height


def marked(image: Any, mask: Any, bbox: list[int], style: str,
           max_side: int) -> tuple[Any, tuple[int, int, int, int]]:
    """The VLM's view of one mask: ``(mmcli.images.Picture of the marked crop, (x0, y0, x1,
    y1) of the crop in original pixels)`` (``mmcli.maskimage.marked_crop``)."""
    from mmcli import maskimage
    from mmcli.images import Picture

    rgb, crop = maskimage.marked_crop(image, mask, bbox, style, MIN_SIDE, max_side)
    size = (crop[2] - crop[0], crop[3] - crop[1])
    return Picture(int(rgb.shape[1]), int(rgb.shape[0]), rgb.tobytes(), size), crop


def short_label(text: str) -> str:
    """A reply cut to a label: its first non-empty line, without quotes or a final full stop,
    at most six words."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    words = line.strip().strip("\"'`*").rstrip(".").split()
    return " ".join(words[:6])


class Labeller:
    """Names masks with a vision model (``segment --label``), loaded once on first use."""

    def __init__(self, name: str | None, settings: Settings) -> None:
        self.name, self.settings = name, settings
        self.session: Session | None = None

    def _session(self) -> Session:
        from mmcli import manifest, resolve

        if self.session is None:
            try:
                model = resolve.resolve(self.name, "caption",
                                        manifest.load(self.settings.models_file), self.settings)
            except (UsageError, ModelUnavailableError) as exc:
                raise type(exc)(f"the label model (--label-model): {exc.message}",
                                hint=exc.hint) from None
            self.session = Session(model, self.settings, VisionOptions())
        return self.session

    def labels(self, image: Any, arrays: list[Any], bboxes: list[list[int]]
               ) -> tuple[list[str], str, dict[str, float]]:
        """A short noun phrase per mask; the model's name; ``label_load_s`` and ``label_s``."""
        session = self._session()
        engine, load_s = session.engine()
        start = time.perf_counter()
        out = []
        for array, bbox in zip(arrays, bboxes):
            picture, _ = marked(image, array, bbox, "outline", session.max_side)
            answer = session.ask(engine, [picture], f"{LEAD['outline']} {LABEL_PROMPT}",
                                 LABEL_BUDGET)
            out.append(short_label(answer.text))
        return out, session.model.name, {"label_load_s": load_s,
                                         "label_s": time.perf_counter() - start}
