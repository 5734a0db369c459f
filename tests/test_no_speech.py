"""Audio without speech gives an empty transcript and one warning, never invented words."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmcli.events import SegmentDone
from mmcli.settings import Settings
from mmcli.tasks import transcribe
from tests.speech_helpers import require_models


def _pcm(samples: Any) -> bytes:
    import numpy as np

    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def test_clips_without_speech_give_empty_text_and_a_warning(cli, media: Path,
                                                             tmp_path: Path) -> None:
    """A 0.08 s cut of newsreel.mp3 (mp3 bytes and a WAV of its samples), 1 s of silence and
    1 s of noise: each an empty transcript, each named once in a warning, exit 0."""
    import numpy as np

    from mmcli.audio import wav_bytes
    from mmcli.backends.media import decode_audio

    require_models()
    mp3 = media / "newsreel.mp3"
    (tmp_path / "cut.mp3").write_bytes(mp3.read_bytes()[:900])  # the first 3 mp3 frames
    (tmp_path / "cut.wav").write_bytes(wav_bytes(_pcm(decode_audio(mp3, 16000)[:1280]), 16000))
    (tmp_path / "silence.wav").write_bytes(wav_bytes(b"\x00\x00" * 16000, 16000))
    noise = np.random.default_rng(0).normal(0.0, 0.05, 16000)
    (tmp_path / "noise.wav").write_bytes(wav_bytes(_pcm(noise), 16000))
    names = ("cut.mp3", "cut.wav", "silence.wav", "noise.wav")
    result = cli("transcribe", *(str(tmp_path / n) for n in names), "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(d["input"]).name for d in docs] == list(names)
    assert 0.07 < docs[0]["duration_s"] < 0.09 and docs[1]["duration_s"] == 0.08
    for doc in docs:
        assert doc["error"] is None and doc["text"] == "" and doc["segments"] == [], doc
    warnings = [line for line in result.stderr.splitlines() if "empty transcript" in line]
    assert len(warnings) == len(names), result.stderr  # once per input
    for name, line in zip(names, warnings):
        assert line.startswith(f"mmcli: {tmp_path / name}: empty transcript: "), line
    assert "0.08 s of audio is shorter than a syllable" in warnings[0]
    assert "found no speech" in warnings[2] and "found no speech" in warnings[3]


def test_quiet_silences_the_warning(cli, tmp_path: Path) -> None:
    from mmcli.audio import wav_bytes

    require_models()
    clip = tmp_path / "short.wav"
    clip.write_bytes(wav_bytes(b"\x00\x00" * 800, 16000))  # 0.05 s
    loud, quiet = cli("transcribe", str(clip)), cli("--quiet", "transcribe", str(clip))
    assert loud.exit_code == quiet.exit_code == 0 and loud.stdout == quiet.stdout == "\n"
    assert f"{clip}: empty transcript: 0.05 s of audio" in loud.stderr
    assert quiet.stderr == ""


def _seg(id: int, text: str, *, nsp: float = 0.05, lp: float = -0.3, cr: float = 1.2,
         t: float = 0.0, start: float = 0.0, end: float = 1.0,
         words: list[Any] | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=id, start=start, end=end, text=text, avg_logprob=lp,
                           no_speech_prob=nsp, compression_ratio=cr, temperature=t, words=words)


@pytest.mark.parametrize(("seg", "silent"), [
    (_seg(1, " Hello.", nsp=0.05, lp=-0.3), False),               # speech
    (_seg(1, " Thank you.", nsp=0.61, lp=-1.01), True),           # openai-whisper's rule
    (_seg(1, " Six.", nsp=0.78, lp=-0.77), False),                # confident: kept
    (_seg(1, " Thank you.", nsp=0.52, lp=-1.1, t=1.0), True),     # failed at every temperature
    (_seg(1, " Go.", nsp=0.43, lp=-1.1, t=1.0), False),           # … but speech more likely
    (_seg(1, " la la la", nsp=0.55, cr=2.6, t=1.0), True),        # repetitive at the last one
    (_seg(1, " Thank you.", nsp=0.55, lp=-1.1, t=0.4), False),    # fallback not exhausted
])
def test_is_silence(seg: SimpleNamespace, silent: bool) -> None:
    assert transcribe.is_silence(seg, last_temperature=1.0) is silent


class _Engine:
    """Just enough of a SpeechToTextEngine for ``_run``: canned segments."""

    def __init__(self, segments: list[SimpleNamespace], after_vad: float = 1.0) -> None:
        self.segments = segments
        self.info = SimpleNamespace(language="en", language_probability=1.0,
                                    duration_after_vad=after_vad)

    def transcribe(self, audio: Any, compute_type: str | None,
                   **kwargs: Any) -> tuple[Any, Any]:
        return iter(self.segments), self.info


def _run(segments: list[SimpleNamespace], duration: float = 2.0,
         after_vad: float = 1.0) -> tuple[list[Any], transcribe.TranscriptRecord, str | None]:
    record = transcribe.TranscriptRecord(input="x.wav", task="transcribe", duration_s=duration)
    engine: Any = _Engine(segments, after_vad)
    gen = transcribe._run(engine, [], transcribe.Options(), record, Settings())
    events: list[Any] = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, record, stop.value


def test_a_silent_segment_is_dropped_before_it_is_streamed() -> None:
    events, record, why = _run([_seg(1, " Hello there."),
                                _seg(2, " Thank you.", nsp=0.7, lp=-1.2, start=1.0, end=2.0)])
    assert events == [SegmentDone(0.0, 1.0, " Hello there.")]
    assert [s.id for s in record.segments] == [1] and record.transcript == "Hello there."
    assert why is None


@pytest.mark.parametrize(("segments", "after_vad", "why"), [
    ([_seg(1, " Thank you.", nsp=0.7, lp=-1.2)], 1.0, "Whisper rated what it heard as silence"),
    ([], 0.0, "voice activity detection found no speech"),
    ([], 1.0, "Whisper found no speech"),
])
def test_why_the_transcript_is_empty(segments: list[SimpleNamespace], after_vad: float,
                                     why: str) -> None:
    events, record, reason = _run(segments, after_vad=after_vad)
    assert events == [] and record.segments == [] and record.transcript == ""
    assert reason == why


def test_segment_and_word_ends_are_clamped_to_the_duration() -> None:
    words = [SimpleNamespace(start=17.2, end=17.6, word=" of", probability=0.9),
             SimpleNamespace(start=17.6, end=18.04, word=" this", probability=0.9)]
    events, record, _ = _run([_seg(10, " of this", start=17.2, end=18.04, words=words)],
                             duration=17.44)
    seg = record.segments[0]
    assert (seg.start, seg.end) == (17.2, 17.44)
    assert events == [SegmentDone(17.2, 17.44, " of this")]
    assert seg.words is not None
    assert [(w.start, w.end) for w in seg.words] == [(17.2, 17.44), (17.44, 17.44)]
