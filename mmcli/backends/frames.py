"""Video frame sampling with PyAV: a few frames evenly spread over a clip, never all of them.

The container is opened once; for each wanted time the demuxer seeks to the keyframe at or
before it and decodes forward only to that time, so 8 frames of a 10-minute clip cost 8 short
GOP decodes, not 18 000 frames. Each frame is scaled by FFmpeg (swscale) while it is converted
to RGB, so a 4K frame never exists as a full-size RGB array; rotation metadata (the display
matrix of phone videos) is applied; the pixel limit (``mmcli.images.max_pixels``) is checked
per frame before any conversion. Frames are yielded one at a time: memory stays bounded by one
decoded frame plus what the caller keeps.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from mmcli import images
from mmcli.backends.media import OPEN_OPTIONS, failure_reason, valid_frames
from mmcli.errors import InputError

DEFAULT_FPS = 0.5  # one frame every 2 s of clip ...
DEFAULT_MAX_FRAMES = 8  # ... but never more than this (a 10-minute clip: 8 evenly spread)
KEYFRAME_SLACK = 0.1  # share of the spacing between frames a keyframe may be early by


@dataclass(frozen=True)
class ClipInfo:
    """What a clip holds, read from its header (no frame decoded)."""

    duration_s: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its presentation time (seconds) and the picture for a model."""

    t: float
    picture: images.Picture


def _open(source: Path | bytes) -> Any:
    target: Any = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes) and not source:
        raise InputError("file is empty")
    if isinstance(source, Path) and source.stat().st_size == 0:
        raise InputError("file is empty")
    try:
        return av.open(target, mode="r", **OPEN_OPTIONS)
    except Exception as exc:  # PyAV raises FFmpegError subclasses, ValueError, …
        raise InputError(f"not a decodable video file ({failure_reason(exc)})") from None


def _duration(container: Any) -> float:
    streams = container.streams.video or container.streams.audio
    if streams and streams[0].duration is not None and streams[0].time_base is not None:
        return float(streams[0].duration * streams[0].time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return 0.0


def probe(source: Path | bytes) -> ClipInfo:
    """Duration and streams of a clip (InputError if it is not readable media)."""
    with _open(source) as container:
        video = container.streams.video
        ctx = video[0].codec_context if video else None
        return ClipInfo(duration_s=_duration(container), has_video=bool(video),
                        has_audio=bool(container.streams.audio),
                        width=ctx.width if ctx else 0, height=ctx.height if ctx else 0)


def no_video(has_audio: bool) -> InputError:
    """The error for a file without a video stream (audio-only, or an empty container)."""
    if has_audio:
        return InputError("no video stream (an audio-only file: use `mmcli transcribe`)")
    return InputError("no video stream and no audio stream (a zero-length clip?)")


def times(duration_s: float, fps: float, max_frames: int) -> list[float]:
    """Evenly spread sample times: ``min(max_frames, duration * fps)`` frames (at least one),
    each in the middle of its share of the clip (never the black first or last frame)."""
    n = max(1, min(max_frames, math.ceil(duration_s * fps)))
    return [round(duration_s * (i + 0.5) / n, 3) for i in range(n)]


SCENE_CUT = 0.2  # mean absolute difference (0..1) of 32x18 RGB thumbnails that makes a cut


def scene_times(source: Path | bytes, max_frames: int = DEFAULT_MAX_FRAMES) -> list[float]:
    """Times of the ``max_frames`` strongest scene changes (the first frame always counts).

    Every frame is decoded (scene changes need the content; ``--scenes`` is opt-in), but only a
    32x18 RGB thumbnail of the previous frame is kept (RGB, not grey: red to green is a cut
    that luma barely sees): memory does not grow with the clip.

    Raises:
        InputError: not a readable video, or no video stream.
    """
    cuts: list[tuple[float, float]] = []
    with _open(source) as container:
        if not container.streams.video:
            raise no_video(bool(container.streams.audio))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        previous = None
        try:
            for frame in valid_frames(container.decode(stream)):
                thumb = frame.reformat(width=32, height=18, format="rgb24").to_ndarray()
                thumb = thumb.astype("int16")
                change = 1.0 if previous is None else float(abs(thumb - previous).mean()) / 255
                if change >= SCENE_CUT:
                    cuts.append((change, float(frame.time or 0.0)))
                previous = thumb
        except Exception as exc:
            raise InputError(f"not a decodable video file ({failure_reason(exc)})") from None
    return sorted(t for _, t in sorted(cuts, key=lambda c: -c[0])[:max_frames])


def sample(source: Path | bytes, *, fps: float = DEFAULT_FPS,
           max_frames: int = DEFAULT_MAX_FRAMES, max_side: int | None = 1024,
           name: str = "video", at: list[float] | None = None) -> Iterator[Frame]:
    """Yield frames of ``source`` near evenly spread times, upright and downsized.

    Args:
        source: a video file or its bytes.
        fps: frames per second of clip to sample (capped by ``max_frames``).
        max_frames: the most frames yielded.
        max_side: long side of the yielded pictures (None or 0: full size).
        name: how the input is named in errors.
        at: these times instead of evenly spread ones (``scene_times``).
    Yields:
        ``Frame`` objects in time order (a time is the frame's own presentation time).
    Raises:
        InputError: no video stream, unreadable or truncated with no frame, too many pixels.
    """
    with _open(source) as container:
        if not container.streams.video:
            raise no_video(bool(container.streams.audio))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        duration = _duration(container)
        wanted = at if at is not None else times(duration, fps, max_frames)
        # A keyframe this close before a wanted time is taken as it is: a long GOP (10 s is
        # common) then costs no decoding at all, and the frame's own time is what is reported.
        slack = KEYFRAME_SLACK * duration / max(1, len(wanted)) if at is None else 0.0
        found = 0
        last_pts: int | None = None
        try:
            for t in wanted:
                frame = _frame_at(container, stream, t, slack)
                if frame is None or frame.pts == last_pts:
                    continue  # past the real end (header duration too long), or a repeat
                last_pts = frame.pts
                found += 1
                yield Frame(round(float(frame.time or 0.0), 3), _picture(frame, max_side, name))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"not a decodable video file ({failure_reason(exc)})") from None
        if not found:
            raise InputError("the video has no decodable frames (zero-length or truncated)")


