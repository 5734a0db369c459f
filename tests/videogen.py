"""Generate test clips with PyAV: scenes of distinct colours, an optional spoken sound track.

``make_clip(path, seconds=4, scenes=[...], speech_wav=bytes)`` writes an mp4 (H.264 + AAC) whose
scene ``i`` fills ``[i * seconds / n, (i + 1) * seconds / n)``; each frame carries a moving bar
so frames differ inside a scene too. Used by tests/test_video*.py and bench/video.py.
"""

from __future__ import annotations

import io
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

SCENES = [(220, 30, 30), (30, 200, 40), (30, 60, 220), (240, 220, 40)]


def make_clip(path: Path, *, seconds: float = 4.0, fps: int = 10, size: tuple[int, int] = (96, 64),
              scenes: list[tuple[int, int, int]] | None = None, speech_wav: bytes | None = None,
              video: bool = True, gop: int | None = None, codec: str = "libx264",
              vfr: bool = False) -> Path:
    """Write a clip to ``path`` (the container from the extension) and return ``path``.
    ``vfr``: variable frame rate (millisecond timestamps, gaps alternating 1x and 3x)."""
    scenes = scenes or SCENES
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        vstream = None
        if video:
            vstream = out.add_stream(codec, rate=fps)
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
            if gop:
                vstream.codec_context.gop_size = gop
            if vfr:
                vstream.time_base = vstream.codec_context.time_base = Fraction(1, 1000)
            if codec == "libx264":
                vstream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        astream = out.add_stream("aac", rate=16000) if speech_wav else None
        if vstream is not None:
            n = int(seconds * fps)
            w, h = size
            for i in range(n):
                scene = scenes[min(len(scenes) - 1, int(i / n * len(scenes)))]
                img = np.empty((h, w, 3), dtype=np.uint8)
                img[:] = scene
                x = (i * 3) % max(1, w - 8)
                img[:, x:x + 8] = 255 - np.array(scene, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = vfr_pts(i, fps) if vfr else i
                if vfr and frame.pts / 1000 >= seconds:
                    break
                for packet in vstream.encode(frame):
                    out.mux(packet)
            for packet in vstream.encode():
                out.mux(packet)
            if n == 0:
                out.start_encoding()  # a zero-length clip: header and trailer, no frame
        if astream is not None and speech_wav is not None:
            _write_audio(out, astream, speech_wav)
    return path


def vfr_pts(i: int, fps: int) -> int:
    """Millisecond time of frame ``i`` of a variable-rate clip: gaps of 1 and 3 frame periods."""
    period = 1000 // fps
    return (i // 2) * 4 * period + (i % 2) * period


def _write_audio(out: av.container.OutputContainer, stream: av.AudioStream, wav: bytes) -> None:
    with wave.open(io.BytesIO(wav)) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000)
    pts = 0
    for start in range(0, samples.shape[1], 4096):
        frame = av.AudioFrame.from_ndarray(samples[:, start:start + 4096].copy(), format="s16",
                                           layout="mono")
        frame.sample_rate = rate
        for rf in resampler.resample(frame):
            rf.pts = pts
            pts += rf.samples
            for packet in stream.encode(rf):
                out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


SPOKEN = "The red balloon flies over the green river."


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated clips: ``talk`` (4 s, four colour scenes, SPOKEN on the sound track),
    ``silent`` (no sound track), ``audio_only`` (an mp4 without video), ``truncated`` (the first
    3 kB of ``talk``), ``empty`` (0 bytes)."""
    from tests.speech_helpers import require_models, synthesize

    require_models()
    folder = tmp_path_factory.mktemp("clips")
    with pytest.MonkeyPatch.context() as mp:  # session scope: keep the user's cache untouched
        mp.setenv("MMCLI_CACHE", str(tmp_path_factory.mktemp("cache")))
        wav = synthesize(SPOKEN)
    talk = make_clip(folder / "talk.mp4", speech_wav=wav)
    out = {"talk": talk, "silent": make_clip(folder / "silent.mp4"),
           "audio_only": make_clip(folder / "audio_only.mp4", video=False, speech_wav=wav),
           "truncated": folder / "truncated.mp4", "empty": folder / "empty.mp4"}
    out["truncated"].write_bytes(talk.read_bytes()[:3000])
    out["empty"].write_bytes(b"")
    return out
