"""A video attached to chat: for a model that sees images, sampled frames (each after a time
label) + the timed transcript; for a text model (or frames that do not fit), timed frame
captions + the transcript."""
# ruff: noqa: F811  (pytest fixtures imported from helper modules are used as arguments)

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chat_fixtures import fake_chat  # noqa: F401 - pytest fixture
from tests.videogen import SPOKEN, clips  # noqa: F401 - pytest fixture
from tests.vision_fixtures import tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401


def test_chat_video_attachment_text_model(cli, tiny_vlm_manifest, clips):
    r = cli("--models", str(tiny_vlm_manifest), "chat", "What is said?", "-a", str(clips["talk"]),
            "--caption-model", "tiny-vlm", "--max-tokens", "4", "-f", "json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    (att,) = rec["attachments"]
    assert (att["kind"], att["used_as"]) == ("video", "described")
    assert att["by"] == "tiny-vlm and tiny.en-bundled (sound track)"
    lines = att["text"].splitlines()
    assert lines[0] == "Video clip, 4.0 seconds."
    assert [x.split("]")[0] for x in lines[1:3]] == ["[1.0s", "[3.0s"]  # timed frames
    assert lines[-1] == f"[0.0-2.4s] speech: {SPOKEN}"  # the words reach the chat prompt


def vlm_manifest(folder: Path, tiny_vlm_manifest: Path, image_tokens: int) -> Path:
    """The tiny VLM's manifest with an ``image_tokens`` estimate (its mmproj makes 16)."""
    path = folder / f"tiny-vlm-{image_tokens}.toml"
    path.write_text(tiny_vlm_manifest.read_text().replace(
        "n_ctx = 1024 }", f"n_ctx = 1024, image_tokens = {image_tokens} }}"))
    return path


@pytest.fixture(scope="module")
def vlm16(tmp_path_factory, tiny_vlm_manifest) -> Path:
    return vlm_manifest(tmp_path_factory.mktemp("vlm16"), tiny_vlm_manifest, 16)


def test_chat_video_vision_model_sees_frames(cli, tiny_vlm_manifest, clips):
    """No image_tokens option: the rough guess (4 x 256) says no, one frame measured says yes."""
    r = cli("--models", str(tiny_vlm_manifest), "chat", "--model", "tiny-vlm", "What happens?",
            "-a", str(clips["talk"]), "--max-tokens", "8", "-f", "json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    (att,) = rec["attachments"]
    assert (att["kind"], att["used_as"], att["frames"]) == ("video", "native", 4)
    assert att["by"] == "tiny.en-bundled (sound track)"
    assert att["text"].splitlines() == ["Video clip, 4.0 seconds.",
                                        f"[0.0-2.4s] speech: {SPOKEN}"]
    r2 = cli("--models", str(tiny_vlm_manifest), "chat", "--model", "tiny-vlm", "What happens?",
             "-a", str(clips["silent"]), "--max-tokens", "8", "-f", "json")
    assert r2.exit_code == 0, r2.stderr
    rec2 = json.loads(r2.stdout)
    (att2,) = rec2["attachments"]
    assert (att2["used_as"], att2["frames"], att2["by"]) == ("native", 4, None)
    assert "(no sound track)" in att2["text"]
    assert rec["reply"] != rec2["reply"]  # different clips, different replies


def test_chat_video_frames_cost_image_tokens(vlm16, clips):
    """The prompt grows by the same image tokens per frame; labels and words are in it."""
    from mmcli import manifest, resolve
    from mmcli.chatkit.attachments import load
    from mmcli.chatkit.records import Options
    from mmcli.chatkit.session import ChatSession
    from mmcli.settings import Settings

    settings = Settings.from_env(models_file=vlm16)
    model = resolve.resolve("tiny-vlm", "chat", manifest.load(vlm16), settings)
    seen = {}
    for n in (1, 2, 4):
        session = ChatSession(model, settings, Options(max_tokens=2, max_frames=n))
        *_, record = session.send("What happens?", [load(str(clips["talk"]), 256)])
        prompt = session.engine.render(session.conv.messages())
        seen[n] = (record.usage.prompt_tokens, session.image_tokens)
        assert record.attachments[0].frames == n and record.prefix_reused is None
        assert SPOKEN in prompt and prompt.count("[frame at ") == n
        session.close()
    assert seen[1][0] < seen[2][0] < seen[4][0]
    assert seen[1][1] == seen[2][1] == seen[4][1]  # fixed tokens per frame, learned


def test_chat_video_frames_over_context_fall_back_to_captions(cli, tmp_path, tiny_vlm_manifest,
                                                             clips):
    big = vlm_manifest(tmp_path, tiny_vlm_manifest, 400)  # 4 frames > n_ctx 1024
    r = cli("--models", str(big), "chat", "--model", "tiny-vlm", "What is said?",
            "-a", str(clips["talk"]), "--max-tokens", "4", "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert "talk.mp4: 4 frames as images need" in r.stderr
    assert "the frames enter as captions" in r.stderr
    (att,) = json.loads(r.stdout)["attachments"]
    assert (att["used_as"], att["frames"]) == ("described", None)
    assert att["by"] == "tiny-vlm and tiny.en-bundled (sound track)"
    assert att["text"].splitlines()[-1] == f"[0.0-2.4s] speech: {SPOKEN}"


def test_chat_video_bad_clips(cli, tiny_vlm_manifest, clips):
    r = cli("--models", str(tiny_vlm_manifest), "chat", "hi", "-a", str(clips["truncated"]))
    assert r.exit_code == 1 and "truncated.mp4: not a decodable video file" in r.stderr
    r = cli("--models", str(tiny_vlm_manifest), "chat", "What is said?", "-a",
            str(clips["audio_only"]), "--max-tokens", "4", "-f", "json")
    assert r.exit_code == 0, r.stderr
    (att,) = json.loads(r.stdout)["attachments"]
    assert (att["kind"], att["used_as"], att["text"]) == ("audio", "transcribed", SPOKEN)


def test_library_chat_over_a_folder_takes_videos(tiny_vlm_manifest, clips):
    """api.run("chat", [folder]) finds the clip (video is a kind the chat task takes)."""
    from mmcli import api
    from mmcli.settings import Settings

    settings = Settings.from_env(models_file=tiny_vlm_manifest)
    records = list(api.run("chat", [clips["silent"]], "tiny-vlm", settings=settings,
                           prompt="Describe.", max_tokens=4))
    assert len(records) == 1 and records[0].error is None
    assert records[0].attachments[0].kind == "video"  # type: ignore[attr-defined]


def test_chat_video_frames_stay_in_history_and_survive_save_load(cli, vlm16, clips, tmp_path):
    """Turn 2 carries turn 1's frames (prefix stable); after /save + /load the clip is sampled
    again, so the next prompt is the same size as without the round trip."""
    base = ["--models", str(vlm16), "chat", "--model", "tiny-vlm", "--script", "-",
            "--max-tokens", "4", "-f", "jsonl"]
    saved = tmp_path / "chat.json"
    plain = cli(*base, input=f"/attach {clips['talk']}\nWhat happens?\nAnd then?\n")
    assert plain.exit_code == 0, plain.stderr
    recs = [json.loads(x) for x in plain.stdout.splitlines()]
    assert [r["prefix_reused"] for r in recs] == [None, True]
    assert recs[1]["usage"]["prompt_tokens"] > recs[0]["usage"]["prompt_tokens"]
    again = cli(*base, input=f"/attach {clips['talk']}\nWhat happens?\n/save {saved}\n"
                             f"/load {saved}\nAnd then?\n")
    assert again.exit_code == 0, again.stderr
    assert "changed or is gone" not in again.stderr
    doc = json.loads(saved.read_text())
    assert doc["turns"][0]["attachments"][0]["used_as"] == "native"
    last = json.loads(again.stdout.splitlines()[-1])
    assert last["usage"]["prompt_tokens"] == recs[1]["usage"]["prompt_tokens"]


FAKE_EYES = """
[models.fake-eyes]
engine = "fake-llama"
tasks = ["chat"]
description = "fake chat engine that sees images, 300 tokens each, and guesses 1"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ model = "chat.gguf", mmproj = "mmproj.gguf" }}
options = {{ n_ctx = 1200, image_tokens = 1, image_cost = 300 }}
"""


def test_chat_video_engine_count_over_context_falls_back(cli, fake_chat, tiny_vlm_manifest,
                                                         clips, tmp_path):
    """The estimate says the frames fit, the engine's exact count says no: captions, once."""
    from tests.chat_fixtures import FakeChatEngine

    both = tmp_path / "both.toml"
    both.write_text(tiny_vlm_manifest.read_text() +
                    FAKE_EYES.format(dir=fake_chat.parent / "fake-chat-model"))
    r = cli("--models", str(both), "chat", "--model", "fake-eyes", "What is said?",
            "-a", str(clips["talk"]), "--caption-model", "tiny-vlm", "-f", "json")
    assert r.exit_code == 0, r.stderr
    assert "talk.mp4: 4 frames as images need more tokens (the prompt needs" in r.stderr
    rec = json.loads(r.stdout)
    (att,) = rec["attachments"]
    assert (att["used_as"], att["frames"], att["by"]) == (
        "described", None, "tiny-vlm and tiny.en-bundled (sound track)")
    assert rec["reply"] == "echo: What is said?"
    calls = FakeChatEngine.instances[-1].calls
    assert len(calls) == 2 and isinstance(calls[1][-1]["content"], str)
    assert SPOKEN in calls[1][-1]["content"]
