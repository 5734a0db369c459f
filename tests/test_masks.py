"""mmcli.masks / mmcli.maskimage: COCO RLE against pycocotools, boxes, NMS, polygons, resampling."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pycocotools.mask as coco
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mmcli import maskimage
from mmcli import masks as mk

random_masks = st.one_of(
    hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40)),
    # long runs (multi-chunk counts, large negative deltas): sparse rectangles in big frames
    st.tuples(st.integers(1, 300), st.integers(1, 300), st.integers(0, 299), st.integers(0, 299),
              st.integers(0, 300), st.integers(0, 300)).map(
        lambda t: _rect(*t)),
)


def _rect(h: int, w: int, y: int, x: int, dh: int, dw: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y:y + dh, x:x + dw] = True
    return m


def _coco(mask: np.ndarray) -> dict:
    return coco.encode(np.asfortranarray(mask.astype(np.uint8)))


@settings(max_examples=300, deadline=None)
@given(random_masks)
def test_rle_round_trip_and_pycocotools_agree(mask):
    rle = mk.encode_rle(mask)
    theirs = _coco(mask)
    assert rle["counts"] == theirs["counts"].decode("ascii")  # the same compressed string
    assert rle["size"] == list(theirs["size"])
    assert np.array_equal(mk.decode_rle(rle), mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        back = coco.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(back.astype(bool), mask)  # pycocotools reads what we write
    assert mk.area(mask) == int(coco.area(theirs))
    assert mk.bbox(mask) == [int(v) for v in coco.toBbox(theirs)]


@given(st.lists(st.integers(0, 2**40), min_size=0, max_size=30))
def test_counts_string_round_trip(counts):
    assert mk.string_to_counts(mk.counts_to_string(counts)) == counts


def test_known_vector_and_bad_rle():
    m = np.zeros((5, 4), dtype=bool)
    m[1:3, 1:3] = True
    assert mk.encode_rle(m) == {"size": [5, 4], "counts": "62304"}  # pycocotools' own output
    try:
        mk.decode_rle({"size": [5, 5], "counts": "62304"})
    except ValueError as exc:
        assert "5x5" in str(exc)
    else:
        raise AssertionError("a size mismatch must be an error")


def test_nms_keeps_best_and_distinct():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [50, 50, 5, 5], [0, 0, 10, 10]])
    assert mk.nms(boxes, np.array([0.5, 0.9, 0.1, 0.9]), 0.7) == [1, 2]


def test_stability_score():
    logits = np.stack([np.full((4, 4), 5.0), np.linspace(-2, 2, 16).reshape(4, 4)])
    stab = mk.stability_scores(logits)
    assert stab[0] == 1.0 and stab[1] == pytest.approx(4 / 12)  # 4 cells > 1, 12 > -1
    up = mk.Upsampler((64, 64), (64, 64), low=64, frame=64)  # identity resampling
    ramp = np.linspace(-2, 2, 64 * 64).reshape(64, 64)
    mask, stability = up.mask(ramp)
    assert np.array_equal(mask, ramp > 0)
    assert stability == pytest.approx(mk.stability_scores(ramp[None])[0])


def test_upsample_identity_and_constant():
    low = np.random.default_rng(0).standard_normal((2, 16, 16)).astype(np.float32)
    same = mk.upsample_logits(low, (64, 64), (16, 16), frame=64)
    assert np.allclose(same, low, atol=1e-5)  # frame == image, scale 1: no change
    const = mk.upsample_logits(np.full((1, 16, 16), 3.0), (64, 40), (97, 61), frame=64)
    assert const.shape == (1, 97, 61) and np.allclose(const, 3.0)


def _fill(polys: list[dict], h: int, w: int) -> np.ndarray:
    """Even-odd fill of pixel centres: every boundary (outer or hole) toggles."""
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    inside = np.zeros((h, w), dtype=bool)
    for poly in polys:
        pts = np.array(poly["points"], dtype=float)
        for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0)):
            if y0 == y1:
                continue
            crosses = ((y0 <= ys) & (ys < y1)) | ((y1 <= ys) & (ys < y0))
            xcross = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (xs < xcross)
    return inside


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12)))
def test_polygons_fill_back_to_the_mask(mask):
    polys = maskimage.polygons(mask)
    assert np.array_equal(_fill(polys, *mask.shape), mask)


def test_polygon_hole_marked():
    ring = np.zeros((9, 9), dtype=bool)
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False
    polys = maskimage.polygons(ring)
    assert [p["hole"] for p in polys] == [False, True]
    assert polys[0]["points"] == [[1, 1], [8, 1], [8, 8], [1, 8]]
    assert polys[1]["points"] == [[3, 3], [3, 6], [6, 6], [6, 3]]


def test_mask_and_overlay_png():
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:15, 5:25] = True
    img = Image.open(io.BytesIO(maskimage.mask_png(mask)))
    assert img.mode == "L" and np.array_equal(np.asarray(img) == 255, mask)
    pic = np.full((20, 30, 3), 100, dtype=np.uint8)
    over = np.asarray(Image.open(io.BytesIO(maskimage.overlay_png(pic, [mask]))))
    colour = maskimage.palette(1)[0]
    assert tuple(over[0, 0]) == (100, 100, 100)
    assert tuple(over[5, 5]) == colour  # outline in the solid colour
    assert tuple(over[10, 10]) not in ((100, 100, 100), colour)  # translucent fill
    assert maskimage.overlay_png(pic, [mask]) == maskimage.overlay_png(pic, [mask])


def test_windowed_upsampling_is_exact_above_floor():
    rng = np.random.default_rng(0)
    low = np.full((12, 256, 256), -20.0, dtype=np.float32)
    for i in range(12):
        y, x = rng.integers(0, 200, 2)
        low[i, y:y + rng.integers(1, 60), x:x + rng.integers(1, 60)] = rng.uniform(-3, 20)
    low += rng.uniform(-2, 2, low.shape).astype(np.float32) * (low > -20)
    low[0] = rng.uniform(-3, 3, (256, 256))  # one mask spread over the whole frame
    for orig, resized in (((427, 640), (683, 1024)), ((640, 427), (1024, 683)),
                          ((100, 80), (1024, 819))):
        (rh, rw), (oh, ow) = resized, orig
        vh, vw = round(rh / 4), round(rw / 4)
        my = mk.bilinear_matrix(oh, vh, rh / oh / 4, vh)
        mx = mk.bilinear_matrix(ow, vw, rw / ow / 4, vw)
        full = my @ low[:, :vh, :vw] @ mx.T  # the plain full-image computation
        fast = mk.upsample_logits(low, resized, orig)
        for t in (0.0, 1.0, -0.99):
            assert np.array_equal(fast > t, full > t)