def _frame_at(container: Any, stream: Any, t: float, slack: float = 0.0) -> Any:
    """The first frame at or after ``t`` (or the last one before the end), decoding from the
    keyframe at or before ``t`` - or that keyframe itself when it is within ``slack`` s."""
    if stream.time_base is not None:
        start = stream.start_time or 0
        container.seek(start + int(t / stream.time_base), stream=stream, backward=True,
                       any_frame=False)
    previous = None
    for frame in valid_frames(container.decode(stream)):
        if frame.time is None or frame.time + 1e-3 >= t:
            return frame
        if previous is None and frame.key_frame and t - frame.time <= slack:
            return frame
        previous = frame
    return previous


ROTATE = {90: 2, -270: 2, 180: 3, -180: 3, 270: 4, -90: 4}  # PIL Transpose values


def _picture(frame: Any, max_side: int | None, name: str) -> images.Picture:
    """RGB, scaled by swscale while converting, rotated per the display matrix."""
    from PIL import Image

    width, height = frame.width, frame.height
    limit = images.max_pixels()
    if width * height > limit:
        raise InputError(f"{name}: a {width}x{height} frame = {width * height:,} pixels is more "
                         f"than the {limit:,}-pixel limit",
                         hint="if the video is real, raise MMCLI_MAX_PIXELS")
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    w, h = max(2, round(width * scale)), max(2, round(height * scale))
    img = frame.reformat(width=w, height=h, format="rgb24").to_image()
    rotation = int(round(getattr(frame, "rotation", 0) or 0))
    if rotation in ROTATE:
        # FFmpeg's display-matrix angle is counter-clockwise; PIL's ROTATE_90 is too.
        img = img.transpose(Image.Transpose(ROTATE[rotation]))
    return images.Picture(width=img.width, height=img.height, rgb=img.tobytes(),
                          original_size=(width, height))
