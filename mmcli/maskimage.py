"""Pictures and outlines of binary masks: mask PNGs, overlay PNGs, polygons with holes.

Pure numpy + Pillow (no OpenCV): contours are traced on the pixel-edge grid, so polygon
vertices are pixel corners and a polygon filled with the even-odd rule gives the mask back.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Sequence

import numpy as np

# Direction vectors in image coordinates (x right, y down), and the priority of turns at a
# vertex shared by two diagonal pixels: turning right keeps diagonal neighbours apart.
_RIGHT = {(1, 0): (0, 1), (0, 1): (-1, 0), (-1, 0): (0, -1), (0, -1): (1, 0)}
_LEFT = {v: k for k, v in _RIGHT.items()}


def _edges(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boundary edges ``(x0, y0, x1, y1)`` between pixel corners, foreground on the right."""
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    fg = m[1:-1, 1:-1]
    out: list[tuple[int, int, int, int]] = []
    # (neighbour that must be background, start corner offset, end corner offset)
    sides = (
        (m[:-2, 1:-1], (0, 0), (1, 0)),   # top edge, walking right
        (m[2:, 1:-1], (1, 1), (0, 1)),    # bottom edge, walking left
        (m[1:-1, :-2], (0, 1), (0, 0)),   # left edge, walking up
        (m[1:-1, 2:], (1, 0), (1, 1)),    # right edge, walking down
    )
    for neighbour, (sx, sy), (ex, ey) in sides:
        ys, xs = np.nonzero(fg & ~neighbour)
        out.extend(zip((xs + sx).tolist(), (ys + sy).tolist(), (xs + ex).tolist(),
                       (ys + ey).tolist()))
    return out


def _signed_area(points: Sequence[tuple[int, int]]) -> float:
    """Shoelace area; positive for outer boundaries (clockwise on screen), negative for holes."""
    total = 0
    for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]]):
        total += x0 * y1 - x1 * y0
    return total / 2


