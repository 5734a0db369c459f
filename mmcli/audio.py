"""Audio helpers that need no engine: WAV encoding (stdlib ``wave``) and system players."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from mmcli.errors import NotAvailableError

# (executable, argv before the file): tried in this order by ``--play``.
PLAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aplay", ("-q",)),
    ("paplay", ()),
    ("afplay", ()),
    ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "quiet")),
)


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """A complete WAV file (16-bit PCM by default) holding ``pcm``."""
    buf = io.BytesIO()
    write_wav(buf, [pcm], sample_rate, channels, sample_width)
    return buf.getvalue()


def write_wav(fh: BinaryIO, chunks: Iterable[bytes], sample_rate: int, channels: int = 1,
              sample_width: int = 2) -> int:
    """Stream PCM ``chunks`` into a WAV written to the seekable ``fh``; returns frames written.

    The header is patched with the real length at close, so memory stays flat however long
    the audio is.
    """
    frames = 0
    with wave.open(fh, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(sample_width)
        wav.setframerate(sample_rate)
        for chunk in chunks:
            wav.writeframes(chunk)
            frames += len(chunk) // (channels * sample_width)
    return frames


def find_player() -> list[str] | None:
    """argv prefix of the first installed system player, or None."""
    for name, args in PLAYERS:
        exe = shutil.which(name)
        if exe:
            return [exe, *args]
    return None


def require_player() -> list[str]:
    """The player argv, or a clear error naming the players mmcli looks for (exit 2)."""
    player = find_player()
    if player is None:
        names = ", ".join(name for name, _ in PLAYERS)
        raise NotAvailableError(f"--play needs an audio player on PATH; none of {names} was found",
                                hint="install one (e.g. alsa-utils for aplay, or ffmpeg for "
                                     "ffplay), or write a file with -o and play it yourself")
    return player


def play(wav: bytes, player: list[str]) -> None:
    """Play WAV bytes through ``player`` (a temp file, removed afterwards).

    Raises:
        OSError: the player failed (its exit status is in the message).
    """
    fd, tmp = tempfile.mkstemp(prefix="mmcli-", suffix=".wav")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(wav)
        done = subprocess.run([*player, tmp], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OSError(f"{Path(player[0]).name} exited {done.returncode}"
                          + (f": {detail[-1]}" if detail else ""))
    finally:
        os.unlink(tmp)
