"""Piped stdin is content, never commands; ``--script`` runs commands; ``/save`` never clobbers.

Issue 12, item 2: ``cat doc.md | mmcli chat`` used to run each stdin line as a REPL line, so a
document line ``/save FILE`` overwrote a file and ``/attach /etc/passwd`` put it in the prompt.
Conversation logic runs on the fake engine; one end-to-end check runs on the bundled SmolLM2.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests import chat_fixtures
from tests.chat_fixtures import FakeChatEngine

fake_chat = chat_fixtures.fake_chat
smollm2 = chat_fixtures.smollm2


def _document(existing: Path, secret: Path) -> str:
    return f"Please review this doc.\n/save {existing}\n/attach {secret}\nThe end.\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """An existing file a stray /save must not touch, and a file /attach must not read."""
    existing = tmp_path / "keep.json"
    existing.write_text("precious\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET password list\n")
    return existing, secret


# ------------------------------------------------------------------ piped stdin = one message
def test_piped_stdin_is_one_message_never_commands(cli, fake_chat: Path,
                                                   files: tuple[Path, Path]) -> None:
    existing, secret = files
    before = sorted(existing.parent.iterdir())
    result = cli("--models", str(fake_chat), "chat", "-f", "json",
                 input=_document(existing, secret))
    assert result.exit_code == 0, result.stderr
    rec = json.loads(result.stdout)  # one turn: one record
    assert rec["turn"] == 1 and rec["attachments"] == [] and rec["error"] is None
    assert existing.read_text() == "precious\n"
    assert sorted(existing.parent.iterdir()) == before  # nothing saved, not even a temp file
    engine = FakeChatEngine.instances[-1]
    assert len(engine.calls) == 1
    message = engine.calls[0][-1]["content"]
    assert message == _document(existing, secret).rstrip("\n")  # slash lines reached the model
    assert "TOPSECRET" not in message
    assert result.stderr == ""


def test_piped_stdin_text_reply(cli, fake_chat: Path, files: tuple[Path, Path]) -> None:
    existing, secret = files
    result = cli("--models", str(fake_chat), "chat", input=_document(existing, secret))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: The end.\n"  # the fake echoes the message's last line


def test_prompt_with_piped_stdin_keeps_it_a_document(cli, fake_chat: Path,
                                                     files: tuple[Path, Path]) -> None:
    existing, secret = files
    result = cli("--models", str(fake_chat), "chat", "Summarize", "-f", "json",
                 input=_document(existing, secret))
    assert result.exit_code == 0, result.stderr
    rec = json.loads(result.stdout)
    assert [(a["path"], a["kind"], a["used_as"]) for a in rec["attachments"]] == \
        [("-", "text", "inlined")]
    assert existing.read_text() == "precious\n"
    message = FakeChatEngine.instances[-1].calls[0][-1]["content"]
    assert "[file stdin]" in message and f"/save {existing}" in message
    assert message.endswith("Summarize")


@pytest.mark.parametrize(("data", "words"), [
    ("", "nothing to send: stdin is empty and no prompt was given"),
    (" \n\n", "nothing to send: stdin is empty and no prompt was given"),
    (b"\xff\xd8\xff\xe0 not text \xff", "piped stdin is not UTF-8 text"),
])
def test_unusable_piped_stdin_is_a_usage_error(cli, fake_chat: Path, data: str | bytes,
                                               words: str) -> None:
    result = cli("--models", str(fake_chat), "chat", input=data)
    assert result.exit_code == 2
    assert f"mmcli: error: {words}" in result.stderr and result.stdout == ""
    assert FakeChatEngine.instances == []  # refused before any model loads


def test_piped_question_on_smollm2(cli, smollm2: str) -> None:
    result = cli("chat", "--max-tokens", "24", input="What is the capital of France?\n")
    assert result.exit_code == 0, result.stderr
    assert "Paris" in result.stdout


# ------------------------------------------------------------------ --script runs commands
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_script_runs_the_same_lines_as_commands(cli, fake_chat: Path, tmp_path: Path,
                                                files: tuple[Path, Path], source: str) -> None:
    existing, secret = files
    script = _document(existing, secret)
    if source == "file":
        path = tmp_path / "turns.txt"
        path.write_text(script)
        result = cli("--models", str(fake_chat), "chat", "--script", str(path), "-f", "jsonl")
    else:
        result = cli("--models", str(fake_chat), "chat", "--script", "-", "-f", "jsonl",
                     input=script)
    assert result.exit_code == 1  # the refused /save is a failed line; the rest ran
    recs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["reply"] for r in recs] == ["echo: Please review this doc.", "echo: The end."]
    assert recs[0]["attachments"] == []
    assert [(a["path"], a["kind"]) for a in recs[1]["attachments"]] == [(str(secret), "text")]
    assert f"mmcli: error: {existing} already exists; /save! {existing} overwrites it" \
        in result.stderr.splitlines()
    assert "attached secret.txt (text" in result.stderr
    assert existing.read_text() == "precious\n"
    calls = FakeChatEngine.instances[-1].calls
    assert calls[0][-1]["content"] == "Please review this doc."
    assert "TOPSECRET" in calls[1][-1]["content"]


def test_script_with_prompt_is_refused(cli, fake_chat: Path, tmp_path: Path) -> None:
    result = cli("--models", str(fake_chat), "chat", "hi", "--script", "-")
    assert result.exit_code == 2
    assert "mmcli: error: give a prompt or --script, not both" in result.stderr


def test_missing_script_fails_before_the_model_loads(cli, fake_chat: Path,
                                                     tmp_path: Path) -> None:
    result = cli("--models", str(fake_chat), "chat", "--script", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2
    assert f"mmcli: error: --script {tmp_path / 'nope.txt'}: no such file" in result.stderr
    assert FakeChatEngine.instances == []


def test_json_on_the_repl_names_the_ways_out(fake_chat: Path) -> None:
    from mmcli.chatkit.entry import run_chat
    from mmcli.chatkit.records import Options
    from mmcli.errors import UsageError
    from mmcli.settings import Settings

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with pytest.raises(UsageError, match="needs a prompt, piped stdin or --script"):
        run_chat(Settings.from_env(models_file=fake_chat), None, Options(), None, [], "json",
                 stdin=Terminal())


# ------------------------------------------------------------------ /save never clobbers
def test_save_refuses_an_existing_file(cli, fake_chat: Path, files: tuple[Path, Path]) -> None:
    existing, _ = files
    result = cli("--models", str(fake_chat), "chat", "--script", "-",
                 input=f"hello\n/save {existing}\n")
    assert result.exit_code == 1
    assert result.stdout == "echo: hello\n"
    assert result.stderr == \
        f"mmcli: error: {existing} already exists; /save! {existing} overwrites it\n"
    assert existing.read_text() == "precious\n"
    assert not list(existing.parent.glob(".*.tmp"))


def test_save_bang_overwrites(cli, fake_chat: Path, files: tuple[Path, Path]) -> None:
    existing, _ = files
    result = cli("--models", str(fake_chat), "chat", "--script", "-",
                 input=f"hello\n/save! {existing}\n/help\n")
    assert result.exit_code == 0, result.stderr
    assert f"saved 1 turn(s) to {existing}" in result.stderr
    assert "/save! FILE" in result.stderr  # /help lists it
    doc = json.loads(existing.read_text())
    assert doc["format"] == "mmcli-chat-transcript" and doc["turns"][0]["user"] == "hello"


class _Lines:
    """A driver printer that keeps every line (the REPL's Rich printer does the same calls)."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.errors: list[tuple[str, str | None]] = []

    def piece(self, text: str) -> None: ...
    def end(self, record: object) -> None: ...

    def say(self, text: str) -> None:
        self.said.append(text)

    def error(self, message: str, hint: str | None = None) -> None:
        self.errors.append((message, hint))


def test_repl_driver_save_then_save_bang(fake_chat: Path, files: tuple[Path, Path]) -> None:
    """The REPL and --script share ChatDriver: refusal first, then the explicit overwrite."""
    from mmcli import api
    from mmcli.chatkit.driver import ChatDriver
    from mmcli.chatkit.records import Options
    from mmcli.chatkit.session import ChatSession
    from mmcli.chatkit.speak import Speaker
    from mmcli.settings import Settings

    existing, _ = files
    settings = Settings.from_env(models_file=fake_chat)
    session = ChatSession(api.load_model("chat", None, settings), settings, Options())
    printer = _Lines()
    driver = ChatDriver(session, printer, lambda name: api.load_model("chat", name, settings),
                        Speaker(settings))
    try:
        assert driver.handle("hello") and driver.handle(f"/save {existing}")
        assert existing.read_text() == "precious\n" and driver.failed
        assert printer.errors == [(f"{existing} already exists; /save! {existing} overwrites it",
                                   None)]
        assert driver.handle(f"/save! {existing}")
        assert json.loads(existing.read_text())["turns"][0]["user"] == "hello"
        assert printer.said[-1] == f"saved 1 turn(s) to {existing}"
    finally:
        session.close()
