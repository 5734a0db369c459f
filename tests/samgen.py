"""Generate a tiny Segment-Anything ONNX pair (encoder + decoder) with the real I/O names.

Seeded and byte-identical on every run (``onnx.helper``, IR 8, opset 17), a few KB each. The
pair is geometrically meaningful, so tests catch every coordinate-transform bug:

- encoder: ``image_embeddings [1,256,64,64]`` = the mean normalized colour of each 16x16 patch
  of the padded 1024 frame, projected to 256 channels by a seeded matrix. Two conventions:
  ``nchw`` (input ``[1,3,1024,1024]``, already normalized and padded by the caller) and ``hwc``
  (input ``[H,W,3]`` 0-255 resized to long side 1024; the model normalizes and pads).
- decoder (the standard signature) returns three masks in ``low_res_masks [B,3,256,256]``:
  index 0 a disc of radius 96 around the first positive point (predicted IoU 0.80), index 1
  the region whose embedding matches the patch under the point (0.95), index 2 a disc of
  radius 48 (0.86). A box (labels 2, 3) intersects each mask with the box (a box alone gives
  the box, shrunk by 0/4/8 px). Negative points (label 0) cut a disc of radius 24.
  All radii are in the 1024 frame; ``masks`` is a plain resize of the low-res logits.

Usage: ``python -m tests.samgen OUT_DIR`` writes encoder-nchw/encoder-hwc/decoder.onnx.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
SCORES = (0.80, 0.95, 0.86)  # disc 96, region, disc 48: not in score order on purpose
F = TensorProto.FLOAT


class _Graph:
    """Collects nodes and constants with generated, stable names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def const(self, value: object, dtype: type = np.float32) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, out: str | None = None, **attrs: object) -> str:
        self.n += 1
        name = out or f"t{self.n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [name], name=f"n{self.n}",
                                           **attrs))
        return name

    def model(self, name: str, inputs: list, outputs: list) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="mmcli-tests-samgen")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def _projection(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((256, 3, 1, 1)) / 16).astype(np.float32)


def encoder(convention: str, input_name: str = "input_image", seed: int = 0) -> onnx.ModelProto:
    """The encoder for ``convention`` ``nchw`` or ``hwc``."""
    g = _Graph()
    if convention == "nchw":
        x = input_name
        spec = helper.make_tensor_value_info(input_name, F, [1, 3, 1024, 1024])
    else:
        spec = helper.make_tensor_value_info(input_name, F, ["h", "w", 3])
        norm = g.op("Div", g.op("Sub", input_name, g.const(MEAN)), g.const(STD))
        chw = g.op("Unsqueeze", g.op("Transpose", norm, perm=[2, 0, 1]),
                   g.const([0], np.int64))
        hw = g.op("Slice", g.op("Shape", input_name), g.const([0], np.int64),
                  g.const([2], np.int64))
        ends = g.op("Sub", g.const([1024, 1024], np.int64), hw)
        pads = g.op("Concat", g.const([0] * 6, np.int64), ends, axis=0)
        x = g.op("Pad", chw, pads, g.const(0.0))  # bottom-right padding after normalizing
    pooled = g.op("AveragePool", x, kernel_shape=[16, 16], strides=[16, 16])
    g.op("Conv", pooled, g.const(_projection(seed)), out="image_embeddings")
    out = helper.make_tensor_value_info("image_embeddings", F, [1, 256, 64, 64])
    return g.model(f"sam_encoder_{convention}", [spec], [out])


def _pick(g: _Graph, coords: str, axis_index: int) -> str:
    """``coords[:, :, i]`` -> ``[B, N]``."""
    return g.op("Gather", coords, g.const(axis_index, np.int64), axis=2)


def _clip(g: _Graph, x: str, scale: float) -> str:
    return g.op("Clip", g.op("Mul", x, g.const(scale)), g.const(-20.0), g.const(20.0))


