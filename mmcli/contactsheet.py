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

    cols = max(1, min(COLUMNS, len(pictures)))
    rows = max(1, math.ceil(len(pictures) / cols))
    label, top = 18, 22 if title else 0
    sheet = Image.new("RGB", (cols * THUMB, top + rows * (THUMB + label)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 4), title, fill=(235, 235, 235))
    for i, (pic, t) in enumerate(zip(pictures, times)):
        img = Image.frombytes("RGB", (pic.width, pic.height), pic.rgb)
        img.thumbnail((THUMB - 4, THUMB - 4))
        x, y = (i % cols) * THUMB, top + (i // cols) * (THUMB + label)
        sheet.paste(img, (x + (THUMB - img.width) // 2, y + (THUMB - img.height) // 2))
        minutes, seconds = divmod(t, 60)
        draw.text((x + 6, y + THUMB + 2), f"{int(minutes):02d}:{seconds:04.1f}",
                  fill=(235, 235, 235))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=85)
    return out.getvalue()
