"""Fixtures that plug the fake engine and a hidden ``fake-caption`` command into the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
import typer

from mmcli import engines, tasks
from mmcli.cli import common
from tests.fakes.engine import FakeEngine

FAKE_MANIFEST = """
[models.fake-echo]
engine = "fake"
tasks = ["caption"]
description = "fake engine for tests"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ model = "weights.bin" }}

[defaults]
caption = ["fake-echo"]
"""


def fake_caption(
    ctx: typer.Context,
    inputs: common.InputsArg = None,
    model: common.ModelOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f")] = "text",
    output: common.OutputOpt = None,
    upper: Annotated[bool, typer.Option("--upper")] = False,
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Hidden test command: runs the fake task through the shared batch driver."""
    from tests.fakes.task import Options

    common.run_batch(ctx, task="caption", inputs=inputs, model=model, fmt=fmt, output=output,
                     batch=batch, options=Options(upper=upper))


def install() -> None:
    """Register the fake engine, point the caption task at the fake task, add the command."""
    from mmcli.cli.app import app

    engines.register(engines.EngineSpec("fake", "tests.fakes.engine:FakeEngine",
                                        frozenset({"caption"})))
    tasks.register("caption", "tests.fakes.task:TASK")
    app.command("fake-caption", hidden=True)(common.batch_options(fake_caption))


def write_manifest(tmp_path: Path) -> Path:
    """A manifest whose only caption model is the fake one (files in tmp_path)."""
    model_dir = tmp_path / "fake-model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "weights.bin").write_bytes(b"w")
    manifest = tmp_path / "fake.toml"
    manifest.write_text(FAKE_MANIFEST.format(dir=model_dir))
    return manifest


@pytest.fixture
def fake_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Registers engine ``fake`` + command ``fake-caption``; yields a manifest using them."""
    from mmcli.cli.app import app

    manifest = write_manifest(tmp_path)
    FakeEngine.loads = 0
    before = list(app.registered_commands)
    previous = tasks.register("caption", "mmcli.tasks.caption:TASK")
    install()
    try:
        yield manifest
    finally:
        tasks.register("caption", previous or "mmcli.tasks.caption:TASK")
        app.registered_commands[:] = before
        engines.close_all()
        engines.unregister("fake")
