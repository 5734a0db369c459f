"""Audio (and later video) decoding with PyAV, owned by mmcli rather than borrowed from an
engine, so it works with every PyAV mmcli allows (18 and 19 take different ``av.open`` options).

Why not faster-whisper's ``decode_audio``: 1.2.1 calls ``av.open(..., metadata_errors=...)``,
which PyAV 19 removed (every audio input failed on Python 3.12/3.13, where pip picks PyAV 19).
The pipeline below is the same one (decode, skip invalid frames, group, resample to s16 mono),
so the samples are the same.
"""

from __future__ import annotations

import gc
import io
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from mmcli.errors import InputError

AV_MAJOR = int(av.__version__.split(".")[0])
# PyAV < 19 decodes container metadata strictly unless told otherwise (a file with a binary or
# non-UTF-8 tag would fail to open); 19 removed the option and never fails on metadata.
OPEN_OPTIONS: dict[str, Any] = {"metadata_errors": "ignore"} if AV_MAJOR < 19 else {}
GROUP_SAMPLES = 500_000  # resample in large groups: fewer resampler calls (as faster-whisper)


def decode_audio(source: Path | bytes, sample_rate: int = 16_000) -> np.ndarray:
    """Mono float32 samples at ``sample_rate`` of an audio or video file (or its bytes).

    Raises:
        InputError: not decodable audio (corrupt, truncated, no audio stream, not media).
    """
    target: Any = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    parts: list[np.ndarray] = []
    try:
        with av.open(target, mode="r", **OPEN_OPTIONS) as container:
            if not container.streams.audio:
                raise InputError("not a decodable audio or video file (no audio stream)")
            frames = _grouped(valid_frames(container.decode(audio=0)))
            for frame in itertools.chain(frames, [None]):  # None flushes the resampler
                parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    except InputError:
        raise
    except Exception as exc:  # PyAV raises FFmpegError subclasses, ValueError, …
        raise InputError(f"not a decodable audio or video file ({failure_reason(exc)})") from None
    finally:
        del resampler
        gc.collect()  # PyAV's resampler keeps buffers until collected (faster-whisper #390)
    pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def valid_frames(frames: Iterable[Any]) -> Iterator[Any]:
    """Skip frames FFmpeg cannot decode (a damaged packet mid-file) instead of failing."""
    iterator = iter(frames)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def _grouped(frames: Iterable[Any]) -> Iterator[Any]:
    fifo = av.AudioFifo()
    for frame in frames:
        frame.pts = None  # the fifo checks timestamps; decoded audio may have gaps
        fifo.write(frame)
        if fifo.samples >= GROUP_SAMPLES:
            yield fifo.read()
    if fifo.samples > 0:
        yield fifo.read()


def failure_reason(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc).split(":")[0] or type(exc).__name__
    return "no audio stream" if "stream" in reason.lower() else reason
