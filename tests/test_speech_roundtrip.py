"""speak -> transcribe with the bundled models: words survive the round trip; pipes work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import speech_helpers
from tests.conftest import REPO
from tests.speech_helpers import SENTENCES, wer

speech_dir = speech_helpers.speech_dir  # the session fixture, shared


def test_three_sentences_round_trip(cli, speech_dir: Path) -> None:
    wavs = [str(speech_dir / f"s{i}.wav") for i in range(len(SENTENCES))]
    result = cli("transcribe", *wavs, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["input"] for d in docs] == wavs
    for sentence, doc in zip(SENTENCES, docs):
        assert wer(sentence, doc["text"]) <= 0.15, (sentence, doc["text"])


def test_speak_pipe_into_transcribe(subprocess_env: dict[str, str]) -> None:
    """`mmcli speak "…" | mmcli transcribe -` in real processes."""
    cmd = [sys.executable, "-m", "mmcli"]
    speak = subprocess.Popen([*cmd, "speak", SENTENCES[0]], cwd=REPO, env=subprocess_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    transcribe = subprocess.run([*cmd, "transcribe", "-", "--format", "text"], cwd=REPO,
                                env=subprocess_env, stdin=speak.stdout, capture_output=True,
                                timeout=120)
    assert speak.stdout is not None
    speak.stdout.close()
    assert speak.wait(timeout=60) == 0
    assert transcribe.returncode == 0, transcribe.stderr
    assert wer(SENTENCES[0], transcribe.stdout.decode()) <= 0.15
    assert transcribe.stderr == b""
