"""Global settings shared by every command (the options before the subcommand) and paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "metal")


@dataclass
class Settings:
    """What the global options and the environment say. Passed to tasks and engines."""

    models_file: Path | None = None
    offline: bool = False
    device: str = "auto"
    threads: int | None = None
    quiet: bool = False
    verbose: bool = False
    debug: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings with ``HF_HUB_OFFLINE`` / ``MMCLI_OFFLINE`` applied, then ``overrides``."""
        s = cls(offline=env_flag("HF_HUB_OFFLINE") or env_flag("MMCLI_OFFLINE"))
        for key, value in overrides.items():
            if value is not None:
                setattr(s, key, value)
        return s


def env_flag(name: str) -> bool:
    """True when an environment variable is set to a truthy value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/mmcli`` (default ``~/.config/mmcli``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mmcli"


def data_dir() -> Path:
    """``$XDG_DATA_HOME/mmcli`` (default ``~/.local/share/mmcli``): REPL history and such."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mmcli"


def cache_dir() -> Path:
    """mmcli's own cache for ``url`` sources: ``$MMCLI_CACHE`` or ``$XDG_CACHE_HOME/mmcli``."""
    if os.environ.get("MMCLI_CACHE"):
        return Path(os.environ["MMCLI_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmcli"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, resolved the way huggingface-hub does (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "huggingface" / "hub"
