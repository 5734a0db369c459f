"""Region caption / vqa (``--point`` / ``--box``) end to end: the generated tiny SAM pair
(its decoder draws a disc at the click) and the tiny VLM (its output follows the pixels)."""
# ruff: noqa: F811  (pytest fixtures imported from fixture modules are used as arguments)

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmcli.backends.sam import SamEngine
from mmcli.tasks import vision
from mmcli.tasks.vision import Session
from tests.segment_fixtures import MANIFEST, empty_first_mask, pictures, sam_dir  # noqa: F401 - fixtures
from tests.vision_fixtures import tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401 - fixtures


@pytest.fixture
def both(sam_dir, tiny_vlm_manifest, tmp_path) -> Path:
    """One manifest with the tiny SAM models and the tiny VLM (defaults for all three tasks)."""
    sam = MANIFEST.format(dir=sam_dir).split("[defaults]")[0]
    vlm = tiny_vlm_manifest.read_text()  # its [defaults] table is last: add segment's there
    path = tmp_path / "both.toml"
    path.write_text(sam + vlm + 'segment = ["tiny-sam"]\n')
    return path


def run(cli, manifest: Path, *args: str) -> list[dict]:
    r = cli("--models", str(manifest), *args, "-f", "jsonl", "--max-tokens", "6")
    assert r.exit_code == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_region_is_segments_mask_and_regions_differ(cli, both, pictures):
    land = str(pictures["land"])
    before = SamEngine.encoder_runs
    recs = run(cli, both, "caption", land, "--point", "320,240", "--point", "100,400")
    assert SamEngine.encoder_runs - before == 1  # two regions, one encoder run
    assert [r["error"] for r in recs] == [None, None]
    seg = json.loads(cli("--models", str(both), "segment", land, "--point", "320,240",
                         "-f", "json").stdout)["masks"][0]
    first = recs[0]["region"]
    for key in ("segmentation", "bbox", "area", "predicted_iou", "prompt"):
        assert first[key] == seg[key], key
    assert first["prompt"] == {"points": [[320.0, 240.0]], "labels": [1], "box": None}
    x, y, w, h = first["bbox"]
    assert abs(x + w / 2 - 320) <= 3 and abs(y + h / 2 - 240) <= 3  # the disc at the click
    x0, y0, x1, y1 = recs[0]["crop"]
    assert x0 <= x and y0 <= y and x1 >= x + w and y1 >= y + h  # the crop holds the mask's box
    assert recs[0]["caption"] != recs[1]["caption"]
    assert recs[0]["region"]["bbox"] != recs[1]["region"]["bbox"]
    assert "outlined in red" in recs[0]["prompt"]
    assert {"segment_encode_s", "encode_s"} <= set(recs[0]["timings"])  # SAM's and the VLM's
    assert "segment_encode_s" not in recs[1]["timings"]  # the image's work is counted once
    whole = run(cli, both, "caption", land)[0]
    assert whole["caption"] != recs[0]["caption"] and "region" not in whole
    again = run(cli, both, "caption", land, "--point", "320,240", "--point", "100,400")
    assert [r["caption"] for r in again] == [r["caption"] for r in recs]  # deterministic