def _region(g: _Graph, emb: str, px: str, py: str) -> str:
    """Logits ``[B,256,256]``: patches whose embedding is close to the one under the point."""
    e = g.op("Squeeze", emb, g.const([0], np.int64))  # [256,64,64]
    cells = g.const(np.arange(64, dtype=np.float32))
    onehots = []
    for p in (px, py):  # [B,1] -> one-hot over the 64 patch columns / rows
        cell = g.op("Floor", g.op("Div", p, g.const(16.0)))
        onehots.append(g.op("Cast", g.op("Equal", cells, cell), to=F))
    ox, oy = onehots
    fcv = g.op("Einsum", e, ox, equation="cvu,bu->bcv")
    feat = g.op("Einsum", fcv, oy, equation="bcv,bv->bc")  # [B,256]
    cross = g.op("Einsum", e, feat, equation="cvu,bc->bvu")
    e2 = g.op("ReduceSum", g.op("Mul", e, e), g.const([0], np.int64), keepdims=1)  # [1,64,64]
    f2 = g.op("Unsqueeze", g.op("ReduceSum", g.op("Mul", feat, feat), g.const([1], np.int64),
                                keepdims=1), g.const([2], np.int64))  # [B,1,1]
    dist2 = g.op("Add", g.op("Sub", e2, g.op("Mul", cross, g.const(2.0))), f2)
    logits = _clip(g, g.op("Sub", g.const(0.25), dist2), 80.0)
    up = g.op("Resize", g.op("Unsqueeze", logits, g.const([1], np.int64)), "",
              g.const([1, 1, 4, 4]), mode="linear")
    return g.op("Squeeze", up, g.const([1], np.int64))


def decoder(batch: bool = True, n_masks: int = 3) -> onnx.ModelProto:
    """The mask decoder (standard SAM ONNX signature); ``batch`` makes dim 0 dynamic.

    ``n_masks`` 1 gives only the region mask (like MobileSAM's single-mask decoder); 4 puts a
    disc-48 "single-mask token" output (score 0.99) first, as SAM's multimask exports do.
    """
    g = _Graph()
    b = "b" if batch else 1
    inputs = [
        helper.make_tensor_value_info("image_embeddings", F, [1, 256, 64, 64]),
        helper.make_tensor_value_info("point_coords", F, [b, "n", 2]),
        helper.make_tensor_value_info("point_labels", F, [b, "n"]),
        helper.make_tensor_value_info("mask_input", F, [1, 1, 256, 256]),
        helper.make_tensor_value_info("has_mask_input", F, [1]),
        helper.make_tensor_value_info("orig_im_size", F, [2]),
    ]
    ax1 = g.const([1], np.int64)
    xs, ys = _pick(g, "point_coords", 0), _pick(g, "point_coords", 1)
    lab = "point_labels"

    def is_label(v: float) -> str:
        return g.op("Cast", g.op("Equal", lab, g.const(v)), to=F)

    pos = is_label(1.0)
    first = g.op("Mul", pos, g.op("Cast", g.op("Equal", g.op("CumSum", pos, g.const(1, np.int64)),
                                               g.const(1.0)), to=F))

    def total(v: str, w: str) -> str:  # sum over points -> [B,1]
        return g.op("ReduceSum", g.op("Mul", v, w), ax1, keepdims=1)

    px, py = total(xs, first), total(ys, first)
    has_pt = g.op("ReduceSum", first, ax1, keepdims=1)
    l2, l3 = is_label(2.0), is_label(3.0)
    bx1, by1, bx2, by2 = total(xs, l2), total(ys, l2), total(xs, l3), total(ys, l3)
    has_box = g.op("Clip", g.op("ReduceSum", l2, ax1, keepdims=1), g.const(0.0), g.const(1.0))
    gx = g.const(((np.arange(256) + 0.5) * 4).reshape(1, 1, 256).astype(np.float32))
    gy = g.const(((np.arange(256) + 0.5) * 4).reshape(1, 256, 1).astype(np.float32))
    ax2 = g.const([2], np.int64)

    def col(v: str) -> str:  # [B,1] -> [B,1,1]
        return g.op("Unsqueeze", v, ax2)

    dx, dy = g.op("Sub", gx, col(px)), g.op("Sub", gy, col(py))
    dist = g.op("Sqrt", g.op("Add", g.op("Mul", dx, dx), g.op("Mul", dy, dy)))
    disc96 = _clip(g, g.op("Sub", g.const(96.0), dist), 4.0)
    disc48 = _clip(g, g.op("Sub", g.const(48.0), dist), 4.0)
    region = _region(g, "image_embeddings", px, py)
    sides = [g.op("Sub", gx, col(bx1)), g.op("Sub", col(bx2), gx), g.op("Sub", gy, col(by1)),
             g.op("Sub", col(by2), gy)]
    box = _clip(g, g.op("Min", *sides), 4.0)
    hp, hb = col(has_pt), col(has_box)
    one = g.const(1.0)
    nhp, nhb = g.op("Sub", one, hp), g.op("Sub", one, hb)
    neg = _negatives(g, xs, ys, is_label(0.0), gx, gy)
    outs = {3: ((disc96, 0.0), (region, 16.0), (disc48, 32.0)), 1: ((region, 16.0),),
            4: ((disc48, 32.0), (disc96, 0.0), (region, 16.0), (disc48, 32.0))}[n_masks]
    masks = []
    for logits, shrink in outs:
        parts = [g.op("Mul", g.op("Mul", hp, hb), g.op("Min", logits, box)),
                 g.op("Mul", g.op("Mul", hp, nhb), logits),
                 g.op("Mul", g.op("Mul", nhp, hb), g.op("Sub", box, g.const(shrink))),
                 g.op("Mul", g.op("Mul", nhp, nhb), g.const(-20.0))]
        combined = g.op("Min", g.op("Sum", *parts), neg)
        masks.append(g.op("Unsqueeze", combined, ax1))
    g.op("Concat", *masks, axis=1, out="low_res_masks")
    scores = {3: SCORES, 1: (0.95,), 4: (0.99, *SCORES)}[n_masks]
    g.op("Add", g.const([list(scores)]), g.op("Mul", g.const(0.0), has_pt),
         out="iou_predictions")
    size = g.op("Cast", "orig_im_size", to=TensorProto.INT64)
    sizes = g.op("Concat", g.op("Slice", g.op("Shape", "low_res_masks"), g.const([0], np.int64),
                                g.const([2], np.int64)), size, axis=0)
    g.op("Resize", "low_res_masks", "", "", sizes, mode="linear", out="masks")
    # mask_input / has_mask_input are accepted (as in real exports) and ignored.
    m = n_masks
    outputs = [helper.make_tensor_value_info("masks", F, [b, m, "h", "w"]),
               helper.make_tensor_value_info("iou_predictions", F, [b, m]),
               helper.make_tensor_value_info("low_res_masks", F, [b, m, 256, 256])]
    return g.model("sam_decoder", inputs, outputs)


