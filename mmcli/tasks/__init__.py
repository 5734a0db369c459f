"""Tasks: the library layer between commands and engines.

``get(name)`` returns the task object (``mmcli.tasks.base.Task``) that the CLI
(``mmcli.cli.common.run_batch``), the library API (``mmcli.api``) and the batch loop drive
alike. Task modules are imported on first use; tests register fakes with ``register``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmcli.tasks.base import Task

NAMES = ("caption", "vqa", "transcribe", "speak", "segment", "chat")
_TARGETS = {name: f"mmcli.tasks.{name}:TASK" for name in NAMES}


def get(name: str) -> Task[Any]:
    """The task object of ``name`` (KeyError for an unknown task)."""
    module, _, attr = _TARGETS[name].partition(":")
    task: Task[Any] = getattr(importlib.import_module(module), attr)
    return task


def register(name: str, target: str) -> str | None:
    """Point ``name`` at ``"module:ATTR"`` (a fake in tests); returns the previous target."""
    previous = _TARGETS.get(name)
    _TARGETS[name] = target
    return previous


def registrations() -> dict[str, str]:
    """Task name -> ``"module:ATTR"`` now in force (a worker process re-applies them)."""
    return dict(_TARGETS)
