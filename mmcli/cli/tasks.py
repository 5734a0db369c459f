"""Registers the task commands; each lives in its own thin module."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add caption, vqa, transcribe, speak, segment and chat to ``app``."""
    from mmcli.cli import chat, segment, speech, vision

    vision.register(app)
    speech.register(app)
    segment.register(app)
    chat.register(app)
