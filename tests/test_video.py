"""Video frame sampling (mmcli.backends.frames) on clips generated with PyAV."""
# ruff: noqa: F811  (pytest fixtures imported from tests.videogen are used as arguments)

from __future__ import annotations

from pathlib import Path

import pytest

from mmcli.backends import frames
from mmcli.errors import InputError
from tests.videogen import SCENES, clips, make_clip, vfr_pts  # noqa: F401 - fixture


def colour(frame: frames.Frame) -> tuple[int, int, int]:
    """The colour of the frame's left edge (the moving bar never reaches it mid-scene)."""
    p = frame.picture
    row = (p.height // 2) * p.width * 3
    return tuple(p.rgb[row + 3 * 2: row + 3 * 2 + 3])  # type: ignore[return-value]


def near(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def test_times_evenly_spread_and_capped():
    assert frames.times(4.0, 1.0, 8) == [0.5, 1.5, 2.5, 3.5]
    assert frames.times(600.0, 0.5, 8) == [37.5 + 75 * i for i in range(8)]
    assert frames.times(0.2, 0.5, 8) == [0.1]  # always one frame
    assert frames.times(0.0, 0.5, 8) == [0.0]


def test_sampled_frames_have_their_times_and_scenes(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=4.0, fps=10)
    got = list(frames.sample(clip, fps=2.0, max_frames=4))
    assert [f.t for f in got] == [0.5, 1.5, 2.5, 3.5]
    for f, scene in zip(got, SCENES):  # one frame per scene, each the scene's colour
        assert near(colour(f), scene), (f.t, colour(f), scene)
    again = list(frames.sample(clip, fps=2.0, max_frames=4))
    assert [f.picture.rgb for f in again] == [f.picture.rgb for f in got]  # deterministic


def test_long_gop_seeks_and_vfr_times(tmp_path):
    clip = make_clip(tmp_path / "g.mkv", seconds=8.0, fps=5, gop=40, codec="mpeg4")
    got = list(frames.sample(clip, fps=1.0, max_frames=3))
    assert len(got) == 3
    assert all(abs(f.t - t) <= 0.21 for f, t in zip(got, [4 / 3, 4.0, 20 / 3]))


def test_frames_are_downsized_and_pixel_limit_applies(tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "big.mp4", seconds=1.0, fps=5, size=(640, 320))
    (f,) = frames.sample(clip, max_frames=1, max_side=160)
    assert (f.picture.width, f.picture.height) == (160, 80)
    assert f.picture.original_size == (640, 320)
    monkeypatch.setenv("MMCLI_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match="pixel limit"):
        list(frames.sample(clip, max_frames=1))


def test_probe_streams(clips):
    talk, silent, audio = (frames.probe(clips[k]) for k in ("talk", "silent", "audio_only"))
    assert (talk.has_video, talk.has_audio, talk.duration_s) == (True, True, 4.0)
    assert (silent.has_video, silent.has_audio) == (True, False)
    assert (audio.has_video, audio.has_audio) == (False, True)


@pytest.mark.parametrize("name, message", [
    ("audio_only", "no video stream"),
    ("truncated", "not a decodable video file"),
    ("empty", "file is empty"),
])
def test_bad_clips_are_input_errors(clips, name, message):
    with pytest.raises(InputError, match=message):
        list(frames.sample(clips[name]))


def test_bytes_source(clips):
    got = list(frames.sample(Path(clips["talk"]).read_bytes(), fps=1.0, max_frames=2))
    assert [f.t for f in got] == [1.0, 3.0]


def test_variable_frame_rate_times(tmp_path):
    clip = make_clip(tmp_path / "vfr.mp4", seconds=4.0, fps=10, vfr=True)
    got = list(frames.sample(clip, fps=2.0, max_frames=8))
    # frames exist at 0.0, 0.1, 0.4, 0.5, 0.8, 0.9, ...: each sample is the first at or after
    # its time, whatever the gaps
    wanted = frames.times(frames.probe(clip).duration_s, 2.0, 8)
    stamps = [t for i in range(40) if (t := vfr_pts(i, 10) / 1000) < 4.0]
    expected = [min((s for s in stamps if s + 1e-3 >= t), default=stamps[-1]) for t in wanted]
    assert [f.t for f in got] == sorted(set(expected))  # a repeated last frame is sent once
    assert len(got) >= 6


class Rotated:
    """A decoded frame whose display matrix says ``rotation`` degrees."""

    def __init__(self, frame, rotation: int) -> None:
        self.frame, self.rotation = frame, rotation
        self.width, self.height = frame.width, frame.height

    def reformat(self, **kwargs):
        return self.frame.reformat(**kwargs)


@pytest.mark.parametrize("rotation, size", [(0, (60, 40)), (90, (40, 60)), (-90, (40, 60)),
                                            (180, (60, 40))])
def test_rotation_metadata_is_applied(rotation, size):
    import av
    import numpy as np

    img = np.zeros((40, 60, 3), dtype=np.uint8)
    img[:20, :30] = (255, 0, 0)  # red top-left quadrant
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    pic = frames._picture(Rotated(frame, rotation), None, "x")
    assert (pic.width, pic.height) == size
    corner = {0: (0, 0), 90: (0, size[1] - 1), -90: (size[0] - 1, 0),
              180: (size[0] - 1, size[1] - 1)}[rotation]
    at = (corner[1] * pic.width + corner[0]) * 3
    assert pic.rgb[at] > 200 and pic.rgb[at + 1] < 60  # the red corner moved with the turn


def test_scene_changes(tmp_path):
    clip = make_clip(tmp_path / "s.mp4", seconds=8.0, fps=10, gop=250)  # one keyframe only
    assert frames.scene_times(clip, 8) == [0.0, 2.0, 4.0, 6.0]  # the four scenes' first frames
    assert len(frames.scene_times(clip, 2)) == 2
    got = list(frames.sample(clip, at=frames.scene_times(clip, 8)))
    assert [f.t for f in got] == [0.0, 2.0, 4.0, 6.0]
    # (frame 0.0 has the moving bar over the sampled column: scenes 2-4 are checked)
    assert [near(colour(f), s) for f, s in zip(got[1:], SCENES[1:])] == [True] * 3


def test_a_keyframe_close_enough_is_taken_without_decoding(tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "k.mkv", seconds=40.0, fps=5, gop=50, codec="mpeg4")
    monkeypatch.setattr(frames, "KEYFRAME_SLACK", 0.0)
    assert [f.t for f in frames.sample(clip, max_frames=4)] == [5.0, 15.0, 25.0, 35.0]
    monkeypatch.setattr(frames, "KEYFRAME_SLACK", 0.5)  # 5 s of a 10 s spacing
    assert [f.t for f in frames.sample(clip, max_frames=4)] == [0.0, 10.0, 20.0, 30.0]