def _corners(loop: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop vertices in the middle of straight runs."""
    n = len(loop)
    keep = []
    for i, (x, y) in enumerate(loop):
        px, py = loop[i - 1]
        nx, ny = loop[(i + 1) % n]
        if (x - px, y - py) != (nx - x, ny - y):
            keep.append((x, y))
    return keep


def polygons(mask: np.ndarray) -> list[dict[str, object]]:
    """Every boundary of ``mask`` as ``{"points": [[x, y], ...], "hole": bool}``.

    Outer boundaries are clockwise on screen (y down) and holes counter-clockwise; vertices
    are pixel corners. Order: by first vertex (top-left first), so output is deterministic.
    """
    outgoing: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for x0, y0, x1, y1 in _edges(mask):
        outgoing.setdefault((x0, y0), []).append((x1, y1))
    loops: list[list[tuple[int, int]]] = []
    while outgoing:
        start = min(outgoing)
        loop = [start]
        here, direction = start, None
        while True:
            options = outgoing[here]
            nxt = options[0]
            if direction is not None and len(options) > 1:
                ranked = {_RIGHT[direction]: 0, direction: 1, _LEFT[direction]: 2}
                nxt = min(options, key=lambda p: ranked.get((p[0] - here[0], p[1] - here[1]), 3))
            options.remove(nxt)
            if not options:
                del outgoing[here]
            direction = (nxt[0] - here[0], nxt[1] - here[1])
            here = nxt
            if here == start:
                # The smallest corner has no pixel to its left, so it has one edge in and one
                # out: coming back to it closes the loop.
                break
            loop.append(here)
        loops.append(loop)
    return [{"points": [[x, y] for x, y in _corners(lp)], "hole": _signed_area(lp) < 0}
            for lp in loops]


def mask_png(mask: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG: 255 inside the mask, 0 outside."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct saturated colours (golden-ratio hue steps: neighbours never look alike)."""
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((0.08 + i * 0.618034) % 1.0, 0.85, 0.95)
        out.append((round(r * 255), round(g * 255), round(b * 255)))
    return out


def outline(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a 4-neighbour outside the mask (a 1-pixel inner border)."""
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return np.asarray(mask, dtype=bool) & ~inner


def crop_box(bbox: Sequence[int], width: int, height: int,
             margin: float = 0.25) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: a mask's box ``(x, y, w, h)`` grown by ``margin`` of its longer
    side (at least 8 pixels) for context, clipped to the image."""
    x, y, bw, bh = bbox
    grow = max(8, round(margin * max(bw, bh)))
    return (max(0, x - grow), max(0, y - grow), min(width, x + bw + grow),
            min(height, y + bh + grow))


def marked_crop(image: np.ndarray, mask: np.ndarray, bbox: Sequence[int], style: str,
                min_side: int, max_side: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The crop around a mask with the mask marked: ``outline`` (red, thicker on larger
    crops) or ``dim`` (the rest darkened); upscaled to ``min_side`` on its long side (a few
    VLM patches cannot show a small object), downsized to ``max_side`` (0 = never).

    Returns:
        ``(RGB uint8 array, (x0, y0, x1, y1) of the crop in ``image``)``.
    """
    from PIL import Image

    x0, y0, x1, y1 = crop_box(bbox, image.shape[1], image.shape[0])
    long_side = max(x1 - x0, y1 - y0)
    scale = max(1.0, min_side / long_side)
    if max_side and long_side * scale > max_side:
        scale = max_side / long_side
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    pixels = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
    out = np.asarray(pixels.resize(size, Image.Resampling.BICUBIC), dtype=np.float32).copy()
    inside = Image.fromarray(np.asarray(mask[y0:y1, x0:x1], dtype=np.uint8) * 255)
    m = np.asarray(inside.resize(size, Image.Resampling.NEAREST)) > 127
    if style == "dim":
        out[~m] = out[~m] * 0.3 + 20
    else:
        edge = outline(m)
        for _ in range(max(1, round(max(size) / 150)) - 1):
            edge |= outline(m & ~edge)
        out[edge] = (255, 0, 0)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), (x0, y0, x1, y1)


def _draw_labels(im: object, masks: Sequence[np.ndarray], labels: Sequence[str | None],
                 colours: Sequence[tuple[int, int, int]]) -> None:
    """Each label on a dark box at its mask's centre (clamped inside the picture)."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(im)  # type: ignore[arg-type]
    for m, text, colour in zip(masks, labels, colours):
        ys, xs = np.nonzero(m)
        if not text or not len(xs):
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text)
        w, h = right - left + 6, bottom - top + 4
        x = int(min(max(0, xs.mean() - w / 2), m.shape[1] - w))
        y = int(min(max(0, ys.mean() - h / 2), m.shape[0] - h))
        draw.rectangle((x, y, x + w, y + h), fill=(0, 0, 0), outline=colour)
        draw.text((x + 3 - left, y + 2 - top), text, fill=(255, 255, 255))


def overlay_png(image: np.ndarray, masks: Sequence[np.ndarray], alpha: float = 0.45,
                labels: Sequence[str | None] | None = None) -> bytes:
    """The image with each mask tinted in its own colour and outlined, as PNG bytes; with
    ``labels``, each mask's name written at its centre.

    Larger masks are painted first so small ones on top stay visible.
    """
    from PIL import Image

    out = image.astype(np.float32).copy()
    colours = palette(len(masks))
    order = sorted(range(len(masks)), key=lambda i: -int(np.count_nonzero(masks[i])))
    for i in order:
        m = np.asarray(masks[i], dtype=bool)
        colour = np.array(colours[i], dtype=np.float32)
        out[m] = out[m] * (1 - alpha) + colour * alpha
        edge = outline(m)
        if min(m.shape) > 200:  # a 2-pixel outline reads better on large pictures
            edge |= outline(m & ~edge)
        out[edge] = colour
    im = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
    if labels:
        _draw_labels(im, masks, labels, colours)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