def _negatives(g: _Graph, xs: str, ys: str, neg: str, gx: str, gy: str) -> str:
    """Logits ``[B,256,256]``: positive away from every negative point (radius 24)."""
    ax = g.const([2, 3], np.int64)
    nx, ny = g.op("Unsqueeze", xs, ax), g.op("Unsqueeze", ys, ax)  # [B,N,1,1]
    dx = g.op("Sub", g.op("Unsqueeze", gx, g.const([0], np.int64)), nx)
    dy = g.op("Sub", g.op("Unsqueeze", gy, g.const([0], np.int64)), ny)
    dist = g.op("Sqrt", g.op("Add", g.op("Mul", dx, dx), g.op("Mul", dy, dy)))  # [B,N,256,256]
    far = g.op("Mul", g.op("Sub", g.const(1.0), neg), g.const(1e4))
    shifted = g.op("Add", g.op("Sub", dist, g.const(24.0)), g.op("Unsqueeze", far, ax))
    return _clip(g, g.op("ReduceMin", shifted, axes=[1], keepdims=0), 4.0)


def write_pair(out: Path, convention: str = "nchw", *, batch: bool = True,
               input_name: str = "input_image", n_masks: int = 3) -> tuple[Path, Path]:
    """Write ``encoder-<convention>[-name].onnx`` and ``decoder[-nobatch][-N].onnx``."""
    out.mkdir(parents=True, exist_ok=True)
    tag = "" if input_name == "input_image" else f"-{input_name}"
    enc = out / f"encoder-{convention}{tag}.onnx"
    dec = out / f"decoder{'' if batch else '-nobatch'}{'' if n_masks == 3 else n_masks}.onnx"
    enc.write_bytes(encoder(convention, input_name).SerializeToString())
    dec.write_bytes(decoder(batch, n_masks).SerializeToString())
    return enc, dec


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/generated/sam")
    for conv in ("nchw", "hwc"):
        print(*write_pair(target, conv))
