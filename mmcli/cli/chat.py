"""Task commands not implemented yet: each says so plainly and exits 2 (no fake output)."""

from __future__ import annotations

import typer

from mmcli.cli.common import add_not_available


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    add_not_available(app, "chat", "Chat with a local model, with attachments.")
