"""Contact sheets: sampled video frames in a grid, each labelled with its time (Pillow)."""

from __future__ import annotations

import io
import math
from typing import Any

THUMB = 240  # long side of one cell
COLUMNS = 4


def render(pictures: list[Any], times: list[float], title: str = "") -> bytes:
    """A JPEG of ``pictures`` (``mmcli.images.Picture``) in a grid, ``mm:ss.s`` under each.

    Args:
        pictures: the frames, in time order.
        times: each frame's time in seconds.
        title: a line written above the grid (the clip's name).
    Returns:
        The JPEG bytes.
    """
    from PIL import Image, ImageDraw

    thumbs = []
    for pic in pictures:
        img = Image.frombytes("RGB", (pic.width, pic.height), pic.rgb)
        img.thumbnail((THUMB, THUMB))
        thumbs.append(img)
    cols = max(1, min(COLUMNS, len(thumbs)))
    rows = max(1, math.ceil(len(thumbs) / cols))
    pad, label, top = 4, 16, 22 if title else 4
    cell_w = max((t.width for t in thumbs), default=THUMB) + pad
    cell_h = max((t.height for t in thumbs), default=THUMB) + pad + label
    sheet = Image.new("RGB", (cols * cell_w + pad, top + rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad + 2, 4), title, fill=(235, 235, 235))
    for i, (img, t) in enumerate(zip(thumbs, times)):
        x, y = pad + (i % cols) * cell_w, top + (i // cols) * cell_h
        sheet.paste(img, (x + (cell_w - pad - img.width) // 2, y))
        minutes, seconds = divmod(t, 60)
        draw.text((x + 2, y + cell_h - pad - label + 2), f"{int(minutes):02d}:{seconds:04.1f}",
                  fill=(235, 235, 235))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=85)
    return out.getvalue()
