"""``mmcli segment`` end to end on the generated tiny SAM pair (real onnxruntime sessions)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pycocotools.mask as coco
import pytest
from PIL import Image

from mmcli.backends.sam import SamEngine
from tests.segment_fixtures import SHAPES, centroid, pictures, sam_dir, sam_manifest, truth

__all__ = ["pictures", "sam_dir", "sam_manifest"]  # fixtures used by name below


def decode(mask: dict) -> np.ndarray:
    """Decode with pycocotools itself: the JSON must be what it reads."""
    rle = {"size": mask["segmentation"]["size"],
           "counts": mask["segmentation"]["counts"].encode()}
    with warnings.catch_warnings():  # pycocotools vs numpy 2 copy-keyword notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco.decode(rle).astype(bool)


def run_json(cli, manifest: Path, *args: str) -> dict:
    result = cli("--models", str(manifest), "segment", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.smoke
@pytest.mark.parametrize("model", ["tiny-sam", "tiny-sam-hwc"])
def test_click_gives_mask_centred_on_click(cli, sam_manifest, pictures, model):
    rec = run_json(cli, sam_manifest, str(pictures["land"]), "-m", model, "--point", "320,240",
                   "--multimask")
    assert (rec["width"], rec["height"]) == (640, 488) and rec["device"] == "cpu"
    scores = [m["predicted_iou"] for m in rec["masks"]]
    assert scores == sorted(scores, reverse=True) == [0.95, 0.86, 0.8]
    region, disc48, disc96 = (decode(m) for m in rec["masks"])
    for mask in (disc48, disc96):  # the discs are drawn by the decoder around the click
        cx, cy = centroid(mask)
        assert abs(cx - 320) <= 2 and abs(cy - 240) <= 2, (cx, cy)
    # 48 px in the 1024 frame is 30 px here (640 -> 1024 is x1.6)
    assert abs(disc48.sum() - np.pi * 30**2) < 0.05 * np.pi * 30**2
    iou = (region & truth(pictures["land"], SHAPES[0])).sum() / \
        (region | truth(pictures["land"], SHAPES[0])).sum()
    assert iou > 0.9
    assert rec["masks"][0]["prompt"] == {"points": [[320.0, 240.0]], "labels": [1], "box": None}
    assert rec["masks"][0]["bbox"] == list(coco.toBbox(
        {"size": [488, 640], "counts": rec["masks"][0]["segmentation"]["counts"].encode()}))
    assert rec["masks"][0]["area"] == int(region.sum())


@pytest.mark.parametrize("name,click", [("land", (100, 400)), ("portrait", (150, 420)),
                                        ("portrait", (400, 560))])
def test_off_centre_clicks_landscape_and_portrait(cli, sam_manifest, pictures, name, click):
    rec = run_json(cli, sam_manifest, str(pictures[name]), "--point", f"{click[0]},{click[1]}",
                   "--multimask")
    disc48 = decode(rec["masks"][1])
    cx, cy = centroid(disc48)
    assert abs(cx - click[0]) <= 2 and abs(cy - click[1]) <= 2, (cx, cy)


def test_best_mask_only_without_multimask_and_conventions_agree(cli, sam_manifest, pictures):
    a = run_json(cli, sam_manifest, str(pictures["portrait"]), "--point", "150,420")
    b = run_json(cli, sam_manifest, str(pictures["portrait"]), "-m", "tiny-sam-hwc",
                 "--point", "150,420")
    assert len(a["masks"]) == 1 and a["masks"][0]["predicted_iou"] == 0.95
    assert a["masks"][0]["segmentation"] == b["masks"][0]["segmentation"]
    disc = truth(pictures["portrait"], SHAPES[0])
    got = decode(a["masks"][0])
    assert (got & disc).sum() / (got | disc).sum() > 0.9


def test_single_and_four_output_decoders(cli, sam_manifest, pictures):
    single = cli("--models", str(sam_manifest), "segment", str(pictures["land"]), "--point",
                 "320,240", "--multimask", "-m", "tiny-sam-single", "-f", "json")
    assert single.exit_code == 0 and len(json.loads(single.stdout)["masks"]) == 1
    assert "one mask per prompt" in single.stderr
    four = run_json(cli, sam_manifest, str(pictures["land"]), "-m", "tiny-sam-four",
                    "--point", "320,240", "--multimask")
    assert [m["predicted_iou"] for m in four["masks"]] == [0.95, 0.86, 0.8]  # index 0 left out
    best = run_json(cli, sam_manifest, str(pictures["land"]), "-m", "tiny-sam-four",
                    "--point", "320,240")
    assert [m["predicted_iou"] for m in best["masks"]] == [0.99]


def test_box_prompt_mask_inside_box(cli, sam_manifest, pictures):
    rec = run_json(cli, sam_manifest, str(pictures["land"]), "--box", "100,80,420,360")
    mask = decode(rec["masks"][0])
    x, y, w, h = rec["masks"][0]["bbox"]
    assert 100 <= x and 80 <= y and x + w <= 421 and y + h <= 361
    assert mask.sum() > 0.9 * 320 * 280
    assert rec["masks"][0]["prompt"]["box"] == [100.0, 80.0, 420.0, 360.0]


def test_negative_point_cuts_the_mask(cli, sam_manifest, pictures):
    rec = run_json(cli, sam_manifest, str(pictures["land"]), "--box", "100,80,420,360",
                   "--neg-point", "200,200")
    mask = decode(rec["masks"][0])
    assert not mask[195:205, 195:205].any() and mask[300, 350]


def test_several_boxes_one_encoder_run(cli, sam_manifest, pictures):
    before = SamEngine.encoder_runs
    rec = run_json(cli, sam_manifest, str(pictures["land"]), "--box", "10,10,100,100",
                   "--box", "200,200,300,300", "--box", "400,100,600,400")
    assert SamEngine.encoder_runs - before == 1
    assert [m["prompt"]["box"][0] for m in rec["masks"]] == [10.0, 200.0, 400.0]


def test_auto_returns_deduplicated_masks_sorted_by_area(cli, sam_manifest, pictures):
    rec = run_json(cli, sam_manifest, str(pictures["small"]), "--auto")
    areas = [m["area"] for m in rec["masks"]]
    assert len(areas) == 3 and areas == sorted(areas, reverse=True)
    got = [decode(m) for m in rec["masks"]]
    for colour, mask in zip(SHAPES, got[1:]):
        want = truth(pictures["small"], colour)
        assert (mask & want).sum() / (mask | want).sum() > 0.8
    assert all(m["stability_score"] >= 0.95 and m["predicted_iou"] >= 0.88
               for m in rec["masks"])
    coarse = run_json(cli, sam_manifest, str(pictures["small"]), "--auto",
                      "--points-per-side", "8")
    # another grid finds the same three objects (a background click elsewhere may move a pixel)
    assert np.allclose([m["area"] for m in coarse["masks"]], areas, rtol=0.01)
    # a decoder that takes one prompt per call gives the same masks, prompt by prompt
    nobatch = run_json(cli, sam_manifest, str(pictures["small"]), "--auto", "-m",
                       "tiny-sam-nobatch", "--points-per-side", "8")
    assert [m["segmentation"] for m in nobatch["masks"]] == \
        [m["segmentation"] for m in coarse["masks"]]
    bigger = run_json(cli, sam_manifest, str(pictures["small"]), "--auto", "--min-area", "5000",
                      "--points-per-side", "8")
    assert len(bigger["masks"]) == 1


def test_embeddings_cache_skips_encoder(cli, sam_manifest, pictures, tmp_path):
    cache = tmp_path / "emb"
    before = SamEngine.encoder_runs
    first = run_json(cli, sam_manifest, str(pictures["land"]), "--point", "320,240",
                     "--embeddings-cache", str(cache))
    second = run_json(cli, sam_manifest, str(pictures["land"]), "--point", "100,100",
                      "--embeddings-cache", str(cache))
    assert SamEngine.encoder_runs - before == 1
    assert (first["embedding"], second["embedding"]) == ("computed", "cached")
    assert "encode_s" in second["timings"]
    other = run_json(cli, sam_manifest, str(pictures["land"]), "-m", "tiny-sam-hwc",
                     "--point", "100,100", "--embeddings-cache", str(cache))
    assert other["embedding"] == "computed"  # another model never reuses these embeddings
    assert SamEngine.encoder_runs - before == 2


def test_png_masks_overlay_and_text(cli, sam_manifest, pictures, tmp_path):
    out = tmp_path / "out"
    result = cli("--models", str(sam_manifest), "segment", str(pictures["land"]), "--point",
                 "320,240", "--multimask", "-f", "png", "--overlay", "--output-dir", str(out))
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith(".mmcli"))
    assert names == ["land.png.mask-0.png", "land.png.mask-1.png", "land.png.mask-2.png",
                     "land.png.overlay.png"]
    mask = Image.open(out / "land.png.mask-0.png")
    assert mask.mode == "L" and mask.size == (640, 488)
    assert set(np.unique(np.asarray(mask)).tolist()) == {0, 255}
    over = np.asarray(Image.open(out / "land.png.overlay.png"))
    assert over.shape == (488, 640, 3)
    assert tuple(over[5, 5]) == (30, 90, 200)  # outside every mask: the picture itself
    assert tuple(over[240, 320]) != SHAPES[0]  # tinted inside the mask
    text = cli("--models", str(sam_manifest), "segment", str(pictures["land"]),
               "--point", "320,240")
    assert text.stdout.startswith("1 mask 640x488: area ") and "iou 0.95" in text.stdout


def test_polygon_format_and_stdin(cli, sam_manifest, pictures):
    result = cli("--models", str(sam_manifest), "segment", "-", "--box", "100,80,420,360",
                 "-f", "polygon", input=pictures["land"].read_bytes())
    assert result.exit_code == 0, result.stderr
    rec = json.loads(result.stdout)
    polys = rec["masks"][0]["polygons"]
    assert polys and polys[0]["hole"] is False
    xs = [p[0] for p in polys[0]["points"]]
    assert min(xs) >= 100 and max(xs) <= 421


@pytest.mark.parametrize("args,needle", [
    (["--point", "700,10"], "outside"),
    (["--point", "320"], "--point"),
    (["--point", "a,b"], "e.g. --point 320,240"),
    (["--box", "1,2,3"], "--box"),
    (["--box", "50,50,10,10"], "empty"),
    ([], "needs a prompt"),
    (["--auto", "--point", "1,1"], "--auto"),
    (["--neg-point", "5,5"], "--neg-point"),
    (["--point", "1,1", "-f", "png"], "--output-dir"),
])
def test_usage_errors_exit_2(cli, sam_manifest, pictures, args, needle):
    result = cli("--models", str(sam_manifest), "segment", str(pictures["land"]), *args)
    assert result.exit_code == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_inputs_batch_continues(cli, sam_manifest, pictures, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(pictures["small"].read_bytes()[:200])
    notimg = tmp_path / "notes.jpg"
    notimg.write_text("hello, not a picture")
    result = cli("--models", str(sam_manifest), "segment", str(corrupt), str(notimg),
                 str(pictures["small"]), "--point", "20,20", "-f", "jsonl")
    assert result.exit_code == 1
    recs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["error"] is None for r in recs] == [False, False, True]
    assert "damaged image" in recs[0]["error"]["message"]
    assert "not an image" in recs[1]["error"]["message"]
    assert "Traceback" not in result.stderr


def test_missing_model_files_and_device(cli, sam_manifest, sam_dir, pictures):
    broken = cli("--models", str(sam_manifest), "segment", str(pictures["small"]), "--point", "5,5",
                 "-m", "tiny-sam-broken")
    assert broken.exit_code == 3 and "not found" in broken.stderr
    missing = cli("segment", str(pictures["small"]), "--point", "5,5", "-m",
                  str(sam_dir / "encoder-nchw.onnx"), "--decoder", str(sam_dir / "nope.onnx"))
    assert missing.exit_code == 2 and "--decoder" in missing.stderr
    cuda = cli("--models", str(sam_manifest), "--device", "cuda", "segment",
               str(pictures["small"]), "--point", "5,5")
    assert cuda.exit_code == 3 and "CUDAExecutionProvider" in cuda.stderr
    by_path = cli("segment", str(pictures["small"]), "--point", "100,60", "-m",
                  str(sam_dir / "encoder-nchw-x.onnx"), "--decoder", str(sam_dir / "decoder.onnx"))
    assert by_path.exit_code == 0 and by_path.stdout.startswith("1 mask 160x120")


def _mobilesam_files() -> tuple[Path, Path] | None:
    """MobileSAM's files from $MMCLI_TEST_MOBILESAM (a folder) or the user's real HF cache.

    The autouse isolation points HF_HOME at an empty temp dir, so look where `mmcli models
    pull mobilesam` would have put them outside the tests.
    """
    import os

    names = ("mobile_sam_image_encoder.onnx", "sam_mask_decoder_single.onnx")
    folders = [Path(os.environ["MMCLI_TEST_MOBILESAM"])] if "MMCLI_TEST_MOBILESAM" in \
        os.environ else []
    folders += sorted((Path.home() / ".cache/huggingface/hub/models--Acly--MobileSAM/snapshots")
                      .glob("*"))
    for folder in folders:
        if all((folder / n).is_file() for n in names):
            return folder / names[0], folder / names[1]
    return None


@pytest.mark.realmodels
def test_mobilesam_on_newspaper(cli, media):
    files = _mobilesam_files()
    if files is None:
        pytest.skip("MobileSAM weights are absent (`mmcli models pull mobilesam`, or set "
                    "MMCLI_TEST_MOBILESAM to a folder with its two .onnx files)")
    photo = media / "newspaper.jpg"
    w, h = Image.open(photo).size
    result = cli("segment", str(photo), "-m", str(files[0]), "--decoder", str(files[1]),
                 "--point", f"{w // 2},{h // 2}", "-f", "json")
    assert result.exit_code == 0, result.stderr
    rec = json.loads(result.stdout)
    assert len(rec["masks"]) == 1 and 0 < rec["masks"][0]["area"] < w * h
    best = decode(rec["masks"][0])
    assert best[h // 2, w // 2]  # the clicked pixel is inside the mask
    assert rec["masks"][0]["predicted_iou"] > 0.5


def test_segment_applies_the_same_pixel_limit_as_caption(cli, sam_manifest, tmp_path,
                                                          monkeypatch):
    """A PNG whose header claims 12000x12000 is refused before decoding, naming the size and
    the limit (segment used to decode it: 11 s and 2.2 GB, and a raw DecompressionBombWarning);
    the limit is configurable with MMCLI_MAX_PIXELS."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 12000,
                                                                         8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    r = cli("--models", str(sam_manifest), "segment", str(bomb), "--point", "5,5", "-f", "jsonl")
    assert r.exit_code == 1
    message = json.loads(r.stdout)["error"]["message"]
    assert "12000x12000" in message and "89,478,485-pixel limit" in message
    assert "Warning" not in r.stderr and "Traceback" not in r.stderr
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 30)).save(small)
    monkeypatch.setenv("MMCLI_MAX_PIXELS", "1000")
    r = cli("--models", str(sam_manifest), "segment", str(small), "--point", "5,5", "-f", "jsonl")
    assert r.exit_code == 1 and "1,000-pixel limit" in r.stdout
