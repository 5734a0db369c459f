"""The interactive REPL: prompt_toolkit input, Rich output, Ctrl-C stops only the reply.

History persists in ``$XDG_DATA_HOME/mmcli/chat_history``. Enter sends; Alt-Enter or a line
ending in ``\\`` inserts a newline (pasted multi-line text stays one message). Tab completes
/commands, paths after /attach, /save(!) and /load, and model names after /model. A bottom
toolbar shows the model and context use.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

from mmcli.chatkit.driver import COMMANDS, ChatDriver
from mmcli.chatkit.records import ChatRecord
from mmcli.settings import data_dir

PROMPT = ">>> "


class ReplPrinter:
    """Rich rendering: streamed reply, a dim status line after it, coloured notices."""

    def __init__(self, status: Callable[[], str]) -> None:
        from rich.console import Console

        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        self.status = status

    def piece(self, text: str) -> None:
        """Stream a piece of the reply (soft wrap: the terminal wraps, no re-layout)."""
        self.out.print(text, end="", markup=False, soft_wrap=True)

    def end(self, record: ChatRecord) -> None:
        """End the reply; show how attachments were used and the turn's numbers."""
        self.out.print()
        for a in record.attachments:
            how = a.used_as + (f", {a.frames} frames" if a.frames else "") + \
                (f" by {a.by}" if a.by else "") + (" (cached)" if a.cached else "")
            where = f", region {_where(a.region.prompt)}" if a.region is not None else ""
            self.err.print(f"  [{a.kind} {a.path}{where}: {how}]", style="dim", markup=False)
        extra = record.timings.extra
        stopped = " · stopped" if record.finish_reason == "interrupted" else ""
        cut = " · cut at --max-tokens" if record.finish_reason == "length" else ""
        self.err.print(f"  [{self.status()} · {extra.get('tokens_per_s', 0):.0f} tok/s · first "
                       f"token {extra.get('ttft_s', 0):.2f} s{stopped}{cut}]",
                       style="dim", markup=False)

    def say(self, text: str) -> None:
        """Command feedback."""
        self.out.print(text, style="cyan", markup=False)

    def error(self, message: str, hint: str | None = None) -> None:
        """One red line (plus a dim hint)."""
        self.err.print(f"error: {message}", style="red", markup=False)
        if hint:
            self.err.print(f"hint: {hint}", style="dim", markup=False)


def _where(prompt: dict[str, Any]) -> str:
    """A region's prompt as typed: ``320,240`` or ``10,10,50,40``."""
    spec = prompt.get("box") or (prompt.get("points") or [[]])[0]
    return ",".join(f"{v:g}" for v in spec)


def completer(models: Iterable[str]) -> Any:
    """Tab completion for /commands, paths and model names."""
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)
    names = sorted(models)

    class ChatCompleter(Completer):
        def get_completions(self, document: Any, event: Any) -> Any:
            text = document.text_before_cursor
            if not text.startswith("/"):
                return
            cmd, space, arg = text.partition(" ")
            if not space:
                for name in COMMANDS:
                    if name.startswith(cmd) and name != "/?":
                        yield Completion(name, -len(cmd))
                return
            word = arg.rsplit(" ", 1)[-1]
            if cmd in ("/attach", "/save", "/save!", "/load"):
                yield from paths.get_completions(Document(word, len(word)), event)
            elif cmd == "/model":
                yield from (Completion(n, -len(word)) for n in names if n.startswith(word))
            elif cmd == "/speak":
                yield from (Completion(w, -len(word)) for w in ("on", "off")
                            if w.startswith(word))

    return ChatCompleter()


def key_bindings() -> Any:
    """Enter sends, unless the line ends in a backslash; Alt-Enter always adds a newline."""
    from prompt_toolkit.filters import completion_is_selected
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    @kb.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    @kb.add("enter", filter=~completion_is_selected)
    def _enter(event: Any) -> None:
        buf = event.current_buffer
        if buf.document.text_before_cursor.endswith("\\"):
            buf.delete_before_cursor(1)
            buf.insert_text("\n")
        else:
            buf.validate_and_handle()

    return kb


def run(driver: ChatDriver, models: Iterable[str]) -> int:
    """The prompt loop. Ctrl-C at the prompt clears the line; Ctrl-D or /exit leaves."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    history = data_dir() / "chat_history"
    history.parent.mkdir(parents=True, exist_ok=True)
    session = driver.session

    def status() -> str:
        queued = f" · {len(driver.pending)} attached" if driver.pending else ""
        return (f"{session.model.name} · context {session.context_used}/{session.n_ctx}"
                f"{queued}")

    printer = ReplPrinter(status)
    driver.printer = printer
    printer.err.print(f"mmcli chat · {status()} · /help for commands, Ctrl-D to exit",
                      style="dim", markup=False)
    prompt: Any = PromptSession(history=FileHistory(str(history)), completer=completer(models),
                                key_bindings=key_bindings(), multiline=True,
                                complete_while_typing=False,
                                prompt_continuation=lambda width, n, soft: "... ",
                                bottom_toolbar=lambda: f" {status()} · /help")
    while True:
        try:
            line = prompt.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if not _with_stop(driver, line):
            break
    return 0


def _with_stop(driver: ChatDriver, line: str) -> bool:
    """Run a line with SIGINT turned into a stop flag the engine polls between tokens."""
    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return driver.handle(line, should_stop=stop.is_set)
    finally:
        signal.signal(signal.SIGINT, previous)
