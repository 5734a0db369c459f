"""``fake`` engine: reads bytes and reports their size and hash. Counts loads."""

from __future__ import annotations

import hashlib
import os
import time

from mmcli.errors import InputError
from mmcli.records import ResolvedModel
from mmcli.settings import Settings


class FakeEngine:
    """Loads nothing heavy; ``describe`` fails on empty input like a real decoder would."""

    loads = 0

    def __init__(self, model: ResolvedModel) -> None:
        self.model = model
        self.device = "cpu"
        self.closed = False

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> FakeEngine:
        cls.loads += 1
        _pause("load")
        return cls(model)

    def describe(self, data: bytes, upper: bool = False) -> str:
        if not data:
            raise InputError("file is empty")
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))  # lets fault tests kill mid-batch
        text = f"{len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:12]}"
        return text.upper() if upper else text

    def close(self) -> None:
        _pause("close")
        self.closed = True


def _pause(stage: str) -> None:
    """FAKE_PAUSE=stage:marker-file: touch the marker, then sleep, so a test can signal the
    process exactly while it loads or closes the model."""
    spec = os.environ.get("FAKE_PAUSE", "")
    if spec.startswith(stage + ":"):
        with open(spec.split(":", 1)[1], "w"):
            pass
        time.sleep(3)
