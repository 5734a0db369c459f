"""Binary-mask helpers for segmentation: COCO RLE, boxes, stability, NMS, resampling.

Everything works on numpy arrays (imported at module top: only ``mmcli.tasks.segment`` and the
SAM backend import this module, never a command). The RLE string format is the one
pycocotools writes and reads (``maskApi.c`` ``rleToString`` / ``rleFrString``), so masks can be
loaded with ``pycocotools.mask.decode`` without conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO run lengths of a 2-D mask: column-major, starting with zeros."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    # Positions where the value changes, plus both ends, give the run boundaries.
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)  # COCO runs always start with a (possibly empty) run of zeros
    return [int(r) for r in runs]


def counts_to_string(counts: list[int]) -> str:
    """Compress run lengths to pycocotools' string (LEB128-like, 6 bits/char, offset 48)."""
    out: list[str] = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count  # delta coding, as in maskApi.c
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas end at -1, as C's long does
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """Inverse of ``counts_to_string``."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)  # sign-extend the last chunk
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of a 2-D mask: ``{"size": [h, w], "counts": "<compressed string>"}``."""
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(rle_counts(mask))}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """Boolean ``(h, w)`` mask from a COCO RLE (compressed string, bytes, or a count list)."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    if sum(counts) != h * w:
        raise ValueError(f"RLE counts sum to {sum(counts)}, not {h}x{w}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T


def area(mask: np.ndarray) -> int:
    """Number of foreground pixels."""
    return int(np.count_nonzero(mask))


def bbox(mask: np.ndarray) -> list[int]:
    """COCO box ``[x, y, w, h]`` of the foreground (all zeros for an empty mask)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def stability_scores(logits: np.ndarray, threshold: float = 0.0,
                     offset: float = 1.0) -> np.ndarray:
    """SAM's stability score per mask: IoU of the masks thresholded at ``t + o`` and ``t - o``.

    Args:
        logits: ``(n, h, w)`` mask logits.
    Returns:
        ``(n,)`` scores in [0, 1]; a mask whose edge does not move with the threshold scores 1.
    """
    flat = logits.reshape(logits.shape[0], -1)
    inner = np.count_nonzero(flat > threshold + offset, axis=1)
    outer = np.count_nonzero(flat > threshold - offset, axis=1)
    return np.where(outer > 0, inner / np.maximum(outer, 1), 0.0)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``[x, y, w, h]`` box with each row of ``boxes``."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy box non-maximum suppression; returns kept indices, best score first.

    Ties keep the lower index, so results are the same on every run.
    """
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= box_iou(boxes[i], boxes) > iou_threshold
    return keep


def bilinear_taps(out_size: int, scale: float,
                  valid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel-centred bilinear taps: output ``i`` = ``(1-f)*in[lo] + f*in[hi]``.

    Output pixel ``i`` samples input coordinate ``(i + 0.5) * scale - 0.5`` (the
    ``align_corners=False`` convention SAM's post-processing uses), clamped to the first
    ``valid`` input cells so the padding beyond them never leaks in.
    """
    src = np.clip((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5, 0, valid - 1)
    lo = np.floor(src).astype(np.int64)
    return lo, np.minimum(lo + 1, valid - 1), (src - lo).astype(np.float32)


def bilinear_matrix(out_size: int, in_size: int, scale: float, valid: int) -> np.ndarray:
    """The same resampling as a dense ``(out_size, in_size)`` matrix (a test reference)."""
    lo, hi, frac = bilinear_taps(out_size, scale, valid)
    mat = np.zeros((out_size, in_size), dtype=np.float32)
    rows = np.arange(out_size)
    np.add.at(mat, (rows, lo), 1 - frac)
    np.add.at(mat, (rows, hi), frac)
    return mat


class Upsampler:
    """Map SAM low-res logits ``(L, L)`` of one image to its original size ``(h, w)``.

    Equivalent to SAM's ``postprocess_masks`` (upsample to the padded frame, crop the padding,
    resize to the original) folded into one separable resampling, which is cheaper and never
    reads the padded area — exports whose ``masks`` output crops portrait images wrongly are
    thereby avoided.

    Only the window around a mask's low-res cells above ``floor`` is resampled: outside it,
    bilinear interpolation of cells <= ``floor`` stays <= ``floor``. Thresholds above
    ``floor`` (the mask at 0, stability at +-1) therefore give exactly the full computation's
    result, at a cost proportional to the mask's box instead of the whole image.
    """

    def __init__(self, resized: tuple[int, int], orig: tuple[int, int], low: int = 256,
                 frame: int = 1024, floor: float = -1.0) -> None:
        (rh, rw), (self.h, self.w) = resized, orig
        self.vh, self.vw = max(1, round(rh * low / frame)), max(1, round(rw * low / frame))
        # Original pixel -> resized frame (rh/h) -> low-res grid (low/frame).
        self.ty = bilinear_taps(self.h, (rh / self.h) * (low / frame), self.vh)
        self.tx = bilinear_taps(self.w, (rw / self.w) * (low / frame), self.vw)
        self.floor = floor

    def window(self, low: np.ndarray) -> tuple[int, int, np.ndarray] | None:
        """``(y0, x0, logits)`` of the output window that can exceed ``floor``, or None."""
        cells = low[:self.vh, :self.vw]
        hot = cells > self.floor
        if not hot.any():
            return None
        r = np.flatnonzero(hot.any(axis=1))
        c = np.flatnonzero(hot.any(axis=0))
        # Output pixels with a tap on a hot cell (taps are monotonic: a contiguous range).
        (ylo, yhi, fy), (xlo, xhi, fx) = self.ty, self.tx
        rows = np.flatnonzero((yhi >= r[0]) & (ylo <= r[-1]))
        cols = np.flatnonzero((xhi >= c[0]) & (xlo <= c[-1]))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        c0, c1 = int(xlo[x0]), int(xhi[x1 - 1]) + 1
        sub = cells[:, c0:c1].astype(np.float32)
        f = fy[y0:y1, None]
        tall = sub[ylo[y0:y1]] * (1 - f) + sub[yhi[y0:y1]] * f
        g = fx[x0:x1]
        part = tall[:, xlo[x0:x1] - c0] * (1 - g) + tall[:, xhi[x0:x1] - c0] * g
        return y0, x0, part

    def logits(self, low: np.ndarray) -> np.ndarray:
        """Full-size logits ``(n, h, w)`` for ``(n, L, L)``; ``floor - 1`` outside windows."""
        out = np.full((low.shape[0], self.h, self.w), self.floor - 1.0, dtype=np.float32)
        for i in range(low.shape[0]):
            win = self.window(low[i])
            if win is not None:
                y0, x0, part = win
                out[i, y0:y0 + part.shape[0], x0:x0 + part.shape[1]] = part
        return out

    def mask(self, low: np.ndarray, offset: float = 1.0) -> tuple[np.ndarray, float]:
        """Boolean mask (logits > 0) and SAM's stability score for one ``(L, L)`` logit map.

        Needs ``offset`` <= ``-floor`` so both stability thresholds lie above the floor.
        """
        out = np.zeros((self.h, self.w), dtype=bool)
        win = self.window(low)
        if win is None:
            return out, 0.0
        y0, x0, part = win
        out[y0:y0 + part.shape[0], x0:x0 + part.shape[1]] = part > 0.0
        outer = np.count_nonzero(part > -offset)
        return out, (np.count_nonzero(part > offset) / outer) if outer else 0.0


def upsample_logits(low_res: np.ndarray, resized: tuple[int, int], orig: tuple[int, int],
                    frame: int = 1024) -> np.ndarray:
    """Full-size logits ``(n, h, w)`` from low-res ``(n, L, L)`` (see ``Upsampler``)."""
    return Upsampler(resized, orig, low_res.shape[-1], frame).logits(low_res)
