"""The chat REPL driven through a pseudo-terminal (pexpect) with the installed ``mmcli``.

One session on the bundled SmolLM2 + whisper tiny.en: /help, a question, an audio attachment
(the transcript must reach the prompt), bad input lines, Ctrl-C during a long reply, /save and
/load, /save refusing to overwrite and /save! overwriting, then Ctrl-D.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests import chat_fixtures

pexpect = pytest.importorskip("pexpect")
smollm2 = chat_fixtures.smollm2
PROMPT = ">>>"  # prompt_toolkit draws the trailing space as a cursor move


def spawn(args: list[str], cwd: Path) -> object:
    exe = Path(sys.executable).parent / "mmcli"
    if not exe.is_file():
        pytest.skip(f"mmcli is not installed next to {sys.executable}")
    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", NO_COLOR="1")
    child = pexpect.spawn(str(exe), args, env=env, encoding="utf-8", timeout=60,
                          dimensions=(40, 160), cwd=str(cwd))
    child.expect(PROMPT)
    return child


def say(child: object, line: str, *expect: str) -> None:
    child.sendline(line)  # type: ignore[attr-defined]
    for pattern in expect:
        child.expect(pattern)  # type: ignore[attr-defined]
    child.expect(PROMPT)  # type: ignore[attr-defined]


def test_repl_session(smollm2: str, media: Path, tmp_path: Path, isolated: Path) -> None:
    saved = tmp_path / "talk.json"
    repo = Path(__file__).resolve().parents[1]
    child = spawn(["chat", "--max-tokens", "600"], repo)
    say(child, "/help", "/attach PATH", "Ctrl-C stops a reply")
    say(child, "What is the capital of France?", "Paris", "context \\d+/2048")
    say(child, "/bogus", "error: unknown command /bogus")
    say(child, "/attach nope.wav", "error: nope.wav: no such file")
    say(child, "/attach tests/media/newsreel.mp3", "attached newsreel.mp3 \\(audio")
    say(child, "Which newspaper is mentioned?",
        "audio tests/media/newsreel.mp3: transcribed by tiny.en-bundled")
    # Ctrl-C during a long reply stops the reply, not the session.
    child.sendline("Write a very long story about a dragon who learns to cook.")  # type: ignore
    child.expect("cook\\.")  # type: ignore[attr-defined]  # the echoed line
    child.expect("\x1b\\[\\?2004l")  # type: ignore[attr-defined]  # prompt_toolkit is done
    child.expect("[A-Za-z]{3}")  # type: ignore[attr-defined]  # the reply is streaming
    child.sendintr()  # type: ignore[attr-defined]
    child.expect("stopped\\]")  # type: ignore[attr-defined]
    child.expect(PROMPT)  # type: ignore[attr-defined]
    say(child, f"/save {saved}", "saved 3 turn\\(s\\)")
    say(child, "/reset", "conversation reset")
    say(child, f"/load {saved}", "loaded 3 turn\\(s\\)")
    say(child, "Thanks!", "context \\d+/2048")
    # /save never overwrites without the "!"; the refusal names the file and the fix.
    say(child, f"/save {saved}", "already\\s+exists;\\s+/save!")
    say(child, f"/save! {saved}", "saved 4 turn\\(s\\)")
    child.sendeof()  # type: ignore[attr-defined]
    child.expect(pexpect.EOF)  # type: ignore[attr-defined]
    child.close()  # type: ignore[attr-defined]
    assert child.exitstatus == 0  # type: ignore[attr-defined]

    doc = json.loads(saved.read_text())
    assert len(doc["turns"]) == 4  # the /save! after "Thanks!"
    att = doc["turns"][1]["attachments"][0]
    assert att["used_as"] == "transcribed" and len(att["sha256"]) == 64
    assert "New York Times" in att["text"]  # the transcript is what entered the prompt
    assert doc["turns"][2]["reply"]  # the interrupted reply was kept, cut short
    history = (isolated / "data" / "mmcli" / "chat_history").read_text()
    assert "What is the capital of France?" in history
