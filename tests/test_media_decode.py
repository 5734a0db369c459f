"""mmcli's own audio decoding (``mmcli.backends.media``) on every PyAV the matrix installs.

faster-whisper 1.2.1's ``decode_audio`` passes ``metadata_errors`` to ``av.open``, which PyAV 19
removed: on Python 3.12/3.13 (where pip picks PyAV 19) every input failed. These tests run the
one decoding function on a WAV, an mp3 and a WAV whose tag is not UTF-8, so an API change in a
new PyAV fails here on whichever interpreter of the CI matrix gets it.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import pytest

from mmcli.errors import InputError

pytestmark = pytest.mark.smoke
np = pytest.importorskip("numpy")
media = pytest.importorskip("mmcli.backends.media")


def tone_wav(rate: int = 16_000, seconds: float = 0.5, tag: bytes | None = None) -> bytes:
    """A 440 Hz tone as 16-bit mono WAV, optionally with a RIFF INFO title of raw bytes."""
    n = int(rate * seconds)
    samples = [int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n)]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{n}h", *samples))
    data = buf.getvalue()
    if tag is None:
        return data
    value = tag + b"\x00" * (2 - len(tag) % 2)
    info = b"INFO" + b"INAM" + struct.pack("<I", len(value)) + value
    chunk = b"LIST" + struct.pack("<I", len(info)) + info
    body = data[12:] + chunk
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def test_wav_at_16k_decodes_to_its_own_samples() -> None:
    data = tone_wav()
    got = media.decode_audio(data)
    with wave.open(io.BytesIO(data)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert got.dtype == np.float32 and len(got) == len(raw)
    assert np.array_equal(got, raw.astype(np.float32) / 32768.0)


def test_wav_is_resampled_to_16k(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    path.write_bytes(tone_wav(rate=44_100, seconds=1.0))
    got = media.decode_audio(path)
    assert abs(len(got) - 16_000) <= 32  # one second at 16 kHz, give or take the filter
    assert 0.15 < float(np.abs(got).max()) < 0.3  # the tone's amplitude (8000 / 32768)


def test_mp3_decodes(media_dir: Path) -> None:
    got = media.decode_audio(media_dir / "newsreel.mp3")
    assert abs(len(got) / 16_000 - 17.44) < 0.05  # the clip's duration in seconds
    assert float(np.abs(got).max()) > 0.1


def test_a_tag_that_is_not_utf8_does_not_stop_decoding() -> None:
    data = tone_wav(tag=b"caf\xe9 \xff\xfe")  # Latin-1 and garbage in the title
    assert len(media.decode_audio(data)) == 8000


@pytest.mark.parametrize("data,why", [(b"", "Invalid data"), (b"hello" * 40, "Invalid data")])
def test_not_audio_is_a_one_line_input_error(data: bytes, why: str) -> None:
    with pytest.raises(InputError, match="not a decodable audio or video file") as info:
        media.decode_audio(data)
    assert "\n" not in str(info.value)


@pytest.fixture
def media_dir() -> Path:
    from tests.conftest import MEDIA

    return MEDIA


def test_same_samples_as_faster_whispers_decoder(media_dir: Path) -> None:
    if media.AV_MAJOR >= 19:
        pytest.skip("faster-whisper 1.2.1's decode_audio does not run on PyAV 19 (the reason "
                    "mmcli decodes itself); compared on PyAV 18")
    from faster_whisper import decode_audio

    path = media_dir / "newsreel.mp3"
    assert np.array_equal(media.decode_audio(path), decode_audio(str(path)))
