"""`mmcli caption` end to end on the real llama.cpp engine with the tiny generated VLM."""
# ruff: noqa: F811  (pytest fixtures imported from tests.vision_fixtures are used as arguments)

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmcli import images
from mmcli.errors import InputError
from tests.vision_fixtures import (  # noqa: F401 - pytest fixtures
    make_image,
    tiny_vlm_dir,
    tiny_vlm_manifest,
)

KEYS = ["input", "task", "model", "device", "timings", "error", "prompt", "prompt_tokens",
        "completion_tokens", "finish_reason", "width", "height", "caption"]


def jsonl(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.smoke
def test_caption_records_and_pixels_matter(cli, tiny_vlm_manifest, tmp_path, capfd):
    folder = tmp_path / "photos"
    make_image(folder / "a.png", 1)
    make_image(folder / "b.png", 2)
    shutil.copy(folder / "a.png", folder / "a-copy.png")
    r = cli("--models", str(tiny_vlm_manifest), "caption", str(folder), "-f", "jsonl",
            "--max-tokens", "7")
    assert r.exit_code == 0, r.stderr
    recs = {Path(x["input"]).name: x for x in jsonl(r.stdout)}
    assert sorted(recs) == ["a-copy.png", "a.png", "b.png"]
    for rec in recs.values():
        assert list(rec) == KEYS and rec["error"] is None and rec["task"] == "caption"
        assert rec["model"]["name"] == "tiny-vlm" and rec["device"] == "cpu"
        assert 1 <= rec["completion_tokens"] <= 7 and len(rec["caption"]) <= 7
        assert rec["prompt"] == "Describe this image in a few sentences."
        assert {"load_s", "run_s", "encode_s", "decode_s"} <= set(rec["timings"])
        assert (rec["width"], rec["height"]) == (64, 48)
    assert recs["a.png"]["caption"] == recs["a-copy.png"]["caption"]
    assert recs["a.png"]["caption"] != recs["b.png"]["caption"]
    # load once: only the first record pays the load time
    assert sum(1 for x in recs.values() if x["timings"]["load_s"] > 0) == 1
    assert "clip" not in capfd.readouterr().err  # engine logs silenced


def test_text_output_single_and_detail(cli, tiny_vlm_manifest, tmp_path):
    img = make_image(tmp_path / "one.png", 3)
    args = ["--models", str(tiny_vlm_manifest), "caption", str(img), "--max-tokens", "5"]
    r = cli(*args)
    assert r.exit_code == 0 and len(r.stdout.strip()) <= 5 and ":" not in r.stdout[:1]
    r2 = cli(*args, "-d", "short", "-f", "json")
    assert json.loads(r2.stdout)["prompt"] == "Describe this image in one sentence."
    r3 = cli(*args, "-p", "What colour?", "-f", "json")
    assert json.loads(r3.stdout)["prompt"] == "What colour?"
    bad = cli(*args, "-d", "huge")
    assert bad.exit_code == 2 and "--detail" in bad.stderr


def test_mixed_folder_good_and_bad(cli, tiny_vlm_manifest, tmp_path, media):
    folder = tmp_path / "mixed"
    make_image(folder / "gen.png", 4)
    shutil.copy(media / "newspaper.jpg", folder / "newspaper.jpg")
    (folder / "corrupt.jpg").write_bytes((media / "newspaper.jpg").read_bytes()[:2000])
    (folder / "notes.jpg").write_text("not an image at all")
    r = cli("--models", str(tiny_vlm_manifest), "caption", str(folder), "-f", "jsonl",
            "--max-tokens", "4", "--max-side", "320")
    assert r.exit_code == 1
    recs = {Path(x["input"]).name: x for x in jsonl(r.stdout)}
    assert recs["gen.png"]["caption"] and recs["newspaper.jpg"]["caption"]
    assert recs["newspaper.jpg"]["width"] == 320  # downsized by --max-side
    assert "damaged image" in recs["corrupt.jpg"]["error"]["message"]
    assert "not an image" in recs["notes.jpg"]["error"]["message"]
    assert recs["notes.jpg"]["error"]["type"] == "InputError"
    assert "2 done, 2 failed" in r.stderr


def test_output_dir_sidecars_and_skip_existing(cli, tiny_vlm_manifest, tmp_path):
    folder = tmp_path / "photos"
    make_image(folder / "x.png", 5)
    make_image(folder / "sub" / "y.png", 6)
    args = ["--models", str(tiny_vlm_manifest), "caption", str(folder), "--output-dir",
            str(folder), "--max-tokens", "4"]
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert (folder / "x.png.txt").read_text().strip()
    assert (folder / "sub" / "y.png.txt").is_file()
    r2 = cli(*args, "--skip-existing", "--no-resume")
    assert r2.exit_code == 0 and "2 skipped" in r2.stderr
    cli(*args[:-2], "-f", "json", "--max-tokens", "4")
    assert json.loads((folder / "x.png.json").read_text())["caption"]


def test_stdin_bytes_and_model_path(cli, tiny_vlm_dir, tiny_vlm_manifest, tmp_path):
    img = make_image(tmp_path / "s.png", 7)
    r = cli("--models", str(tiny_vlm_manifest), "caption", "-", "--max-tokens", "4",
            input=img.read_bytes())
    assert r.exit_code == 0 and r.stdout.strip()
    model, mmproj = tiny_vlm_dir / "tiny-vlm.gguf", tiny_vlm_dir / "tiny-vlm-mmproj.gguf"
    r2 = cli("caption", str(img), "--model", str(model), "--mmproj", str(mmproj),
             "--max-tokens", "4")
    assert r2.exit_code == 0 and r2.stdout == r.stdout
    r3 = cli("caption", str(img), "--model", str(model))
    assert r3.exit_code == 2 and "no mmproj" in r3.stderr


def test_text_only_model_and_small_context(cli, tiny_vlm_manifest, tmp_path):
    text = tiny_vlm_manifest.read_text()
    manifest = tmp_path / "m.toml"
    manifest.write_text(text.replace(', mmproj = "tiny-vlm-mmproj.gguf"', ""))
    img = make_image(tmp_path / "t.png", 8)
    r = cli("--models", str(manifest), "caption", str(img), "--model", "tiny-vlm")
    assert r.exit_code == 2 and "'tiny-vlm' cannot see images: it has no mmproj" in r.stderr
    small = tmp_path / "small.toml"
    small.write_text(text.replace("n_ctx = 1024", "n_ctx = 40"))
    r2 = cli("--models", str(small), "caption", str(img), "-f", "jsonl")
    assert r2.exit_code == 1
    assert "needs 75 tokens (16 for images) but the context holds 40" in r2.stderr


def test_offline_empty_cache_says_pull(cli, tmp_path):
    img = make_image(tmp_path / "x.jpg", 9)
    r = cli("caption", str(img))
    assert r.exit_code == 3
    assert "mmcli models pull smolvlm-256m" in r.stderr and r.stdout == ""


def encoded(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_images_module(monkeypatch):
    wide = Image.new("RGB", (300, 100), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    pic = images.load(encoded(wide, "JPEG", exif=exif), "r.jpg", None)
    assert (pic.width, pic.height, pic.original_size) == (100, 300, (300, 100))
    small = images.load(encoded(wide), "w.png", 150)
    assert (small.width, small.height) == (150, 50) and len(small.rgb) == 150 * 50 * 3
    clear = images.load(encoded(Image.new("RGBA", (4, 4), (0, 0, 0, 0))), "t.png")
    assert clear.rgb[:3] == b"\xff\xff\xff"  # transparency becomes white
    gif = images.load(encoded(Image.new("P", (8, 8)), "GIF"), "g.gif")
    assert (gif.width, gif.height) == (8, 8)
    with pytest.raises(InputError, match="empty"):
        images.load(b"", "e.png")
    with pytest.raises(InputError, match="damaged"):
        images.load(encoded(wide)[:-30], "cut.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(InputError, match="decompression bomb"):
        images.load(encoded(wide), "bomb.png")
