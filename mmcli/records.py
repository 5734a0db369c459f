"""Typed result records: every task's JSON comes from these, never from ad-hoc dicts.

Every record carries ``input``, ``task``, ``model``, ``device``, ``timings`` and ``error``
(null on success), then the task's own fields (a subclass adds them).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmcli.errors import MmcliError

if TYPE_CHECKING:
    from mmcli.manifest import ModelEntry


def internal(default: Any = None) -> Any:
    """A record field kept out of JSON: binary payloads (WAV bytes, mask arrays) that the
    task's ``files()`` writes as sidecars. Use as ``audio: bytes = internal(b"")``."""
    return field(default=default, repr=False, compare=False, metadata={"json": False})


@dataclass
class ModelInfo:
    """Which model produced a record: name, source kind and its pin."""

    name: str
    source: str  # "repo:org/name", "url", "package:dist", "path:/x"
    revision: str | None = None
    sha256: str | None = None


@dataclass
class ResolvedModel:
    """A model whose files exist locally, ready for an engine to load (a plain value)."""

    name: str
    engine: str
    tasks: tuple[str, ...]
    files: dict[str, Path]
    info: ModelInfo
    options: dict[str, Any] = field(default_factory=dict)
    entry: ModelEntry | None = None


@dataclass
class Timings:
    """Seconds spent loading the model (0 after the first input) and running the task."""

    load_s: float = 0.0
    run_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float]:
        """Flatten ``extra`` (engine-specific timings such as ``encode_s``) into the dict."""
        out = {"load_s": round(self.load_s, 4), "run_s": round(self.run_s, 4)}
        out.update({k: round(v, 4) for k, v in self.extra.items()})
        return out


@dataclass
class ErrorInfo:
    """Why an input failed: the error class name and the one-line message."""

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Build from any exception; MmcliError keeps its message, others their repr text."""
        if isinstance(exc, MmcliError):
            return cls(exc.type_name, exc.message)
        return cls(type(exc).__name__, str(exc) or type(exc).__name__)


@dataclass
class Record:
    """The fields every task record shares. Task records subclass this and add fields."""

    input: str
    task: str
    model: ModelInfo | None = None
    device: str = "cpu"
    timings: Timings = field(default_factory=Timings)
    error: ErrorInfo | None = None

    @property
    def ok(self) -> bool:
        """True when the input succeeded."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: common fields first, then the task's own fields in declared order."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.metadata.get("json") is False:
                continue
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if f.name == "timings" else _plain(value)
        return out

    def to_json(self, indent: int | None = None) -> str:
        """Serialize ``to_dict()``; non-ASCII text stays readable."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def text(self) -> str:
        """Human-readable one-line (or few-line) result; tasks override."""
        if self.error is not None:
            return f"error: {self.error.message}"
        return ""


def _plain(value: Any) -> Any:
    """Turn nested dataclasses / tuples into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 4)
    return value
