"""Engine registry: engine name -> lazily imported backend class.

Real engines and test fakes register the same way (``register``). Nothing here imports an
engine package; ``load`` imports the backend module the first time a model is used, and keeps
one loaded instance per model for the life of the process.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mmcli.errors import EngineMissingError
from mmcli.tasks import NAMES as TASKS  # the one list of task names (re-exported)

__all__ = ["TASKS", "EngineSpec", "register", "unregister", "names", "spec", "load",
           "backend_class", "packages", "close_all"]

if TYPE_CHECKING:
    from mmcli.records import ResolvedModel
    from mmcli.settings import Settings



class Engine(Protocol):
    """What every backend class provides. Task methods are per family: ``mmcli.enginetypes``."""

    device: str

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> Engine: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EngineSpec:
    """A registered engine.

    Attributes:
        name: the manifest's ``engine`` value.
        target: ``"module:Class"`` of the backend, imported on first use.
        tasks: tasks this engine can serve.
        requires: import names of the packages the engine needs (checked by ``doctor``).
        pip: the install command to suggest when they are missing.
    """

    name: str
    target: str
    tasks: frozenset[str]
    requires: tuple[str, ...] = ()
    pip: str = ""


_REGISTRY: dict[str, EngineSpec] = {}
_LOADED: dict[tuple[str, ...], tuple[Any, float]] = {}


def register(spec: EngineSpec) -> None:
    """Add (or replace) an engine; tests register fakes through this too."""
    _REGISTRY[spec.name] = spec


def unregister(name: str) -> None:
    """Remove an engine (used by tests to undo a fake registration)."""
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    """Registered engine names, sorted."""
    return sorted(_REGISTRY)


def spec(name: str) -> EngineSpec:
    """The spec of a registered engine. KeyError if unknown (the manifest validates first)."""
    return _REGISTRY[name]


def load(model: ResolvedModel, settings: Settings) -> tuple[Any, float]:
    """Return ``(engine_instance, load_seconds)``; the second call for a model returns 0.0.

    Raises:
        EngineMissingError: the engine's package is not installed.
    """
    key = (model.engine, model.name, *sorted(str(p) for p in model.files.values()))
    if key in _LOADED:
        return _LOADED[key][0], 0.0
    cls = backend_class(model.engine)
    start = time.perf_counter()
    instance = cls.load(model, settings)
    elapsed = time.perf_counter() - start
    _LOADED[key] = (instance, elapsed)
    return instance, elapsed


def packages(name: str) -> dict[str, bool]:
    """Import name -> installed, for each package engine ``name`` needs."""
    return {mod: importlib.util.find_spec(mod) is not None for mod in _REGISTRY[name].requires}


def backend_class(name: str) -> Any:
    """Import and return the backend class of engine ``name``."""
    s = _REGISTRY[name]
    module_name, _, attr = s.target.partition(":")
    for mod, installed in packages(name).items():
        if not installed:
            raise EngineMissingError(
                f"the '{name}' engine needs the Python package '{mod}', which is not installed",
                hint=f"run `{s.pip}`" if s.pip else None,
            )
    return getattr(importlib.import_module(module_name), attr)


def close_all() -> None:
    """Close every loaded engine (explicitly: llama.cpp warns at interpreter exit otherwise)."""
    while _LOADED:
        _, (instance, _) = _LOADED.popitem()
        close = getattr(instance, "close", None)
        if close is not None:
            close()


def _builtin() -> None:
    register(EngineSpec("llama", "mmcli.backends.llama:LlamaEngine", frozenset({"chat"}),
                        ("llama_cpp",), "pip install llama-cpp-python"))
    register(EngineSpec("llama-mtmd", "mmcli.backends.llama:LlamaEngine",
                        frozenset({"caption", "vqa", "chat"}),
                        ("llama_cpp",), "pip install llama-cpp-python"))
    register(EngineSpec("whisper", "mmcli.backends.whisper:WhisperEngine",
                        frozenset({"transcribe"}), ("faster_whisper", "ctranslate2"),
                        "pip install faster-whisper"))
    register(EngineSpec("piper", "mmcli.backends.piper:PiperEngine", frozenset({"speak"}),
                        ("piper", "onnxruntime", "onnx"), "pip install piper-tts onnx"))
    register(EngineSpec("sam-onnx", "mmcli.backends.sam:SamEngine", frozenset({"segment"}),
                        ("onnxruntime", "numpy"), "pip install onnxruntime numpy"))


_builtin()
