"""`mmcli caption` / `vqa` / `transcribe` on generated clips: tiny VLM + bundled whisper + the
bundled chat model (smollm2-135m)."""
# ruff: noqa: F811  (pytest fixtures imported from helper modules are used as arguments)

from __future__ import annotations

import io
import json

from PIL import Image

from mmcli.tasks import video
from tests.videogen import SPOKEN, clips, make_clip  # noqa: F401 - pytest fixture
from tests.vision_fixtures import tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401

CLIP_KEYS = ["caption", "duration_s", "frames", "visual", "transcript", "stages"]


def jsonl(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_caption_clip_frames_transcript_merge(cli, tiny_vlm_manifest, clips, monkeypatch):
    prompts: list[str] = []
    real = video.ask_text

    def spy(engine, prompt, budget, options):  # the merge prompt the chat model reads
        prompts.append(prompt)
        return real(engine, prompt, budget, options)

    monkeypatch.setattr(video, "ask_text", spy)
    args = ("--models", str(tiny_vlm_manifest), "caption", str(clips["talk"]), "-f", "jsonl",
            "--max-tokens", "8", "--fps", "1")
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    (rec,) = jsonl(r.stdout)
    assert list(rec)[-len(CLIP_KEYS):] == CLIP_KEYS and rec["error"] is None
    assert rec["duration_s"] == 4.0
    assert [f["t"] for f in rec["frames"]] == [0.5, 1.5, 2.5, 3.5]
    assert rec["transcript"]["text"] == SPOKEN
    assert rec["transcript"]["segments"][0]["start"] == 0.0
    stages = rec["stages"]
    assert [stages[k]["model"] for k in ("sample", "vision", "transcribe", "merge")] == \
        [None, "tiny-vlm", "tiny.en-bundled", "smollm2-135m"]
    assert {"sample_s", "vision_s", "transcribe_s", "merge_s"} <= set(rec["timings"])
    assert rec["caption"] and 1 <= rec["completion_tokens"] <= 8
    assert "[0.0-2.4s] speech: " + SPOKEN in prompts[0]  # the words reach the chat prompt
    again = cli(*args)
    assert jsonl(again.stdout)[0]["caption"] == rec["caption"]  # deterministic


def test_caption_bad_clips_one_line_each(cli, tiny_vlm_manifest, clips, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("silent", "audio_only", "truncated", "empty"):
        (folder / f"{name}.mp4").write_bytes(clips[name].read_bytes())
    make_clip(folder / "zero.mp4", seconds=0.0)
    make_clip(folder / "zero.mkv", seconds=0.0)
    r = cli("--models", str(tiny_vlm_manifest), "caption", str(folder), "-f", "jsonl",
            "--max-tokens", "4", "--frames", "each", "--max-frames", "2")
    assert r.exit_code == 1
    recs = {x["input"].rsplit("/", 1)[1]: x for x in jsonl(r.stdout)}
    silent = recs.pop("silent.mp4")
    assert silent["error"] is None and silent["transcript"] is None  # frames alone
    assert all(f["caption"] for f in silent["frames"]) and len(silent["frames"]) == 2
    errors = {k: v["error"]["message"] for k, v in recs.items()}
    assert "no video stream" in errors["audio_only.mp4"]
    assert "not a decodable video file" in errors["truncated.mp4"]
    assert "file is empty" in errors["empty.mp4"]
    assert "no video stream and no audio stream" in errors["zero.mp4"]
    assert "not a decodable video file (End of file)" in errors["zero.mkv"]
    lines = [x for x in r.stderr.splitlines() if x.startswith("mmcli: error")]
    assert len(lines) == 5


def test_no_audio_and_sheet(cli, tiny_vlm_manifest, clips, tmp_path):
    out = tmp_path / "out"
    r = cli("--models", str(tiny_vlm_manifest), "caption", str(clips["talk"]), "--no-audio",
            "--sheet", "--output-dir", str(out), "-f", "json", "--max-tokens", "4")
    assert r.exit_code == 0, r.stderr
    rec = json.loads((out / "talk.mp4.json").read_text())
    assert rec["transcript"] is None and "transcribe" not in rec["stages"]
    sheet = Image.open(io.BytesIO((out / "talk.mp4.sheet.jpg").read_bytes()))
    assert sheet.format == "JPEG" and sheet.size == (2 * (96 + 4) + 4, 22 + 64 + 4 + 16)  # 2 cells
    r = cli("--models", str(tiny_vlm_manifest), "caption", str(clips["talk"]), "--sheet")
    assert r.exit_code == 2 and "--output-dir" in r.stderr
    r = cli("--models", str(tiny_vlm_manifest), "caption", str(clips["silent"]),
            "--chat-model", "nope")
    assert r.exit_code == 2 and "chat model (--chat-model): unknown model 'nope'" in r.stderr


def test_vqa_clip_and_transcribe_clip(cli, tiny_vlm_manifest, clips):
    r = cli("--models", str(tiny_vlm_manifest), "vqa", str(clips["talk"]), "-q", "What is said?",
            "-q", "Which colours?", "-f", "jsonl", "--max-tokens", "4")
    assert r.exit_code == 0, r.stderr
    recs = jsonl(r.stdout)
    assert [x["question"] for x in recs] == ["What is said?", "Which colours?"]
    assert recs[0]["transcript"]["text"] == SPOKEN and recs[0]["stages"]["answer"]["model"]
    r = cli("--models", str(tiny_vlm_manifest), "vqa", str(clips["talk"]), str(clips["silent"]),
            "--together", "-q", "Same?", "-f", "jsonl")
    assert r.exit_code == 1 and "ask about a video on its own" in r.stderr
    r = cli("transcribe", str(clips["talk"]), str(clips["silent"]), "-f", "jsonl")
    assert r.exit_code == 1
    talk, silent = jsonl(r.stdout)
    assert talk["text"].strip() == SPOKEN
    assert "no audio stream" in silent["error"]["message"]
    r = cli("transcribe", str(clips["talk"]), "-f", "srt")
    assert r.exit_code == 0 and SPOKEN in r.stdout


def test_clips_in_a_batch_resume_and_detail(cli, tiny_vlm_manifest, clips, tmp_path, monkeypatch):
    prompts: list[str] = []
    real = video.ask_text

    def spy(engine, prompt, budget, options):
        prompts.append(prompt)
        return real(engine, prompt, budget, options)

    monkeypatch.setattr(video, "ask_text", spy)
    folder, out = tmp_path / "clips", tmp_path / "out"
    folder.mkdir()
    for name in ("talk", "silent"):
        (folder / f"{name}.mp4").write_bytes(clips[name].read_bytes())
    args = ("--models", str(tiny_vlm_manifest), "caption", str(folder), "--output-dir", str(out),
            "--no-audio", "--max-tokens", "3", "-d", "short")
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        ["silent.mp4.txt", "talk.mp4.txt"]
    assert len(prompts) == 2 and prompts[0].endswith("Write a one-sentence caption of this "
                                                     "video clip from what the frames show "
                                                     "and what is said.")
    r = cli(*args)  # the journal says both are done: nothing runs again
    assert r.exit_code == 0 and len(prompts) == 2
