"""Where a task's audio goes: ``AudioChunk`` events to a WAV sidecar, a streamed ``-o`` file,
one WAV on stdout, raw PCM on stdout, or a system player (``AudioTarget.mode``).

One ``AudioSink`` per run; ``start`` / ``chunk`` / ``finish`` (or ``abort``) per input.
"""

from __future__ import annotations

import sys
import wave
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from mmcli import audio
from mmcli.atomic import atomic_file
from mmcli.errors import OutputError, UsageError
from mmcli.events import AudioChunk

MODES = ("sidecar", "file", "stdout", "raw", "play")
Sidecar = tuple[str, "bytes | str"]  # (suffix, content) of one file under --output-dir


@dataclass(frozen=True)
class AudioTarget:
    """Where a task's ``AudioChunk`` events go: ``sidecar`` (a ``.wav`` per input under
    ``--output-dir``), ``file`` (``path``, streamed), ``stdout`` (one WAV on a pipe), ``raw``
    (PCM to stdout as it comes) or ``play`` (a system player)."""

    mode: str
    path: str | None = None


def binary(stream: TextIO | BinaryIO) -> BinaryIO:
    """The byte stream under a text stream (a test runner's stream may be bytes already)."""
    out: BinaryIO = getattr(stream, "buffer", None) or stream  # type: ignore[assignment]
    return out


class WavStream:
    """A WAV file written as PCM arrives, renamed into place by ``close`` (atomic)."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        self._stack = ExitStack()
        try:
            fh = self._stack.enter_context(atomic_file(path))
            self._wav = wave.open(fh, "wb")  # noqa: SIM115 - closed in close()/abort()
        except OSError as exc:
            self._stack.close()
            raise _output_error(path, exc) from None
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)

    def write(self, pcm: bytes) -> None:
        """Append 16-bit mono PCM."""
        try:
            self._wav.writeframes(pcm)
        except OSError as exc:
            self.abort()
            raise _output_error(self.path, exc) from None

    def close(self) -> None:
        """Finish the header and rename the temp file to ``path``."""
        try:
            self._wav.close()
            self._stack.close()
        except OSError as exc:
            self.abort()
            raise _output_error(self.path, exc) from None

    def abort(self) -> None:
        """Drop the temp file: ``path`` stays as it was."""
        try:
            self._wav.close()  # else its __del__ flushes into the closed temp file later
        except (OSError, ValueError):
            pass
        err = RuntimeError("aborted")
        self._stack.__exit__(RuntimeError, err, None)


def _output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}",
                       hint="free space or fix permissions; nothing was left behind")


class AudioSink:
    """Routes ``AudioChunk`` events of one input at a time to the target."""

    def __init__(self, target: AudioTarget, stdout: TextIO | BinaryIO | None = None) -> None:
        if target.mode not in MODES:
            raise ValueError(f"unknown audio target {target.mode!r}")
        self.target = target
        self.stdout = stdout or sys.stdout
        if target.mode == "stdout" and getattr(self.stdout, "isatty", lambda: False)():
            raise UsageError("refusing to write WAV audio to a terminal",
                             hint="pass -o FILE, --play, --output-dir DIR, or redirect: "
                                  "mmcli speak \"…\" > speech.wav")
        self.player = audio.require_player() if target.mode == "play" else None
        self._parts: list[bytes] = []
        self._rate = 0
        self._file: WavStream | None = None

    def chunk(self, event: AudioChunk) -> None:
        """Take the next piece of the current input's audio."""
        self._rate = event.sample_rate
        if self.target.mode == "raw":
            out = binary(self.stdout)
            out.write(event.pcm)
            out.flush()
        elif self.target.mode == "file":
            if self._file is None:
                assert self.target.path is not None
                self._file = WavStream(Path(self.target.path), event.sample_rate)
            self._file.write(event.pcm)
        else:
            self._parts.append(event.pcm)

    def finish(self) -> tuple[list[Sidecar], list[Path]]:
        """End the current input: ``(sidecars to save, files already written)``."""
        parts, self._parts = self._parts, []
        mode = self.target.mode
        if mode == "file" and self._file is not None:
            stream, self._file = self._file, None
            stream.close()
            return [], [stream.path]
        if mode in ("raw", "file") or not self._rate:
            return [], []
        wav = audio.wav_bytes(b"".join(parts), self._rate)
        if mode == "sidecar":
            return [(".wav", wav)], []
        if mode == "stdout":
            out = binary(self.stdout)
            out.write(wav)
            out.flush()
        elif mode == "play":
            assert self.player is not None
            audio.play(wav, self.player)
        return [], []

    def abort(self) -> None:
        """The current input failed: drop what it produced (a streamed file stays untouched)."""
        self._parts = []
        if self._file is not None:
            self._file.abort()
            self._file = None
