"""What ``mmcli chat`` does once its options are parsed: pick a mode and run it.

* a prompt given             -> one-shot (stdin text, if piped, is attached as a document)
* ``--script FILE`` (or ``-``) -> scripted: one message (or /command) per line of FILE
* no prompt, stdin piped     -> one-shot: the whole of stdin is ONE message
* no prompt, stdin a TTY     -> the interactive REPL

Piped stdin is content, never commands: a document with a ``/save FILE`` or ``/attach PATH``
line reaches the model as text. Only a script the user named with ``--script`` runs /commands.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
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
             attach_paths: list[str], fmt: str, stdin: TextIO | None = None,
             script: str | None = None) -> int:
    """Run one chat invocation; returns the exit code (errors of the whole run raise)."""
    stdin = stdin or sys.stdin
    if prompt is not None and script is not None:
        raise UsageError("give a prompt or --script, not both",
                         hint="put the first message on the script's first line")
    piped = not _isatty(stdin)
    if prompt is None and script is None and not piped and fmt != "text":
        raise UsageError(f"--format {fmt} needs a prompt, piped stdin or --script, not the REPL")
    # Attachments and the script are read before any model loads: a typo fails in milliseconds.
    atts = [attach.load(p, options.max_text_kb) for p in attach_paths]
    lines: Iterable[str] | None = None
    if script is not None:
        lines = stdin if script == "-" else _read_script(script)
    elif piped:
        data = _read_bytes(stdin)
        if prompt is None:
            prompt = _stdin_message(data)
        elif data.strip():
            atts.append(attach.from_bytes("-", data, options.max_text_kb))
    loaded = manifest.load(settings.models_file)

    def load_model(name: str | None) -> ResolvedModel:
        return resolve.resolve(name, "chat", loaded, settings)

    session = ChatSession(load_model(model), settings, options)
    try:
        if prompt is not None:
            oneshot(session, prompt, atts, fmt)
            return 0
        driver = ChatDriver(session, StreamPrinter(fmt, quiet=settings.quiet), load_model,
                            Speaker(settings))
        driver.pending = atts
        if lines is not None:
            return scripted(driver, lines)
        from mmcli.chatkit import repl

        return repl.run(driver, [e.name for e in loaded.for_task("chat")])
    finally:
        session.close()


def _stdin_message(data: bytes) -> str:
    """Piped stdin without a prompt: all of it is one user message (slash lines included)."""
    try:
        text = data.decode("utf-8").rstrip().lstrip("\r\n")  # keep the first line's indent
    except UnicodeDecodeError:
        raise UsageError("piped stdin is not UTF-8 text, so it cannot be the message",
                         hint='give a prompt to attach it instead: ... | mmcli chat "describe '
                              'this"')
    if not text:
        raise UsageError("nothing to send: stdin is empty and no prompt was given",
                         hint='mmcli chat "question", or --script FILE for several turns')
    return text


def _read_script(path: str) -> list[str]:
    """The lines of a ``--script`` file (read whole, before the model loads)."""
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"--script {path}: no such file")
    except IsADirectoryError:
        raise UsageError(f"--script {path}: is a folder, not a script")
    except UnicodeDecodeError:
        raise UsageError(f"--script {path}: not UTF-8 text")
    except OSError as exc:
        raise UsageError(f"--script {path}: cannot read ({exc.strerror or exc})")


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
