"""``segment``: Segment-Anything masks for images, from prompts or for everything (``--auto``).

Follows the task contract of ``mmcli.tasks``. numpy, Pillow and the SAM backend are imported
inside functions, so importing this module (e.g. for ``Options``) stays cheap.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcli import console, engines
from mmcli.atomic import atomic_write
from mmcli.enginetypes import SegmentationEngine
from mmcli.errors import UsageError
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.journal import not_in_key
from mmcli.records import Record, ResolvedModel, Timings, internal
from mmcli.settings import Settings
from mmcli.tasks.base import Process, Sidecar, Task

POINT_FORM = "--point X,Y / --neg-point X,Y (pixels, 0 <= X <= width, 0 <= Y <= height)"
BOX_FORM = "--box X1,Y1,X2,Y2 (pixels, X1 < X2, Y1 < Y2, inside the image)"


@dataclass
class AutoSettings:
    """``--auto`` knobs (SAM's automatic mask generator defaults, CPU-sized grid)."""

    points_per_side: int = 16
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_thresh: float = 0.95
    nms_thresh: float = 0.7
    min_area: int = 0


@dataclass
class Options(AutoSettings):
    """Options of ``mmcli segment`` (defaults = the CLI defaults). Coordinates are pixels."""

    points: list[tuple[float, float]] = field(default_factory=list)
    neg_points: list[tuple[float, float]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    multimask: bool = False
    auto: bool = False
    overlay: bool = False
    polygons: bool = False
    label: bool = False  # name every mask with a vision model (mmcli.tasks.vision.Labeller)
    label_model: str | None = None
    embeddings_cache: str | None = not_in_key()  # where, not what: outputs are the same


@dataclass
class MaskResult:
    """One mask: COCO RLE ``segmentation`` (pycocotools' compressed string), ``bbox`` (x, y, w,
    h), ``area`` in pixels, the decoder's ``predicted_iou``, ``stability_score``, the
    ``prompt`` that produced it (original pixels), ``polygons`` with ``--format polygon``, and
    ``label`` (a short noun phrase from the vision model) with ``--label``."""

    segmentation: dict[str, Any]
    bbox: list[int]
    area: int
    predicted_iou: float
    stability_score: float
    prompt: dict[str, Any]
    polygons: list[dict[str, Any]] | None = None
    label: str | None = None


@dataclass
class SegmentRecord(Record):
    """Masks for one image, largest area first with ``--auto``, by prompt then score otherwise.

    ``embedding`` says whether the encoder ran (``computed``) or came from ``--embeddings-cache``;
    ``label_model`` names the vision model that wrote the masks' ``label`` (``--label``).
    """

    width: int = 0
    height: int = 0
    embedding: str = "computed"
    masks: list[MaskResult] = field(default_factory=list)
    label_model: str | None = None
    arrays: Any = internal(None)  # boolean numpy masks, same order as ``masks``
    image: Any = internal(None)  # RGB uint8 array, kept for the overlay picture
    want_overlay: bool = internal(False)

    def text(self) -> str:
        """``3 masks 640x488: area 9120 iou 0.95 stability 0.99 box 260,180,120,120; …``."""
        if self.error is not None:
            return f"error: {self.error.message}"
        parts = [("" if m.label is None else f"{m.label}: ")
                 + f"area {m.area} iou {m.predicted_iou:.2f} stability {m.stability_score:.2f} "
                 f"box {','.join(str(v) for v in m.bbox)}" for m in self.masks]
        head = f"{len(self.masks)} mask{'s' if len(self.masks) != 1 else ''} " \
               f"{self.width}x{self.height}"
        return head + (": " + "; ".join(parts) if parts else "")


def check(options: Options, fmt: str | None = None) -> None:
    """Reject prompt combinations SAM cannot take (usage errors, exit 2)."""
    prompted = options.points or options.neg_points or options.boxes
    if options.auto and prompted:
        raise UsageError("--auto finds every object itself; drop --point/--neg-point/--box",
                         hint="or drop --auto to segment what the prompts point at")
    if not options.auto and not prompted:
        raise UsageError("segment needs a prompt or --auto",
                         hint=f"give {POINT_FORM}, {BOX_FORM}, or --auto")
    if options.neg_points and not (options.points or options.boxes):
        raise UsageError("--neg-point only removes areas; add a --point or --box")
    if len(options.boxes) > 1 and (options.points or options.neg_points):
        raise UsageError("several --box prompts are separate objects and cannot share clicks",
                         hint="use one --box with --point/--neg-point, or boxes alone")
    if options.label_model is not None and not options.label:
        raise UsageError("--label-model names the masks; add --label")
    if options.points_per_side < 1:
        raise UsageError("--points-per-side must be at least 1")
    if options.points_per_batch < 1:  # a library option (no CLI flag): name the field
        raise UsageError("Options.points_per_batch must be at least 1")
    for x1, y1, x2, y2 in options.boxes:
        if not (x1 < x2 and y1 < y2):
            raise UsageError(f"box {x1:g},{y1:g},{x2:g},{y2:g} is empty", hint=BOX_FORM)


def prompts_for(options: Options, width: int, height: int, display: str) -> list[Any]:
    """The decoder prompts, after checking every coordinate lies in the image (else exit 2)."""
    from mmcli.tasks.segment_core import Prompt

    check_inside(options, width, height, display)
    clicks = [*options.points, *options.neg_points]
    labels = [1] * len(options.points) + [0] * len(options.neg_points)
    if len(options.boxes) > 1:
        return [Prompt([], [], box) for box in options.boxes]
    return [Prompt(list(clicks), labels, options.boxes[0] if options.boxes else None)]


def check_inside(options: Any, width: int, height: int, display: str) -> None:
    """Every ``points`` / ``neg_points`` / ``boxes`` coordinate of ``options`` lies in the
    image (else a usage error, exit 2: the same prompts would miss every image)."""

    def inside(x: float, y: float, form: str) -> None:
        if not (0 <= x <= width and 0 <= y <= height):
            raise UsageError(f"{x:g},{y:g} is outside {display} ({width}x{height})", hint=form)

    for x, y in [*options.points, *options.neg_points]:
        inside(x, y, POINT_FORM)
    for x1, y1, x2, y2 in options.boxes:
        inside(x1, y1, BOX_FORM)
        inside(x2, y2, BOX_FORM)


def load_image(item: InputItem) -> tuple[Any, bytes]:
    """RGB uint8 array (upright, pixel limit checked: ``mmcli.images.open_rgb``) and the raw
    bytes; InputError if unreadable."""
    import numpy as np

    from mmcli import images

    data = item.read_bytes()
    img, _ = images.open_rgb(data, item.display)
    return np.asarray(img, dtype=np.uint8), data


def embedding_for(engine: SegmentationEngine, image: Any, data: bytes,
                  cache: str | None) -> tuple[Any, bool]:
    """The image embedding, from ``--embeddings-cache`` (keyed by content + model) or fresh."""
    from mmcli.backends.sam import Embedding

    path = None
    if cache:
        digest = hashlib.sha256(data).hexdigest()
        path = Path(cache) / engine.cache_key() / f"{digest}.npz"
        if path.is_file():
            try:
                return Embedding.from_bytes(path.read_bytes()), True
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is recomputed and overwritten
    emb = engine.embed(image)
    if path is not None:
        atomic_write(path, emb.to_bytes())
    return emb, False


def _masks(engine: SegmentationEngine, emb: Any, prompts: list[Any] | None, options: Options,
           quiet: bool, warned: list[bool]) -> list[Any]:
    from mmcli.tasks import segment_core as core

    if prompts is not None:
        found = core.prompt_masks(engine, emb, prompts, options.multimask)
        if options.multimask and len(found) == len(prompts) and not warned:
            warned.append(True)  # once per run, not once per image
            console.warn("this model's decoder returns one mask per prompt, so --multimask "
                         "has no alternatives to show (SAM exports with 4 outputs do)", quiet=quiet)
        return found
    return core.auto_masks(engine, emb, options)


def mask_result(found: Any, polygons: list[dict[str, Any]] | None = None) -> MaskResult:
    """The JSON mask of one ``segment_core.Found`` (segment's ``masks``, a region's
    ``region``)."""
    return MaskResult(found.rle, found.bbox, found.area, found.predicted_iou,
                      found.stability_score, found.prompt.to_dict(), polygons)


def _record(item: InputItem, model: ResolvedModel, device: str, image: Any, found: list[Any],
            options: Options, cached: bool, timings: Timings,
            labeller: Any = None) -> SegmentRecord:
    from mmcli import maskimage
    from mmcli import masks as mk

    arrays = [f.mask if f.mask is not None else mk.decode_rle(f.rle) for f in found]
    results = [mask_result(f, maskimage.polygons(a) if options.polygons else None)
               for f, a in zip(found, arrays)]
    label_model = None
    if labeller is not None and results:
        names, label_model, extra = labeller.labels(image, arrays, [m.bbox for m in results])
        for result, name in zip(results, names):
            result.label = name
        timings.extra.update(extra)
        timings.run_s += extra["label_s"]
    return SegmentRecord(input=item.display, task="segment", model=model.info, device=device,
                         timings=timings, width=int(image.shape[1]), height=int(image.shape[0]),
                         embedding="cached" if cached else "computed", masks=results,
                         label_model=label_model, arrays=arrays,
                         image=image if options.overlay else None,
                         want_overlay=options.overlay)


class SegmentTask(Task[Options]):
    """``segment``: images in, a ``SegmentRecord`` of masks each (JSON, PNGs, overlay)."""

    name = "segment"
    kinds = frozenset({"image"})
    formats = ("text", "json", "jsonl", "png", "polygon")
    options_type = Options
    record_type = SegmentRecord

    def suffix(self, fmt: str) -> str:
        """Sidecar suffix (the first file for ``png``: ``photo.jpg.mask-0.png``)."""
        return {"text": ".txt", "png": ".mask-0.png"}.get(fmt, ".json")

    def render(self, record: Record, fmt: str) -> str:
        """Text for stdout / ``-o``: JSON (indented for ``json``), one line per image else."""
        if fmt == "json":
            return record.to_json(indent=2) + "\n"
        if fmt in ("jsonl", "polygon"):
            return record.to_json() + "\n"
        return record.text() + "\n"

    def files(self, record: Record, fmt: str) -> list[Sidecar]:
        """Sidecars for ``--output-dir``: mask PNGs (``png``) or the text/JSON, + overlay."""
        from mmcli import maskimage

        assert isinstance(record, SegmentRecord)
        arrays = record.arrays or []
        out: list[Sidecar]
        if fmt == "png":
            out = [(f".mask-{i}.png", maskimage.mask_png(a)) for i, a in enumerate(arrays)]
        else:
            out = [(self.suffix(fmt), self.render(record, fmt))]
        if record.want_overlay and record.image is not None:
            labels = [m.label for m in record.masks]
            out.append((".overlay.png", maskimage.overlay_png(
                record.image, arrays, labels=labels if any(labels) else None)))
        return out

    def check(self, fmt: str, options: Any, *, output_dir: bool) -> None:
        """Prompt combinations SAM cannot take are usage errors (exit 2)."""
        if (fmt == "png" or options.overlay) and not output_dir:
            raise UsageError("--format png and --overlay write pictures and need --output-dir DIR")
        check(options, fmt)

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        """``item -> Done(SegmentRecord)``; the engine loads on the first item."""
        check(options)
        warned: list[bool] = []
        labeller = None
        if options.label:
            from mmcli.tasks.vision import Labeller

            labeller = Labeller(options.label_model, settings)

        def process(item: InputItem) -> Iterator[TaskEvent]:
            engine: SegmentationEngine
            engine, load_s = engines.load(model, settings)
            start = time.perf_counter()
            image, data = load_image(item)
            h, w = image.shape[:2]
            prompts = None if options.auto else prompts_for(options, w, h, item.display)
            t_enc = time.perf_counter()
            emb, cached = embedding_for(engine, image, data, options.embeddings_cache)
            t_dec = time.perf_counter()
            found = _masks(engine, emb, prompts, options, settings.quiet, warned)
            t_end = time.perf_counter()
            yield Done(_record(item, model, engine.device, image, found, options, cached,
                               Timings(load_s=load_s, run_s=t_end - start,
                                       extra={"encode_s": t_dec - t_enc,
                                              "decode_s": t_end - t_dec}), labeller))

        return process


TASK = SegmentTask()
