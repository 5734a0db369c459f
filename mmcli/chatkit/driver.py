"""Lines in, replies out: the /commands and turns shared by the REPL and ``--script`` chat.

A line starting with ``/`` is a command; anything else is a message that takes the queued
attachments with it. Every error is one line and the session goes on.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mmcli.chatkit import attachments as attach
from mmcli.chatkit import regions, transcript
from mmcli.chatkit.records import ChatRecord
from mmcli.chatkit.session import ChatSession
from mmcli.chatkit.speak import Speaker
from mmcli.errors import MmcliError, UsageError
from mmcli.records import ResolvedModel

HELP = """\
/help                 this list
/attach PATH...       attach files to the next message (images, audio, video, text; Tab
                      completes)
/attach IMG --point X,Y
                      attach a region: the object at X,Y, segmented and marked in a crop
                      (--box X0,Y0,X1,Y1: the object in a box; --neg-point X,Y leaves an
                      area out; each --point / --box is one region)
/detach               drop the queued attachments
/model NAME           switch models (the conversation is kept)
/system [TEXT]        set the system prompt (no text: back to the model's default)
/reset                forget the conversation (the system prompt stays)
/save FILE            save the conversation as JSON (never overwrites an existing FILE)
/save! FILE           the same, overwriting FILE
/load FILE            resume a saved conversation
/speak on [DIR]|off   read replies aloud (or write them as WAV files into DIR)
/exit                 leave (or Ctrl-D)
Enter sends; Alt-Enter (or a line ending in \\) starts a new line; Ctrl-C stops a reply."""


class Printer(Protocol):
    """Where the driver's output goes (the REPL's Rich console, or plain streams)."""

    def piece(self, text: str) -> None: ...
    def end(self, record: ChatRecord) -> None: ...
    def say(self, text: str) -> None: ...
    def error(self, message: str, hint: str | None = None) -> None: ...


class ChatDriver:
    """Runs lines against a session; ``failed`` is set once any line failed."""

    def __init__(self, session: ChatSession, printer: Printer,
                 load_model: Callable[[str], ResolvedModel], speaker: Speaker) -> None:
        self.session = session
        self.printer = printer
        self.load_model = load_model
        self.speaker = speaker
        self.pending: list[attach.Attachment] = []
        self.failed = False

    def handle(self, line: str, should_stop: Callable[[], bool] | None = None) -> bool:
        """Run one line; False when the user asked to exit."""
        line = line.strip()
        if not line:
            return True
        try:
            if line.startswith("/"):
                return self.command(line)
            self.turn(line, should_stop)
        except MmcliError as exc:
            self.failed = True
            self.printer.error(exc.message, exc.hint)
        return True

    def turn(self, text: str, should_stop: Callable[[], bool] | None = None) -> None:
        """Send a message with the queued attachments and print the reply as it streams."""
        atts, self.pending = self.pending, []
        record = None
        for event in self.session.send(text, atts, should_stop):
            if isinstance(event, ChatRecord):
                record = event
            else:
                self.printer.piece(event)
        assert record is not None
        self.printer.end(record)
        if self.speaker.enabled:
            path = self.speaker.say(record.reply)
            if path is not None:
                self.printer.say(f"(spoken reply: {path})")

    def command(self, line: str) -> bool:
        """Run a /command; False for /exit."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        handler = COMMANDS.get(name.lower())
        if handler is None:
            raise UsageError(f"unknown command {name}", hint="type /help for the list")
        return handler(self, rest) is not False

    def attach(self, rest: str) -> None:
        """Queue files for the next message; each bad path is its own error line."""
        try:
            paths, asked = regions.split(shlex.split(rest))
        except ValueError as exc:
            raise UsageError(f"/attach: {exc}")
        if not paths:
            queued = "; ".join(a.label for a in self.pending) or "nothing"
            self.printer.say(f"queued: {queued}")
            return
        if asked:
            self.attach_regions(paths[0], asked)
            return
        for path in paths:
            try:
                att = attach.load(path, self.session.options.max_text_kb)
            except MmcliError as exc:
                self.failed = True
                self.printer.error(exc.message, exc.hint)
                continue
            self.pending.append(att)
            self.printer.say(f"attached {att.name} ({att.kind}, {_size(len(att.data))}) "
                             "to the next message")

    def attach_regions(self, path: str, asked: dict[str, list[str]]) -> None:
        """Queue the regions of one image (``/attach IMG --point X,Y``); a region whose mask
        is empty is its own error line, the others are queued."""
        session = self.session
        image = attach.load(path, session.options.max_text_kb)
        made, problems = regions.attach(image, asked, session.settings,
                                        session.options.segment_model, session.max_side)
        for problem in problems:
            self.failed = True
            self.printer.error(problem)
        for att in made:
            self.pending.append(att)
            assert att.region is not None and att.region.mask is not None
            self.printer.say(f"attached {att.label} (mask of {att.region.mask.area} px, crop "
                             f"{_crop(att.region.crop)}) to the next message")