def test_crop_pixels_sent_to_the_vlm(cli, both, pictures, monkeypatch):
    seen: list = []
    ask = Session.ask

    def spy(self, engine, pics, question, budget):
        seen.extend(pics)
        return ask(self, engine, pics, question, budget)

    monkeypatch.setattr(Session, "ask", spy)
    recs = run(cli, both, "caption", str(pictures["small"]), "--box", "70,30,130,90",
               "--region-style", "dim")
    (pic,) = seen
    assert max(pic.width, pic.height) >= vision.MIN_SIDE  # a small region is upscaled
    assert (pic.width, pic.height) == (recs[0]["width"], recs[0]["height"])
    x0, y0, x1, y1 = recs[0]["crop"]
    assert pic.original_size == (x1 - x0, y1 - y0)
    assert "dimmed" in recs[0]["prompt"]
    seen.clear()
    (rec,) = run(cli, both, "caption", str(pictures["land"]), "--point", "320,240")
    (pic,) = seen
    rgb = np.frombuffer(pic.rgb, np.uint8).reshape(pic.height, pic.width, 3)
    ys, xs = np.nonzero(np.all(rgb == (255, 0, 0), axis=2))  # the outline drawn on the crop
    x0, y0, x1, y1 = rec["crop"]
    scale = pic.width / (x1 - x0)
    bx, by, bw, bh = rec["region"]["bbox"]
    got = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    want = ((bx - x0) * scale, (by - y0) * scale, (bx + bw - x0) * scale, (by + bh - y0) * scale)
    assert all(abs(g - w) <= 2 * scale for g, w in zip(got, want)), (got, want)
    assert 0 < want[0] and 0 < want[1] and want[2] < pic.width and want[3] < pic.height


def test_vqa_about_regions(cli, both, pictures):
    recs = run(cli, both, "vqa", str(pictures["portrait"]), "--point", "150,420",
               "--box", "300,60,440,200", "-q", "What is it?", "-q", "What colour?")
    assert len(recs) == 4 and all(r["error"] is None for r in recs)
    assert [r["question"] for r in recs] == ["What is it?", "What colour?"] * 2
    assert recs[0]["region"]["prompt"]["points"] == [[150.0, 420.0]]
    assert recs[2]["region"]["prompt"]["box"] == [300.0, 60.0, 440.0, 200.0]
    assert "outlined in red" in recs[0]["prompt"]
    assert recs[0]["answer"] != recs[2]["answer"]


def test_batch_folder_output_dir_and_journal(cli, both, pictures, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("land", "portrait"):
        (folder / f"{name}.png").write_bytes(pictures[name].read_bytes())
    out = tmp_path / "out"
    args = ["--models", str(both), "caption", str(folder), "--point", "150,200",
            "--point", "300,300", "--output-dir", str(out), "--max-tokens", "5"]
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".txt")
    assert names == ["land.png.r1.txt", "land.png.r2.txt", "portrait.png.r1.txt",
                     "portrait.png.r2.txt"]
    before = SamEngine.encoder_runs
    r = cli(*args)  # the journal says both images are done
    assert r.exit_code == 0, r.stderr
    assert SamEngine.encoder_runs == before
    q = cli("--models", str(both), "vqa", str(folder), "--point", "150,200", "-q", "What?",
            "--output-dir", str(tmp_path / "vqa"), "--max-tokens", "4")
    assert q.exit_code == 0, q.stderr
    assert sorted(p.name for p in (tmp_path / "vqa").iterdir() if p.suffix == ".txt") == \
        ["land.png.r1.q1.txt", "portrait.png.r1.q1.txt"]


