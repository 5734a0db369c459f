"""Task commands not implemented yet: each says so plainly and exits 2 (no fake output)."""

from __future__ import annotations

import typer

from mmcli.cli.common import not_available


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("transcribe", help="Transcribe speech in audio or video files. (not available yet)", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(not_available("transcribe"))
    app.command("speak", help="Speak text with a piper voice. (not available yet)", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(not_available("speak"))
