"""The numeric half of ``segment``: prompts -> decoder batches -> masks (promptable and automatic).

Imported only when a segment run starts (it imports numpy). Coordinates arrive in original
image pixels and are mapped into the encoder's resized frame here; masks are post-processed
from ``low_res_masks`` (see ``mmcli.masks.upsample_logits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmcli import masks as mk
from mmcli.backends.sam import Embedding, SamEngine

# Full-size float logits held at once while post-processing (64 MB of float32).
LOGIT_BUDGET = 16_000_000


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


def run_prompts(engine: SamEngine, emb: Embedding, prompts: list[Prompt],
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


def finish(logits: np.ndarray, scores: list[float], prompts: list[Prompt],
           stability: np.ndarray | None = None, keep_mask: bool = True) -> list[Found]:
    """Threshold full-size logits ``(n, h, w)`` into masks with RLE, box and area.

    With ``keep_mask=False`` only the RLE is kept (``--auto`` may hold hundreds of candidates;
    the few that survive NMS are decoded again when pictures are needed).
    """
    if stability is None:
        stability = mk.stability_scores(logits)
    found = []
    for i in range(logits.shape[0]):
        mask = logits[i] > 0.0
        found.append(Found(mask if keep_mask else None, float(scores[i]), float(stability[i]),
                           prompts[i], mk.encode_rle(mask), mk.bbox(mask), mk.area(mask)))
    return found


def prompt_masks(engine: SamEngine, emb: Embedding, prompts: list[Prompt],
                 multimask: bool) -> list[Found]:
    """Masks for explicit prompts: the best per prompt, or every candidate by score."""
    found: list[Found] = []
    for prompt, low, iou in run_prompts(engine, emb, prompts):
        picks = candidates(low.shape[0], multimask)
        picks = sorted(picks, key=lambda k: (-float(iou[k]), k))
        if not multimask:
            picks = picks[:1]
        for k in picks:  # one at a time: a few full-size masks per prompt at most
            logits = mk.upsample_logits(low[k:k + 1], emb.resized, emb.orig, engine.frame)
            found += finish(logits, [float(iou[k])], [prompt])
    return found


@dataclass
class AutoSettings:
    """``--auto`` knobs (SAM's automatic mask generator defaults, CPU-sized grid)."""

    points_per_side: int = 16
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_thresh: float = 0.95
    nms_thresh: float = 0.7
    min_area: int = 0


def grid(h: int, w: int, n: int) -> list[tuple[float, float]]:
    """``n x n`` points at cell centres over the image (SAM's ``build_point_grid``)."""
    ticks = (np.arange(n) + 0.5) / n
    return [(float(x * w), float(y * h)) for y in ticks for x in ticks]


def auto_masks(engine: SamEngine, emb: Embedding, cfg: AutoSettings) -> list[Found]:
    """Masks for everything: a point grid, filtered by predicted IoU and stability, box NMS,
    ``min_area``, sorted by area (largest first)."""
    h, w = emb.orig
    prompts = [Prompt([p], [1]) for p in grid(h, w, cfg.points_per_side)]
    kept: list[Found] = []
    for start in range(0, len(prompts), cfg.points_per_batch):
        chunk = prompts[start:start + cfg.points_per_batch]
        coords, labels = decoder_inputs(chunk, emb)
        low, iou = engine.decode(emb, coords, labels)
        picks = [(b, k) for b in range(low.shape[0]) for k in candidates(low.shape[1], True)
                 if iou[b, k] >= cfg.pred_iou_thresh]  # cheap filter before upsampling
        if not picks:
            continue
        # Upsample in slices so a big photo never holds hundreds of full-size float masks.
        step = max(1, LOGIT_BUDGET // (h * w))
        for s0 in range(0, len(picks), step):
            part = picks[s0:s0 + step]
            logits = mk.upsample_logits(np.stack([low[b, k] for b, k in part]), emb.resized,
                                        emb.orig, engine.frame)
            stab = mk.stability_scores(logits)
            good = [i for i in range(len(part)) if stab[i] >= cfg.stability_thresh]
            kept += [f for f in finish(logits[good], [float(iou[part[i]]) for i in good],
                                       [chunk[part[i][0]] for i in good], stab[good],
                                       keep_mask=False) if f.area > 0]
    if not kept:
        return []
    boxes = np.array([f.bbox for f in kept], dtype=np.float64)
    order = mk.nms(boxes, np.array([f.predicted_iou for f in kept]), cfg.nms_thresh)
    result = [kept[i] for i in order if kept[i].area >= cfg.min_area]
    return sorted(result, key=lambda f: -f.area)
