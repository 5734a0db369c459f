"""Chat regions (``/attach IMG --point X,Y``) on the generated tiny SAM + tiny VLM, driven
through ``--script`` (the REPL's own driver: the same /commands, one error line per bad line),
and chat's ``--max-frames``."""
# ruff: noqa: F811  (pytest fixtures imported from fixture modules are used as arguments)

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmcli.backends.sam import SamEngine
from mmcli.tasks.vision import Session
from tests.segment_fixtures import empty_first_mask, pictures, sam_dir  # noqa: F401 - fixtures
from tests.test_region import both  # noqa: F401 - fixture
from tests.videogen import clips  # noqa: F401 - fixture
from tests.vision_fixtures import tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401 - fixtures


def chat(cli, manifest: Path, script: str, *args: str):
    return cli("--models", str(manifest), "chat", "--script", "-", "-f", "jsonl",
               "--max-tokens", "5", *args, input=script)


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_region_attachment_is_captions_crop_and_mask(cli, both, pictures, monkeypatch):
    land = str(pictures["land"])
    sent: list = []
    ask = Session.ask

    def spy(self, engine, pics, question, budget):
        sent.extend(pics)
        return ask(self, engine, pics, question, budget)

    monkeypatch.setattr(Session, "ask", spy)
    (cap,) = records(cli("--models", str(both), "caption", land, "--point", "320,240",
                         "-f", "jsonl", "--max-tokens", "3").stdout)
    seen: list = []
    from mmcli.backends.llama import LlamaEngine

    chat_real = LlamaEngine.chat

    def keep(self, messages, **kw):
        seen.append(messages)
        return chat_real(self, messages, **kw)

    monkeypatch.setattr(LlamaEngine, "chat", keep)
    before = SamEngine.encoder_runs
    r = chat(cli, both, f"/attach {land} --point 320,240 --box 40,40,160,140\n"
             "What is marked?\n", "-m", "tiny-vlm")
    assert r.exit_code == 0, r.stderr
    assert SamEngine.encoder_runs - before == 1  # two regions of one image: one encoder run
    assert "attached land.png, region at 320,240 (mask of" in r.stderr
    assert "attached land.png, region at 40,40,160,140" in r.stderr
    (rec,) = records(r.stdout)
    point, box = rec["attachments"]
    assert (point["kind"], point["used_as"], point["path"]) == ("image", "native", land)
    assert point["sha256"] == box["sha256"]  # the file's hash: /load finds the file again
    assert point["region"] == cap["region"]  # the same object as caption's region
    assert box["region"]["prompt"]["box"] == [40.0, 40.0, 160.0, 140.0]
    # The model saw caption's marked crop (same pixels) followed by what is marked.
    content = seen[-1][-1]["content"]
    urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    notes = [p["text"] for p in content if p["type"] == "text"]
    assert len(urls) == 2
    assert "[image land.png, region at 320,240]: This picture is a crop of a larger image; " \
        "the region it is about is outlined in red." in notes[0]
    import base64

    png = base64.b64decode(urls[0].split(",", 1)[1])
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    want = np.frombuffer(sent[0].rgb, np.uint8).reshape(sent[0].height, sent[0].width, 3)
    assert np.array_equal(rgb, want)
    whole = chat(cli, both, f"/attach {land}\nWhat is marked?\n", "-m", "tiny-vlm")
    (plain,) = records(whole.stdout)
    assert plain["attachments"][0]["region"] is None
    only = chat(cli, both, f"/attach {land} --point 320,240\nWhat is marked?\n", "-m", "tiny-vlm")
    (one,) = records(only.stdout)
    assert one["reply"] != plain["reply"]  # the region is not the whole image
    again = chat(cli, both, f"/attach {land} --point 320,240\nWhat is marked?\n", "-m", "tiny-vlm")
    assert records(again.stdout)[0]["reply"] == one["reply"]  # deterministic


def test_region_for_a_text_model_is_captions_description(cli, both, pictures):
    land = str(pictures["land"])
    (cap,) = records(cli("--models", str(both), "caption", land, "--point", "100,400",
                         "-f", "jsonl", "--max-tokens", "12").stdout)
    r = chat(cli, both, f"/attach {land} --point 100,400\nWhat is it?\n/attach {land} "
             "--point 100,400\nAnd now?\n", "-m", "tiny-text", "--caption-model", "tiny-vlm")
    assert r.exit_code == 0, r.stderr
    first, second = records(r.stdout)
    (att,) = first["attachments"]
    assert (att["used_as"], att["by"]) == ("described", "tiny-vlm")
    assert att["region"] == cap["region"]
    full = cli("--models", str(both), "caption", land, "--point", "100,400", "-f", "jsonl")
    assert att["text"] == records(full.stdout)[0]["caption"]  # caption's region path, its words
    assert second["attachments"][0]["cached"] is True  # the same region: described once


