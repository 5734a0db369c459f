"""One-shot and scripted chat: plain streams, no terminal tricks.

* One-shot (``mmcli chat "question"``): the reply streams to stdout; ``--format json`` prints
  one record instead.
* Piped stdin without a prompt is one-shot too: all of stdin is the message.
* Scripted (``mmcli chat --script FILE``, or ``-`` for stdin): **one message per line**; a line
  ending in ``\\`` continues on the next; lines starting with ``/`` are commands (``/attach``,
  ``/save``…) — the user wrote the script, unlike piped content. Replies are separated by a
  newline; ``--format json``/``jsonl`` print one JSON line per turn.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from mmcli import console
from mmcli.chatkit.attachments import Attachment
from mmcli.chatkit.driver import ChatDriver
from mmcli.chatkit.records import ChatRecord
from mmcli.chatkit.session import ChatSession


class StreamPrinter:
    """Replies to stdout (streamed as text, or one JSON record per turn); the rest to stderr."""

    def __init__(self, fmt: str, out: TextIO | None = None, quiet: bool = False,
                 indent: int | None = None) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout
        self.quiet = quiet
        self.indent = indent

    def piece(self, text: str) -> None:
        """Stream a reply piece (text format only)."""
        if self.fmt == "text":
            self.out.write(text)
            self.out.flush()

    def end(self, record: ChatRecord) -> None:
        """Finish a reply: a newline, or the JSON record."""
        if self.fmt == "text":
            self.out.write("\n")
        else:
            self.out.write(record.to_json(indent=self.indent) + "\n")
        self.out.flush()

    def say(self, text: str) -> None:
        """Command feedback goes to stderr (stdout carries replies only)."""
        console.info(text, quiet=self.quiet)

    def error(self, message: str, hint: str | None = None) -> None:
        """A one-line error on stderr."""
        console.error(message, hint)


def oneshot(session: ChatSession, prompt: str, attachments: list[Attachment],
            fmt: str) -> ChatRecord:
    """Send one message and print the reply (streamed) or its record."""
    printer = StreamPrinter(fmt, quiet=session.settings.quiet,
                            indent=2 if fmt == "json" else None)
    record = None
    for event in session.send(prompt, attachments):
        if isinstance(event, ChatRecord):
            record = event
        else:
            printer.piece(event)
    assert record is not None
    printer.end(record)
    return record


def messages(lines: Iterable[str]) -> Iterator[str]:
    """Join continuation lines (ending in a backslash) into messages."""
    buf: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        yield "\n".join(buf)
        buf = []
    if buf:
        yield "\n".join(buf)


def scripted(driver: ChatDriver, lines: Iterable[str]) -> int:
    """Run every message/command of a ``--script``; 0 when all worked, else 1."""
    for message in messages(lines):
        if not driver.handle(message):
            break
    return 1 if driver.failed else 0
