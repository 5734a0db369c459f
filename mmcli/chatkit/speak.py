"""``/speak on|off``: read replies aloud through the speak task (``mmcli.api.run("speak")``).

Audio is played with the first player found (paplay, aplay, afplay, ffplay) or, when there is
none or a folder was given (``/speak on DIR``), written there as ``reply-001.wav``…
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from mmcli.atomic import atomic_write
from mmcli.errors import InputError
from mmcli.settings import Settings, data_dir

PLAYERS = (["paplay"], ["aplay", "-q"], ["afplay"], ["ffplay", "-nodisp", "-autoexit", "-loglevel",
                                                     "quiet"])


def player() -> list[str] | None:
    """The command line of an available audio player, or None."""
    for cmd in PLAYERS:
        if shutil.which(cmd[0]):
            return cmd
    return None


class Speaker:
    """Speaks replies when enabled; ``folder`` set = write WAV files instead of playing."""

    def __init__(self, settings: Settings, model: str | None = None) -> None:
        self.settings = settings
        self.model = model
        self.enabled = False
        self.folder: Path | None = None
        self.count = 0

    def on(self, folder: Path | None = None) -> str:
        """Enable speech; returns a line saying where the audio goes."""
        self.folder = folder or (None if player() else data_dir() / "speech")
        self.enabled = True
        if self.folder is None:
            return f"speaking replies aloud (player: {(player() or ['?'])[0]})"
        return f"writing spoken replies to {self.folder}/"

    def off(self) -> None:
        """Disable speech."""
        self.enabled = False

    def say(self, text: str) -> Path | None:
        """Synthesize ``text``; play it or write it. Returns the file written, if any."""
        from mmcli import api

        if not text.strip():
            return None
        record, wav = api.speak(text, self.model, settings=self.settings)
        if record.error is not None or not wav:
            why = record.error.message if record.error else "no audio"
            raise InputError(f"could not speak the reply: {why}")
        self.count += 1
        if self.folder is None and (cmd := player()):
            import tempfile

            with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
                tmp.write(wav)
                tmp.flush()
                subprocess.run([*cmd, tmp.name], check=False, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            return None
        path = (self.folder or data_dir() / "speech") / f"reply-{self.count:03d}.wav"
        atomic_write(path, wav)
        return path
