"""The batch's terminal view, driven through a pseudo-terminal (stdout and stderr both on it) and
read back through a terminal emulator (pyte), as a person would see the screen."""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.speech_helpers import SENTENCES, speech_dir  # noqa: F401

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")


def screen_of(args: list[str], env: dict[str, str], cols: int = 110) -> tuple[list[str], int]:
    """Run ``python -m mmcli ARGS`` on a pty; return the final screen's lines and exit code."""
    from tests.conftest import REPO

    child = pexpect.spawn(sys.executable, ["-m", "mmcli", *args], cwd=str(REPO), env=env,
                          timeout=300, dimensions=(60, cols))
    child.expect(pexpect.EOF)
    child.close()
    screen = pyte.Screen(cols, 60)
    pyte.ByteStream(screen).feed(child.before)
    return [line.rstrip() for line in screen.display], int(child.exitstatus or 0)


def test_data_lines_print_above_one_bar(speech_dir, tmp_path, subprocess_env) -> None:  # noqa: F811
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(3):
        shutil.copy(speech_dir / f"s{i}.wav", clips / f"clip-{i}.wav")
    out = tmp_path / "out"
    lines, code = screen_of(["transcribe", str(clips), "--output-dir", str(out)],
                            subprocess_env)
    assert code == 0, lines
    text = [line for line in lines if line]
    for i in range(3):  # each data line whole, on its own line
        assert str(out / f"clip-{i}.wav.txt") in text
    bars = [line for line in text if line.startswith("transcribe tiny.en-bundled")]
    assert len(bars) == 1, text  # one bar, not one per printed line
    assert "3 done" in bars[0] and "real time" in bars[0]
    assert text[-1].startswith("3 done, 0 failed, 0 skipped")


def test_narrow_terminal_keeps_the_bar_on_one_line(speech_dir, tmp_path,  # noqa: F811
                                                   subprocess_env) -> None:
    lines, code = screen_of(["transcribe", str(speech_dir / "s0.wav"), str(speech_dir / "s1.wav"),
                             "-f", "jsonl"], subprocess_env, cols=40)
    assert code == 0
    assert sum(1 for line in lines if line.startswith("transcribe")) == 1


def test_piped_stdout_is_unchanged(speech_dir, tmp_path, subprocess_env) -> None:  # noqa: F811
    """stdout to a file while stderr is the terminal: the data is byte-for-byte the records."""
    out = tmp_path / "records.jsonl"
    from tests.conftest import REPO

    cmd = (f"{sys.executable} -m mmcli transcribe {speech_dir / 's0.wav'} "
           f"{speech_dir / 's1.wav'} -f jsonl > {out}")
    child = pexpect.spawn("/bin/sh", ["-c", cmd], cwd=str(REPO), env=subprocess_env, timeout=300)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    data = out.read_text()
    assert data.count("\n") == 2 and data.startswith('{"input"') and "\x1b" not in data


def test_one_long_input_moves_the_bar_before_it_finishes(media, tmp_path,
                                                          subprocess_env) -> None:
    """70 s of speech (Whisper decodes 30 s windows): the bar shows the audio position inside
    the input while it is decoded, not 0/1 until the end."""
    import numpy as np

    from mmcli.audio import wav_bytes
    from mmcli.backends.media import decode_audio
    from tests.conftest import REPO

    samples = np.tile(decode_audio(media / "newsreel.mp3"), 4)
    long = tmp_path / "long.wav"
    long.write_bytes(wav_bytes((samples * 32767).astype("<i2").tobytes(), 16000))
    child = pexpect.spawn(sys.executable, ["-m", "mmcli", "transcribe", str(long), "-f", "json"],
                          cwd=str(REPO), env=subprocess_env, timeout=300, dimensions=(40, 140))
    index = child.expect([rb" ([1-9]\d?)/70 s", pexpect.EOF])
    assert index == 0, child.before[-400:]  # a position inside the clip, shown before the end
    inside = int(child.match.group(1))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and 0 < inside < 70


def test_error_lines_print_above_the_bar_too(speech_dir, tmp_path, subprocess_env) -> None:  # noqa: F811
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(speech_dir / "s0.wav", clips / "good.wav")
    (clips / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    shutil.copy(speech_dir / "s1.wav", clips / "later.wav")
    lines, code = screen_of(["transcribe", str(clips), "-f", "jsonl"], subprocess_env)
    assert code == 1
    errors = [line for line in lines if line.startswith("mmcli: error: ")]
    assert len(errors) == 1 and "broken.wav" in errors[0]
    assert sum(1 for line in lines if line.startswith("transcribe tiny.en-bundled")) == 1
