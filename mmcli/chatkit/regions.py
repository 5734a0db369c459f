"""``/attach photo.jpg --point X,Y`` (``--box X0,Y0,X1,Y1``, ``--neg-point X,Y``): regions of an
image as chat attachments.

Each positive point and each box is one region, segmented by the segment model (chat's
``--segment-model``, else segment's default) through caption's own region code
(``mmcli.tasks.region``: SAM loaded once per process, one encoder run per image, the same
marked crop). A region enters the prompt as that crop followed by the sentence saying what is
marked; a chat model that cannot see gets caption's description of the crop instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcli.chatkit.attachments import Attachment, RegionPart
from mmcli.errors import InputError, UsageError
from mmcli.settings import Settings

FLAGS = {"--point": 2, "--neg-point": 2, "--box": 4}
USAGE = "/attach IMAGE --point X,Y | --box X0,Y0,X1,Y1 [--neg-point X,Y]"


def split(words: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """An /attach line's words -> ``(paths, {flag: [values]})`` (``--point=X,Y`` works too).

    Raises:
        UsageError: an unknown ``--`` option, a flag without its value, or region flags with
            other than one path.
    """
    paths: list[str] = []
    asked: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        word = words[i]
        flag, eq, value = word.partition("=")
        if flag in FLAGS:
            if not eq:
                if i + 1 >= len(words):
                    raise UsageError(f"/attach: {flag} needs a value", hint=USAGE)
                i += 1
                value = words[i]
            asked.setdefault(flag, []).append(value)
        elif word.startswith("--") and not Path(word).exists():
            raise UsageError(f"/attach: unknown option {word}", hint=USAGE)
        else:
            paths.append(word)
        i += 1
    if asked and len(paths) != 1:
        raise UsageError("/attach: --point / --box mark regions of one image", hint=USAGE)
    if asked and not (asked.get("--point") or asked.get("--box")):
        raise UsageError("/attach: --neg-point only removes areas; add a --point or --box",
                         hint=USAGE)
    return paths, asked


def options(asked: dict[str, list[str]], segment_model: str | None) -> Any:
    """The ``VisionOptions`` of caption's region path for these flags (usage errors for a
    malformed number or a box of zero area)."""
    from mmcli.cli.segment import parse_numbers
    from mmcli.tasks import region
    from mmcli.tasks.segment import BOX_FORM, POINT_FORM
    from mmcli.tasks.vision import VisionOptions

    def numbers(flag: str, form: str) -> list[Any]:
        return [parse_numbers(v, FLAGS[flag], flag, form) for v in asked.get(flag, [])]

    out = VisionOptions(points=numbers("--point", POINT_FORM),
                        neg_points=numbers("--neg-point", POINT_FORM),
                        boxes=numbers("--box", BOX_FORM), segment_model=segment_model)
    region.check(out)
    return out


def attach(att: Attachment, asked: dict[str, list[str]], settings: Settings,
           segment_model: str | None, max_side: int) -> tuple[list[Attachment], list[str]]:
    """The regions of the image ``att``: one attachment per region, and one error message per
    region that could not be made (its mask is empty).

    Raises:
        UsageError: not an image, a malformed number, a box of zero area, a point or box
            outside the image, an unknown segment model.
        ModelUnavailableError: the segment model is not available (offline: its pull hint).
        InputError: the image cannot be decoded.
    """
    if att.kind != "image":
        raise UsageError(f"{att.name}: --point / --box mark regions of images, not of "
                         f"{att.kind} files", hint=USAGE)
    vision = options(asked, segment_model)
    parts = [RegionPart(where="", points=[p], neg_points=list(vision.neg_points))
             for p in vision.points]
    parts += [RegionPart(where="", neg_points=list(vision.neg_points), box=b)
              for b in vision.boxes]
    segment(att, parts, settings, segment_model, max_side)
    made = [Attachment(att.path, att.kind, att.data, sha256=att.sha256, region=p)
            for p in parts if p.png]
    return made, [p.note for p in parts if not p.png]


def segment(att: Attachment, parts: list[RegionPart], settings: Settings,
            segment_model: str | None, max_side: int) -> None:
    """Fill every part's mask, crop, marked PNG and notes from the image ``att.data`` (one
    encoder run); a part whose mask is empty keeps no PNG and its ``note`` is the error."""
    from mmcli.chatkit.bridge import png
    from mmcli.inputs import InputItem
    from mmcli.tasks import region
    from mmcli.tasks.caption import REGION_DETAILS
    from mmcli.tasks.vision import LEAD, VisionOptions

    vision = VisionOptions(
        points=[q for p in parts for q in p.points], boxes=[p.box for p in parts if p.box],
        neg_points=parts[0].neg_points if parts else [], segment_model=segment_model)
    ordered = [p for p in parts if p.points] + [p for p in parts if p.box]
    item = InputItem(att.path, Path(att.path) if att.path != "-" else None, Path(att.name),
                     data=att.data)
    found, _ = region.Segmenter(settings, vision).regions(item, max_side)
    for part, reg in zip(ordered, found):
        part.where, part.mask = reg.where, reg.mask
        if reg.error is not None:
            part.note = reg.error.message
            continue
        part.crop, part.png = list(reg.crop), png(reg.picture)
        part.note = LEAD[part.style]
        part.instruction = region.instruction(REGION_DETAILS["normal"], part.style)


def restore(att: Attachment, settings: Settings, segment_model: str | None,
            max_side: int) -> None:
    """Segment a loaded transcript's region again (the crop is not saved), from the file."""
    assert att.region is not None
    segment(att, [att.region], settings, segment_model, max_side)
    if not att.region.png:
        raise InputError(att.region.note)
