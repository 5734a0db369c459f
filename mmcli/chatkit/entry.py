"""What ``mmcli chat`` does once its options are parsed: pick a mode and run it.

* a prompt given         -> one-shot (stdin text, if piped, is attached as a document)
* no prompt, stdin a TTY -> the interactive REPL
* no prompt, stdin piped -> scripted: one message (or /command) per line
"""

from __future__ import annotations

import sys
from typing import TextIO

from mmcli import manifest, resolve
from mmcli.chatkit import attachments as attach
from mmcli.chatkit.driver import ChatDriver
from mmcli.chatkit.modes import StreamPrinter, oneshot, scripted
from mmcli.chatkit.records import Options
from mmcli.chatkit.session import ChatSession
from mmcli.chatkit.speak import Speaker
from mmcli.errors import UsageError
from mmcli.records import ResolvedModel
from mmcli.settings import Settings


def run_chat(settings: Settings, model: str | None, options: Options, prompt: str | None,
             attach_paths: list[str], fmt: str, stdin: TextIO | None = None) -> int:
    """Run one chat invocation; returns the exit code (errors of the whole run raise)."""
    stdin = stdin or sys.stdin
    interactive = prompt is None and _isatty(stdin)
    if interactive and fmt != "text":
        raise UsageError("--format json needs a prompt or scripted stdin, not the REPL")
    # Attachments are read before any model loads: a typo fails in milliseconds.
    atts = [attach.load(p, options.max_text_kb) for p in attach_paths]
    loaded = manifest.load(settings.models_file)

    def load_model(name: str | None) -> ResolvedModel:
        return resolve.resolve(name, "chat", loaded, settings)

    if prompt is not None:
        piped = b"" if _isatty(stdin) else _read_bytes(stdin)
        if piped.strip():
            atts.append(attach.from_bytes("-", piped, options.max_text_kb))
    session = ChatSession(load_model(model), settings, options)
    try:
        if prompt is not None:
            oneshot(session, prompt, atts, fmt)
            return 0
        driver = ChatDriver(session, StreamPrinter(fmt, quiet=settings.quiet), load_model,
                            Speaker(settings))
        driver.pending = atts
        if interactive:
            from mmcli.chatkit import repl

            return repl.run(driver, [e.name for e in loaded.for_task("chat")])
        return scripted(driver, stdin)
    finally:
        session.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _read_bytes(stream: TextIO) -> bytes:
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return bytes(buffer.read())
    data = stream.read()
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)