def test_bad_region_lines_do_not_end_the_session(cli, both, pictures, tmp_path):
    land = str(pictures["land"])
    notes = tmp_path / "notes.txt"
    notes.write_text("some text\n")
    script = "\n".join([
        f"/attach {land} --point 900,10",
        f"/attach {land} --box 10,10,10,50",
        f"/attach {land} --point 3,three",
        f"/attach {land} --pont 3,3",
        f"/attach {land} --neg-point 3,3",
        f"/attach {land} {land} --point 3,3",
        f"/attach {notes} --point 3,3",
        f"/attach {land} --point",
        "/attach",
        "Still there?",
    ]) + "\n"
    r = chat(cli, both, script, "-m", "tiny-vlm")
    assert r.exit_code == 1  # lines failed; the session went on
    (rec,) = records(r.stdout)
    assert rec["error"] is None and rec["attachments"] == []  # nothing half-attached
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("mmcli: error:")]
    assert errors == [
        f"mmcli: error: 900,10 is outside {land} (640x488)",
        "mmcli: error: box 10,10,10,50 is empty",
        "mmcli: error: --point '3,three' is not --point X,Y / --neg-point X,Y (pixels, 0 <= X "
        "<= width, 0 <= Y <= height)",
        "mmcli: error: /attach: unknown option --pont",
        "mmcli: error: /attach: --neg-point only removes areas; add a --point or --box",
        "mmcli: error: /attach: --point / --box mark regions of one image",
        "mmcli: error: notes.txt: --point / --box mark regions of images, not of text files",
        "mmcli: error: /attach: --point needs a value",
    ]
    assert "queued: nothing" in r.stderr


def test_no_segment_model_offline_names_its_pull(cli, tiny_vlm_manifest, pictures):
    r = cli("--offline", "--models", str(tiny_vlm_manifest), "chat", "--script", "-",
            "-m", "tiny-vlm", "--max-tokens", "3", "-f", "jsonl",
            input=f"/attach {pictures['small']} --point 5,5\nHello?\n")
    assert r.exit_code == 1
    assert "the region's segment model (--segment-model)" in r.stderr
    assert "mmcli models pull mobilesam" in r.stderr
    assert records(r.stdout)[0]["error"] is None  # the next message was answered
    bad = cli("--models", str(tiny_vlm_manifest), "chat", "--script", "-", "-m", "tiny-vlm",
              "--segment-model", "no-such-sam", "--max-tokens", "3",
              input=f"/attach {pictures['small']} --point 5,5\n")
    assert bad.exit_code == 1 and "--segment-model" in bad.stderr and "no-such-sam" in bad.stderr


def test_empty_region_is_one_error_line(cli, both, pictures, monkeypatch):
    empty_first_mask(monkeypatch)
    land = str(pictures["land"])
    r = chat(cli, both, f"/attach {land} --point 320,240 --point 100,400\nWhat?\n",
             "-m", "tiny-vlm")
    assert r.exit_code == 1
    assert "mmcli: error: " + land + ": the region at 320,240 is empty" in r.stderr
    (rec,) = records(r.stdout)
    assert [a["region"]["prompt"]["points"] for a in rec["attachments"]] == [[[100.0, 400.0]]]


def test_save_and_load_keep_the_region(cli, both, pictures, tmp_path, monkeypatch):
    land = str(pictures["land"])
    saved = tmp_path / "talk.json"
    r = chat(cli, both, f"/attach {land} --point 320,240 --neg-point 100,400\nWhat?\n"
             f"/save {saved}\n", "-m", "tiny-vlm")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(saved.read_text())
    region = doc["turns"][0]["attachments"][0]["region"]
    assert region["where"] == "320,240" and region["neg_points"] == [[100.0, 400.0]]
    from mmcli.backends.llama import LlamaEngine

    seen: list = []
    real = LlamaEngine.chat

    def keep(self, messages, **kw):
        seen.append(messages)
        return real(self, messages, **kw)

    monkeypatch.setattr(LlamaEngine, "chat", keep)
    first = chat(cli, both, f"/attach {land} --point 320,240 --neg-point 100,400\nWhat?\n"
                 "Next?\n", "-m", "tiny-vlm")
    loaded = chat(cli, both, f"/load {saved}\nNext?\n", "-m", "tiny-vlm")
    assert first.exit_code == 0 and loaded.exit_code == 0, loaded.stderr
    assert seen[-1] == seen[1]  # the loaded region enters the prompt exactly as before
    assert records(loaded.stdout)[0]["reply"] == records(first.stdout)[1]["reply"]


@pytest.mark.parametrize("flag,used,frames", [("2", "native", 2), ("0", "described", None)])
def test_chat_max_frames(cli, tiny_vlm_manifest, clips, flag, used, frames):
    r = cli("--models", str(tiny_vlm_manifest), "chat", "--model", "tiny-vlm", "What happens?",
            "-a", str(clips["silent"]), "--max-frames", flag, "--max-tokens", "4", "-f", "json")
    assert r.exit_code == 0, r.stderr
    (att,) = json.loads(r.stdout)["attachments"]
    assert (att["kind"], att["used_as"], att["frames"]) == ("video", used, frames)


def test_chat_max_frames_refuses_negative(cli, tiny_vlm_manifest):
    r = cli("--models", str(tiny_vlm_manifest), "chat", "hi", "--max-frames", "-1")
    assert r.exit_code == 2 and "--max-frames" in r.stderr


def test_repl_attaches_a_region(both, pictures, tmp_path):
    """The real REPL (a pty): a region is attached, bad region lines are one error line each
    and the session goes on, the turn's status line names the region."""
    pexpect = pytest.importorskip("pexpect")
    from tests.test_chat_repl import spawn

    child = spawn(["--models", str(both), "chat", "-m", "tiny-vlm", "--max-tokens", "4"],
                  pictures["land"].parent)

    def say(line: str, *expect: str) -> None:
        child.sendline(line)
        for pattern in expect:
            child.expect(pattern)
        child.expect(">>>")

    say("/help", "/attach IMG --point X,Y")
    say("/attach land.png --point 900,10", "error: 900,10 is outside land.png")
    say("/attach land.png --box 10,10,10,50", "error: box 10,10,10,50 is empty")
    say("/attach land.png --point 320,240", "attached land.png, region at 320,240")
    say("What is it?", "\\[image land.png, region 320,240: native\\]", "tiny-vlm · context")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