@pytest.mark.parametrize("args,words", [
    (["--point", "700,10"], "outside"),
    (["--box", "10,10,10,50"], "empty"),
    (["--neg-point", "5,5"], "--neg-point"),
    (["--point", "5,5", "--region-style", "glow"], "--region-style"),
    (["--point", "5,5", "--segment-model", "no-such-sam"], "--segment-model"),
])
def test_bad_regions_exit_2(cli, both, pictures, args, words):
    r = cli("--models", str(both), "caption", str(pictures["land"]), *args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert words in r.stderr


def test_vqa_together_refuses_regions(cli, both, pictures):
    r = cli("--models", str(both), "vqa", str(pictures["land"]), str(pictures["small"]),
            "--together", "--point", "5,5", "-q", "Which?")
    assert r.exit_code == 2 and "--together" in r.stderr


def test_segment_label_names_every_mask(cli, both, pictures, tmp_path):
    land = str(pictures["land"])
    auto = ["--models", str(both), "segment", land, "--auto", "--points-per-side", "4",
            "--label", "-f", "json"]
    r = cli(*auto)
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["masks"] and all(m["label"] for m in rec["masks"]), rec["masks"]
    assert {"label_s", "label_load_s"} <= set(rec["timings"])
    assert rec["label_model"] == "tiny-vlm"
    assert json.loads(cli(*auto).stdout)["masks"] == rec["masks"]  # deterministic
    plain = json.loads(cli("--models", str(both), "segment", land, "--point", "320,240",
                           "-f", "json").stdout)
    assert plain["masks"][0]["label"] is None and plain["label_model"] is None
    clicked = cli("--models", str(both), "segment", land, "--point", "320,240", "--label")
    assert clicked.exit_code == 0 and ": area " in clicked.stdout
    for flag, out in (([], "plain"), (["--label"], "named")):
        r = cli("--models", str(both), "segment", land, "--point", "320,240", "--overlay",
                "--output-dir", str(tmp_path / out), *flag)
        assert r.exit_code == 0, r.stderr
    pngs = [(tmp_path / d / "land.png.overlay.png").read_bytes() for d in ("plain", "named")]
    assert pngs[0] != pngs[1]  # the label is drawn


@pytest.mark.parametrize("args,words", [
    (["--point", "5,5", "--label-model", "tiny-vlm"], "--label"),
    (["--point", "5,5", "--label", "--label-model", "no-such-vlm"], "--label-model"),
    (["--point", "5,5", "--label", "--label-model", "tiny-text"], "cannot do 'caption'"),
])
def test_segment_label_errors(cli, both, pictures, args, words):
    r = cli("--models", str(both), "segment", str(pictures["land"]), *args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert words in r.stderr


def test_segment_model_missing_offline_is_exit_3(cli, tiny_vlm_manifest, pictures):
    r = cli("--offline", "--models", str(tiny_vlm_manifest), "caption", str(pictures["small"]),
            "--point", "5,5")
    assert r.exit_code == 3, r.stderr
    assert "--segment-model" in r.stderr and "mmcli models pull mobilesam" in r.stderr


@pytest.mark.parametrize("task,extra", [("caption", []), ("vqa", ["-q", "What is it?"])])
def test_empty_mask_fails_only_that_region(cli, both, pictures, monkeypatch, tmp_path, task,
                                           extra):
    empty_first_mask(monkeypatch)
    out = tmp_path / "out"
    r = cli("--models", str(both), task, str(pictures["land"]), "--point", "320,240",
            "--point", "100,400", *extra, "-f", "jsonl", "--max-tokens", "4",
            "--output-dir", str(out))
    assert r.exit_code == 1
    bad, good = (json.loads(line) for line in r.stdout.splitlines())
    assert "region at 320,240 is empty" in bad["error"]["message"]
    assert bad["region"]["prompt"]["points"] == [[320.0, 240.0]] and bad["outputs"] == []
    assert good["error"] is None and good["region"]["prompt"]["points"] == [[100.0, 400.0]]
    assert (good.get("caption") or good.get("answer"))
    assert "land.png: the region at 320,240 is empty" in r.stderr
    assert [Path(p).name for p in good["outputs"]] == \
        [f"land.png.r2{'.q1' if task == 'vqa' else ''}.json"]
    assert [p.name for p in out.glob("land.*")] == [Path(good["outputs"][0]).name]


def test_skip_existing_looks_at_the_region_sidecars(cli, both, pictures, tmp_path):
    """A whole-image caption already in the folder must not make --skip-existing skip the
    regions of that image (it looked for photo.png.txt instead of photo.png.r1.txt)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "land.png").write_bytes(pictures["land"].read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "land.png.txt").write_text("a whole-image caption from another run\n")
    args = ["--models", str(both), "caption", str(folder), "--point", "150,200",
            "--output-dir", str(out), "--max-tokens", "5", "--skip-existing", "--no-resume"]
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert (out / "land.png.r1.txt").is_file()
    again = cli(*args)
    assert again.exit_code == 0 and "1 skipped" in again.stderr
