"""A video attached to chat: timed frame captions + the transcript enter the prompt."""
# ruff: noqa: F811  (pytest fixtures imported from helper modules are used as arguments)

from __future__ import annotations

import json

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


def test_chat_video_vision_model_and_bad_clips(cli, tiny_vlm_manifest, clips):
    r = cli("--models", str(tiny_vlm_manifest), "chat", "--model", "tiny-vlm", "Describe.",
            "-a", str(clips["silent"]), "--max-tokens", "4", "-f", "json")
    assert r.exit_code == 0, r.stderr
    (att,) = json.loads(r.stdout)["attachments"]
    assert att["by"] == "tiny-vlm" and "(no sound track)" in att["text"]
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
