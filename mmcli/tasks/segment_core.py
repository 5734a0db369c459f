"""The numeric half of ``segment``: prompts -> decoder batches -> masks (promptable and automatic).

Imported only when a segment run starts (it imports numpy). Coordinates arrive in original
image pixels and are mapped into the encoder's resized frame here; masks are post-processed
from ``low_res_masks`` (see ``mmcli.masks.Upsampler``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mmcli import masks as mk
from mmcli.backends.sam import Embedding
from mmcli.enginetypes import SegmentationEngine

if TYPE_CHECKING:
    from mmcli.tasks.segment import AutoSettings


@dataclass
class Prompt:
    """One decoder prompt in original-image pixels: clicks (label 1/0) and an optional box."""

    points: list[tuple[float, float]]
    labels: list[int]
    box: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``prompt`` field of a mask in JSON."""
        return {"points": [list(p) for p in self.points], "labels": list(self.labels),
                "box": list(self.box) if self.box else None}


@dataclass
class Found:
    """One mask before it becomes JSON: the boolean array plus its scores and prompt."""

    mask: np.ndarray | None
    predicted_iou: float
    stability_score: float
    prompt: Prompt
    rle: dict[str, Any]
    bbox: list[int]
    area: int


def decoder_inputs(prompts: list[Prompt], emb: Embedding) -> tuple[np.ndarray, np.ndarray]:
    """``point_coords [B,N,2]`` and ``point_labels [B,N]`` in the resized frame.

    All prompts must have the same number of points. A box becomes two corner points with
    labels 2 and 3; without a box SAM expects a padding point (0, 0) with label -1.
    """
    (h, w), (rh, rw) = emb.orig, emb.resized
    sx, sy = rw / w, rh / h
    coords, labels = [], []
    for p in prompts:
        pts = [(x * sx, y * sy) for x, y in p.points]
        labs = [float(v) for v in p.labels]
        if p.box is not None:
            x1, y1, x2, y2 = p.box
            pts += [(x1 * sx, y1 * sy), (x2 * sx, y2 * sy)]
            labs += [2.0, 3.0]
        else:
            pts.append((0.0, 0.0))
            labs.append(-1.0)
        coords.append(pts)
        labels.append(labs)
    return np.array(coords, dtype=np.float32), np.array(labels, dtype=np.float32)


def candidates(n_out: int, multimask: bool) -> list[int]:
    """Decoder outputs to consider: SAM's 4-output exports keep index 0 for single-mask use."""
    if multimask and n_out == 4:
        return [1, 2, 3]
    return list(range(n_out))


def run_prompts(engine: SegmentationEngine, emb: Embedding, prompts: list[Prompt],
                batch: int = 64) -> list[tuple[Prompt, np.ndarray, np.ndarray]]:
    """Decode every prompt; prompts with equal point counts share one batched decoder call.

    Returns:
        ``(prompt, low_res [M, L, L], iou [M])`` per prompt, in the given order.
    """
    out: list[Any] = [None] * len(prompts)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p.points) + (2 if p.box else 1), []).append(i)
    for indices in groups.values():
        for start in range(0, len(indices), batch):
            chunk = indices[start:start + batch]
            coords, labels = decoder_inputs([prompts[i] for i in chunk], emb)
            low, iou = engine.decode(emb, coords, labels)
            for j, i in enumerate(chunk):
                out[i] = (prompts[i], low[j], iou[j])
    return out


def finish(up: mk.Upsampler, low: np.ndarray, score: float, prompt: Prompt) -> Found:
    """Post-process one low-res logit map into a mask with RLE, box, area and stability."""
    mask, stability = up.mask(low)
    return Found(mask, float(score), float(stability), prompt,
                 mk.encode_rle(mask), mk.bbox(mask), mk.area(mask))


def prompt_masks(engine: SegmentationEngine, emb: Embedding, prompts: list[Prompt],
                 multimask: bool) -> list[Found]:
    """Masks for explicit prompts: the best per prompt, or every candidate by score."""
    found: list[Found] = []
    up = mk.Upsampler(emb.resized, emb.orig, engine.low_res, engine.frame)
    for prompt, low, iou in run_prompts(engine, emb, prompts):
        picks = candidates(low.shape[0], multimask)
        picks = sorted(picks, key=lambda k: (-float(iou[k]), k))
        if not multimask:
            picks = picks[:1]
        found += [finish(up, low[k], float(iou[k]), prompt) for k in picks]
    return found


def grid(h: int, w: int, n: int) -> list[tuple[float, float]]:
    """``n x n`` points at cell centres over the image (SAM's ``build_point_grid``)."""
    ticks = (np.arange(n) + 0.5) / n
    return [(float(x * w), float(y * h)) for y in ticks for x in ticks]


def auto_masks(engine: SegmentationEngine, emb: Embedding, cfg: AutoSettings) -> list[Found]:
    """Masks for everything: a point grid, filtered by predicted IoU and stability, box NMS,
    ``min_area``, sorted by area (largest first)."""
    h, w = emb.orig
    prompts = [Prompt([p], [1]) for p in grid(h, w, cfg.points_per_side)]
    up = mk.Upsampler(emb.resized, emb.orig, engine.low_res, engine.frame)
    kept: list[Found] = []
    for start in range(0, len(prompts), cfg.points_per_batch):
        chunk = prompts[start:start + cfg.points_per_batch]
        coords, labels = decoder_inputs(chunk, emb)
        low, iou = engine.decode(emb, coords, labels)
        for b in range(low.shape[0]):
            for k in candidates(low.shape[1], True):
                if iou[b, k] < cfg.pred_iou_thresh:
                    continue  # cheap filter before upsampling
                mask, stability = up.mask(low[b, k])
                if stability >= cfg.stability_thresh and mask.any():
                    # Keep only the RLE: hundreds of candidates may wait for NMS.
                    kept.append(Found(None, float(iou[b, k]), float(stability), chunk[b],
                                      mk.encode_rle(mask), mk.bbox(mask), mk.area(mask)))
    if not kept:
        return []
    boxes = np.array([f.bbox for f in kept], dtype=np.float64)
    order = mk.nms(boxes, np.array([f.predicted_iou for f in kept]), cfg.nms_thresh)
    result = [kept[i] for i in order if kept[i].area >= cfg.min_area]
    return sorted(result, key=lambda f: -f.area)
