"""Shared fixtures: isolated config/cache dirs, offline mode, an in-process CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest_plugins = ["tests.fakes.fixtures"]

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / "tests" / "media"
MEDIA_FILES = ("newspaper.jpg", "newsreel.mp3", "LICENSE-llama.cpp-media")


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets empty config/cache/data dirs and runs offline (no hub here anyway)."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_DATA_HOME", "data"), ("HF_HOME", "hf")):
        (home / sub).mkdir()
        monkeypatch.setenv(var, str(home / sub))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "MMCLI_CACHE", "MMCLI_MODELS",
                "MMCLI_OFFLINE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


class Cli:
    """Runs the app in-process; ``stdout`` and ``stderr`` stay separate."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: bytes | str | None = None,
                 env: dict[str, str] | None = None):  # noqa: ANN204 - click's Result
        from mmcli.cli.app import app

        return self.runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    """``cli("models", "list")`` -> click Result with .exit_code, .stdout, .stderr."""
    return Cli()


@pytest.fixture
def media() -> Path:
    """``tests/media``: real test media committed with the repo (newspaper.jpg, newsreel.mp3).

    Fails, never skips, when a file is missing: a checkout without them is broken.
    """
    missing = [name for name in MEDIA_FILES if not (MEDIA / name).is_file()]
    if missing:
        pytest.fail(f"test media missing from {MEDIA}: {', '.join(missing)}; restore them "
                    "from git (git checkout -- tests/media)", pytrace=False)
    return MEDIA


def write_manifest(path: Path, text: str) -> Path:
    """Write a test manifest file and return its path."""
    path.write_text(text)
    return path


@pytest.fixture
def subprocess_env() -> Iterator[dict[str, str]]:
    """Environment for running ``python -m mmcli`` in a subprocess with this checkout first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    yield env
