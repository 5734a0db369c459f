"""mmcli chat: one-shot, --script mode, attachments, context fitting, KV-prefix reuse, bridging.

Conversation logic runs on the fake engine (registered like a real one, exact byte tokens);
the end-to-end behaviour runs on the bundled SmolLM2, whisper tiny.en and the generated tiny VLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import chat_fixtures, vision_fixtures
from tests.chat_fixtures import FakeChatEngine, write_fake_manifest
from tests.vision_fixtures import make_image

# Fixtures from the helper modules (assigned, not imported, so parameters may share the names).
fake_chat = chat_fixtures.fake_chat
smollm2 = chat_fixtures.smollm2
tiny_vlm_dir = vision_fixtures.tiny_vlm_dir
tiny_vlm_manifest = vision_fixtures.tiny_vlm_manifest


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------ real model, one-shot
@pytest.mark.smoke
def test_oneshot_capital_of_france(cli, smollm2: str) -> None:
    result = cli("chat", "What is the capital of France?")
    assert result.exit_code == 0, result.stderr
    assert "Paris" in result.stdout
    assert result.stderr == ""


def test_oneshot_json_record_with_stdin_document(cli, smollm2: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Shopping\n- apples\n- bread\n")
    result = cli("chat", "What is on the list?", "-a", str(notes), "--max-tokens", "24",
                 "--seed", "1", "-f", "json", input="Meeting at noon with Ada.\n")
    assert result.exit_code == 0, result.stderr
    rec = json.loads(result.stdout)
    assert rec["error"] is None and rec["reply"] and rec["task"] == "chat"
    assert rec["model"]["name"] == "smollm2-135m"
    assert 0 < rec["usage"]["completion_tokens"] <= 24 and rec["usage"]["prompt_tokens"] > 20
    assert rec["timings"]["ttft_s"] > 0 and rec["timings"]["tokens_per_s"] >= 0
    kinds = [(a["path"], a["kind"], a["used_as"]) for a in rec["attachments"]]
    assert kinds == [(str(notes), "text", "inlined"), ("-", "text", "inlined")]
    import hashlib

    assert rec["attachments"][0]["sha256"] == hashlib.sha256(notes.read_bytes()).hexdigest()


def test_kv_prefix_is_stable_on_smollm2(smollm2: str) -> None:
    """Turn N+1's templated prompt starts with turn N's tokens, so the KV cache is reused."""
    from mmcli import api
    from mmcli.chatkit.records import ChatRecord, Options
    from mmcli.chatkit.session import ChatSession
    from mmcli.settings import Settings

    session = ChatSession(api.load_model("chat", smollm2), Settings.from_env(),
                          Options(max_tokens=16))
    try:
        records = []
        prompts = []
        for text in ("Hi!", "Name a colour.", "And a fruit?"):
            records += [e for e in session.send(text) if isinstance(e, ChatRecord)]
            prompts.append(session.engine.prompt_tokens(session.conv.messages()[:-1]))
        assert [r.prefix_reused for r in records] == [None, True, True]
        for before, after in zip(prompts, prompts[1:]):
            assert after[:len(before)] == before
        assert records[2].usage.prompt_tokens == len(prompts[2])
    finally:
        session.close()


# ------------------------------------------------------------------ fake engine: conversation logic
def test_script_one_message_per_line(cli, fake_chat: Path) -> None:
    script = "hello\n/help\nsecond \\\nline two\n/bogus\n/attach /no/such.txt\nthird\n"
    result = cli("--models", str(fake_chat), "chat", "--script", "-", input=script)
    assert result.exit_code == 1  # a line failed, the rest ran
    assert result.stdout == "echo: hello\necho: line two\necho: third\n"
    assert "/attach PATH..." in result.stderr
    assert "mmcli: error: unknown command /bogus" in result.stderr
    assert "mmcli: error: /no/such.txt: no such file" in result.stderr
    engine = FakeChatEngine.instances[-1]
    assert engine.calls[1][-1]["content"] == "second \nline two"
    assert len(engine.calls[2]) == 5  # the whole history goes with every turn


def test_script_json_lines_and_prefix_reuse(cli, fake_chat: Path) -> None:
    result = cli("--models", str(fake_chat), "chat", "--script", "-", "-f", "jsonl",
                 "--system", "Be brief.", input="one\ntwo\nthree\n")
    assert result.exit_code == 0, result.stderr
    recs = _json_lines(result.stdout)
    assert [r["reply"] for r in recs] == ["echo: one", "echo: two", "echo: three"]
    assert [r["turn"] for r in recs] == [1, 2, 3]
    assert [r["prefix_reused"] for r in recs] == [None, True, True]
    assert FakeChatEngine.instances[-1].calls[-1][0] == {"role": "system", "content": "Be brief."}


def test_unstable_template_is_detected(cli, fake_chat: Path) -> None:
    result = cli("--models", str(fake_chat), "chat", "--script", "-", "-m", "fake-unstable",
                 "-f", "jsonl", input="one\ntwo\nthree\n")
    assert [r["prefix_reused"] for r in _json_lines(result.stdout)] == [None, False, False]
    assert result.stderr.count("rewrites earlier turns") == 1


def test_history_trimmed_to_n_ctx_keeping_system(cli, tmp_path: Path, fake_chat: Path) -> None:
    (tmp_path / "small").mkdir()
    small = write_fake_manifest(tmp_path / "small", n_ctx=400)
    lines = "".join(f"message number {i} with some padding text\n" for i in range(12))
    result = cli("--models", str(small), "chat", "--script", "-", "-f", "jsonl",
                 "--max-tokens", "40", "--system", "SYS", input=lines)
    assert result.exit_code == 0, result.stderr
    recs = _json_lines(result.stdout)
    assert len(recs) == 12 and all(r["error"] is None for r in recs)
    assert sum(r["dropped_turns"] for r in recs) > 0
    assert "dropped the oldest" in result.stderr and "system prompt kept" in result.stderr
    last_call = FakeChatEngine.instances[-1].calls[-1]
    assert last_call[0] == {"role": "system", "content": "SYS"}
    assert last_call[-1]["content"] == "message number 11 with some padding text"
    assert all(r["usage"]["prompt_tokens"] + 40 <= 400 for r in recs)


def test_message_too_big_for_context_is_one_line_error(cli, tmp_path: Path,
                                                       fake_chat: Path) -> None:
    result = cli("--models", str(fake_chat), "chat", "x " * 5000)
    assert result.exit_code == 1
    assert "tokens plus 512 for the reply, but the model's context holds 4096" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("name", "content", "message"), [
    ("doc.pdf", b"%PDF-1.7\n...", "PDF attachments are not supported (kind: pdf)"),
    ("blob.bin", bytes(range(256)) * 4, "unsupported attachment kind (binary data)"),
    ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64), "clip.mp4: not a decodable video file"),
    ("big.txt", b"word " * 600, "text attachment is 3 KB, over the 2 KB limit"),
])
def test_bad_attachments(cli, fake_chat: Path, tmp_path: Path, name: str, content: bytes,
                         message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = cli("--models", str(fake_chat), "chat", "hi", "-a", str(path), "--max-text-kb", "2")
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert FakeChatEngine.instances == []  # rejected before any model loads


def test_missing_attachment(cli, fake_chat: Path) -> None:
    result = cli("--models", str(fake_chat), "chat", "hi", "-a", "nope.jpg")
    assert result.exit_code == 1
    assert "mmcli: error: nope.jpg: no such file" in result.stderr


def test_save_load_round_trip(cli, fake_chat: Path, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("the secret word is heliotrope")
    saved = tmp_path / "chat.json"
    result = cli("--models", str(fake_chat), "chat", "--script", "-", "--system", "SYS",
                 input=f"/attach {note}\nremember this\nok\n/save {saved}\n")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(saved.read_text())
    assert doc["system"] == "SYS" and [t["user"] for t in doc["turns"]] == ["remember this", "ok"]
    att = doc["turns"][0]["attachments"][0]
    assert att["kind"] == "text" and att["used_as"] == "inlined" and len(att["sha256"]) == 64
    FakeChatEngine.instances.clear()
    result = cli("--models", str(fake_chat), "chat", "--script", "-",
                 input=f"/load {saved}\nwhat was it?\n")
    assert result.exit_code == 0, result.stderr
    assert "loaded 2 turn(s)" in result.stderr
    call = FakeChatEngine.instances[-1].calls[-1]
    assert call[0]["content"] == "SYS" and len(call) == 6
    assert "heliotrope" in call[1]["content"] and "[file note.txt]" in call[1]["content"]


def test_load_rejects_other_json(cli, fake_chat: Path, tmp_path: Path) -> None:
    other = tmp_path / "x.json"
    other.write_text("{}")
    result = cli("--models", str(fake_chat), "chat", "--script", "-", input=f"/load {other}\nhi\n")
    assert "not an mmcli chat transcript" in result.stderr
    assert result.stdout == "echo: hi\n"


def test_should_stop_keeps_partial_reply(fake_chat: Path) -> None:
    from mmcli import api
    from mmcli.chatkit.records import ChatRecord, Options
    from mmcli.chatkit.session import ChatSession
    from mmcli.settings import Settings

    settings = Settings.from_env(models_file=fake_chat)
    session = ChatSession(api.load_model("chat", "fake-slow", settings), settings, Options())
    pieces: list[str] = []
    events = []
    for e in session.send("one two three four five six", should_stop=lambda: len(pieces) >= 2):
        events.append(e)
        if not isinstance(e, ChatRecord):
            pieces.append(e)
    record = events[-1]
    assert isinstance(record, ChatRecord) and record.finish_reason == "interrupted"
    assert session.conv.turns[-1].reply == record.reply and len(record.reply.split()) < 7


def test_library_api_chat_over_files(fake_chat: Path, tmp_path: Path) -> None:
    from mmcli import api
    from mmcli.settings import Settings

    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.md").write_text("beta")
    records = list(api.run("chat", [tmp_path / "a.txt", tmp_path / "b.md", tmp_path / "c.txt"],
                           settings=Settings.from_env(models_file=fake_chat), prompt="Sum up"))
    assert [r.reply for r in records[:2]] == ["echo: Sum up", "echo: Sum up"]  # type: ignore
    assert records[2].error is not None and "no such file" in records[2].error.message
    calls = FakeChatEngine.instances[-1].calls
    assert "alpha" in calls[0][-1]["content"] and "alpha" not in calls[1][-1]["content"]


# ------------------------------------------------------------------ bridging and native images
def test_audio_is_transcribed_and_cached(cli, fake_chat: Path, media: Path) -> None:
    mp3 = media / "newsreel.mp3"
    result = cli("--models", str(fake_chat), "chat", "--script", "-", "-f", "jsonl",
                 input=f"/attach {mp3}\nwhich newspaper?\n/attach {mp3}\nagain\n")
    assert result.exit_code == 0, result.stderr
    first, second = (r["attachments"][0] for r in _json_lines(result.stdout))
    assert first["used_as"] == "transcribed" and first["by"] == "tiny.en-bundled"
    assert "New York Times" in first["text"] and not first["cached"] and second["cached"]
    prompt = FakeChatEngine.instances[-1].calls[0][-1]["content"]
    assert prompt.startswith("[audio newsreel.mp3, transcribed by tiny.en-bundled]: ")


def test_native_image_with_tiny_vlm(cli, tiny_vlm_manifest: Path, tmp_path: Path) -> None:
    replies = []
    for seed in (1, 2):
        img = make_image(tmp_path / f"p{seed}.png", seed)
        result = cli("--models", str(tiny_vlm_manifest), "chat", "What is it?", "-m", "tiny-vlm",
                     "-a", str(img), "--max-tokens", "12", "-f", "json")
        assert result.exit_code == 0, result.stderr
        rec = json.loads(result.stdout)
        assert rec["attachments"][0]["used_as"] == "native" and rec["attachments"][0]["by"] is None
        replies.append(rec["reply"])
    assert replies[0] != replies[1]  # the pixels reached the model


def test_bridged_image_text_model_plus_tiny_vlm(cli, tiny_vlm_manifest: Path,
                                                tmp_path: Path) -> None:
    img = make_image(tmp_path / "photo.png", 3)
    result = cli("--models", str(tiny_vlm_manifest), "chat", "What is it?", "-m", "tiny-text",
                 "--caption-model", "tiny-vlm", "-a", str(img), "--max-tokens", "8", "-f", "json")
    assert result.exit_code == 0, result.stderr
    att = json.loads(result.stdout)["attachments"][0]
    assert att["used_as"] == "described" and att["by"] == "tiny-vlm" and att["text"]


def test_image_without_any_way_to_see_it(cli, fake_chat: Path, media: Path) -> None:
    result = cli("--models", str(fake_chat), "chat", "what is it?", "-a",
                 str(media / "newspaper.jpg"))
    assert result.exit_code in (2, 3)
    assert "newspaper.jpg: chat model 'fake-chat' cannot see images" in result.stderr


def test_speak_writes_replies_as_wav(cli, fake_chat: Path, tmp_path: Path) -> None:
    out = tmp_path / "voice"
    result = cli("--models", str(fake_chat), "chat", "--script", "-",
                 input=f"/speak on {out}\nhello there\n/speak off\nquiet now\n/speak maybe\n")
    assert result.stdout == "echo: hello there\necho: quiet now\n"
    assert f"writing spoken replies to {out}/" in result.stderr
    assert "/speak takes on [DIR] or off" in result.stderr and result.exit_code == 1
    assert [p.name for p in out.iterdir()] == ["reply-001.wav"]
    assert (out / "reply-001.wav").read_bytes()[:4] == b"RIFF"