def _crop(box: list[int]) -> str:
    return f"{box[2] - box[0]}x{box[3] - box[1]} at {box[0]},{box[1]}"


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.0f} KB" if n < 1 << 20 else \
        f"{n / (1 << 20):.1f} MB"


def _help(d: ChatDriver, rest: str) -> None:
    d.printer.say(HELP)


def _detach(d: ChatDriver, rest: str) -> None:
    d.printer.say(f"dropped {len(d.pending)} queued attachment(s)")
    d.pending = []


def _model(d: ChatDriver, rest: str) -> None:
    if not rest:
        d.printer.say(f"model: {d.session.model.name} (context {d.session.n_ctx} tokens)")
        return
    d.session.set_model(d.load_model(rest))
    d.printer.say(f"model: {d.session.model.name} (context {d.session.n_ctx} tokens)")


def _system(d: ChatDriver, rest: str) -> None:
    d.session.set_system(rest or None)
    d.printer.say(f"system prompt set: {rest}" if rest else "system prompt cleared")


def _reset(d: ChatDriver, rest: str) -> None:
    d.session.reset()
    d.pending = []
    d.printer.say("conversation reset")


def _save(d: ChatDriver, rest: str, overwrite: bool = False) -> None:
    command = "/save!" if overwrite else "/save"
    if not rest:
        raise UsageError(f"{command} needs a file name", hint=f"e.g. {command} chat.json")
    path = Path(rest)
    if not overwrite and (path.expanduser().exists() or path.expanduser().is_symlink()):
        # One line, nothing written: a stray /save must not clobber a file.
        raise UsageError(f"{rest} already exists; /save! {rest} overwrites it")
    transcript.save(path, d.session.conv, d.session.model.name)
    d.printer.say(f"saved {len(d.session.conv.turns)} turn(s) to {rest}")


def _save_over(d: ChatDriver, rest: str) -> None:
    _save(d, rest, overwrite=True)


def _load(d: ChatDriver, rest: str) -> None:
    if not rest:
        raise UsageError("/load needs a file name", hint="e.g. /load chat.json")
    conv, model, notes = transcript.load(Path(rest))
    d.session.reset()
    conv.default_system = d.session.conv.default_system
    d.session.conv = conv
    for turn in conv.turns:  # saved bridged texts seed the cache: no re-captioning
        for att in turn.attachments:
            if att.used_as in ("described", "transcribed") and att.by and att.text is not None:
                d.session.bridge.remember(att.kind, att.key, att.by, att.text)
            elif att.region is not None and att.used_as == "native":  # the crop is not saved
                regions.restore(att, d.session.settings, d.session.options.segment_model,
                                d.session.max_side)
            elif att.kind == "video" and att.used_as == "native":
                d.session.prepare(att)  # the frames are not saved: sample the clip again
    for note in notes:
        d.printer.say(note)
    other = f" (saved with {model}; chatting with {d.session.model.name})" \
        if model and model != d.session.model.name else ""
    d.printer.say(f"loaded {len(conv.turns)} turn(s) from {rest}{other}")


def _speak(d: ChatDriver, rest: str) -> None:
    word, _, folder = rest.partition(" ")
    if word == "on":
        d.printer.say(d.speaker.on(Path(folder.strip()).expanduser() if folder.strip()
                                   else None))
    elif word == "off":
        d.speaker.off()
        d.printer.say("speech off")
    else:
        raise UsageError("/speak takes on [DIR] or off")


def _exit(d: ChatDriver, rest: str) -> bool:
    return False


COMMANDS: dict[str, Callable[[ChatDriver, str], bool | None]] = {
    "/help": _help, "/?": _help, "/attach": ChatDriver.attach, "/detach": _detach,
    "/model": _model, "/system": _system, "/reset": _reset, "/save": _save,
    "/save!": _save_over, "/load": _load, "/speak": _speak, "/exit": _exit, "/quit": _exit,
}
