"""Regions for caption and vqa: SAM masks at ``--point`` / ``--box``, and the crop the VLM sees.

Each positive ``--point`` and each ``--box`` is one region; ``--neg-point`` clicks are added to
every region's prompt. The segment model (``--segment-model``, else segment's default) loads
once per process through ``mmcli.engines.load``; its encoder runs once per image however many
regions are asked. Masks reuse segment's own code (``segment_core``, ``segment.mask_result``),
so a region is the same JSON object as one of segment's ``masks``. numpy, Pillow and the SAM
backend are imported inside functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mmcli import engines, manifest, resolve
from mmcli.enginetypes import SegmentationEngine
from mmcli.errors import InputError, ModelUnavailableError, UsageError
from mmcli.inputs import InputItem
from mmcli.records import ErrorInfo, ResolvedModel
from mmcli.settings import Settings
from mmcli.tasks import segment
from mmcli.tasks.vision import LEAD, STYLES, VisionOptions, marked


@dataclass
class Region:
    """One region of one image.

    Attributes:
        number: 1-based, in the order of the options (points first, then boxes).
        where: the prompt as typed (``320,240`` or ``10,10,50,40``).
        mask: the JSON mask (``segment.MaskResult``), original-image pixels.
        picture: the crop sent to the VLM (``mmcli.images.Picture``; None when ``error``).
        crop: ``(x0, y0, x1, y1)`` of the crop in original pixels.
        error: why this region cannot be shown (its mask is empty); the image's other
            regions go on.
    """

    number: int
    where: str
    mask: segment.MaskResult
    picture: Any
    crop: tuple[int, int, int, int]
    error: ErrorInfo | None = None


def wanted(options: VisionOptions) -> bool:
    """True when the run asks about regions (a ``--point`` or a ``--box``)."""
    return bool(options.points or options.boxes)


def check(options: VisionOptions) -> None:
    """Usage errors of the region options, before anything loads."""
    if options.neg_points and not wanted(options):
        raise UsageError("--neg-point only removes areas; add a --point or --box")
    if options.region_style not in STYLES:
        raise UsageError(f"--region-style {options.region_style!r} is not one of "
                         f"{', '.join(STYLES)}")
    if options.segment_model is not None and not wanted(options):
        raise UsageError("--segment-model segments regions; add a --point or --box")
    for x1, y1, x2, y2 in options.boxes:
        if not (x1 < x2 and y1 < y2):
            raise UsageError(f"box {x1:g},{y1:g},{x2:g},{y2:g} is empty", hint=segment.BOX_FORM)


def instruction(text: str, style: str) -> str:
    """``text`` preceded by the sentence saying what is marked in the crop."""
    return f"{LEAD[style]} {text}"


def prompts(options: VisionOptions, width: int, height: int, display: str) -> list[Any]:
    """One decoder prompt per region (usage error, exit 2, for a coordinate off the image)."""
    from mmcli.tasks.segment_core import Prompt

    segment.check_inside(options, width, height, display)
    neg = list(options.neg_points)
    out = [Prompt([p, *neg], [1] + [0] * len(neg)) for p in options.points]
    out += [Prompt(list(neg), [0] * len(neg), box) for box in options.boxes]
    return out


def _where(options: VisionOptions) -> list[str]:
    return [",".join(f"{v:g}" for v in spec) for spec in [*options.points, *options.boxes]]


class Segmenter:
    """The segment model of a caption / vqa run, resolved and loaded on first use."""

    def __init__(self, settings: Settings, options: VisionOptions) -> None:
        self.settings, self.options = settings, options
        self._model: ResolvedModel | None = None

    def model(self) -> ResolvedModel:
        """The segment model (errors name ``--segment-model``, not the VLM)."""
        if self._model is None:
            try:
                self._model = resolve.resolve(self.options.segment_model, "segment",
                                              manifest.load(self.settings.models_file),
                                              self.settings)
            except (UsageError, ModelUnavailableError) as exc:
                raise type(exc)(f"the region's segment model (--segment-model): {exc.message}",
                                hint=exc.hint) from None
        return self._model

    def regions(self, item: InputItem, max_side: int) -> tuple[list[Region], dict[str, float]]:
        """Every region of ``item`` with its crop; and timings (``segment_load_s``,
        ``segment_encode_s`` (SAM's encoder; the VLM's is ``encode_s``), ``segment_mask_s``,
        ``crop_s``).

        A region whose mask is empty comes back with ``error`` set (no picture): only that
        region fails.

        Raises:
            UsageError: a point or box outside the image.
            InputError: an unreadable image.
        """
        from mmcli import masks as mk
        from mmcli.tasks import segment_core as core

        engine: SegmentationEngine
        engine, load_s = engines.load(self.model(), self.settings)
        image, data = segment.load_image(item)
        h, w = image.shape[:2]
        asked = prompts(self.options, w, h, item.display)
        t0 = time.perf_counter()
        emb, _ = segment.embedding_for(engine, image, data, None)
        t1 = time.perf_counter()
        found = core.prompt_masks(engine, emb, asked, False)
        t2 = time.perf_counter()
        out = []
        for number, (where, f) in enumerate(zip(_where(self.options), found), 1):
            if f.area == 0:
                problem = InputError(f"{item.display}: the region at {where} is empty (the "
                                     "segment model found no mask there)")
                out.append(Region(number, where, segment.mask_result(f), None, (0, 0, 0, 0),
                                  ErrorInfo.from_exception(problem)))
                continue
            array = f.mask if f.mask is not None else mk.decode_rle(f.rle)
            picture, crop = marked(image, array, f.bbox, self.options.region_style, max_side)
            out.append(Region(number, where, segment.mask_result(f), picture, crop))
        t3 = time.perf_counter()
        return out, {"segment_load_s": load_s, "segment_encode_s": t1 - t0,
                     "segment_mask_s": t2 - t1, "crop_s": t3 - t2}
