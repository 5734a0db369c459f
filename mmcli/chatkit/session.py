"""A chat session: one loaded engine, the conversation, the bridge cache, one record per turn.

The session owns exactly one engine instance for its model (llama.cpp keeps the evaluated
tokens in it, which is what makes later turns cheap). ``send`` streams the reply's text pieces
and ends with the turn's ``ChatRecord``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from mmcli import console, engines
from mmcli.chatkit.attachments import Attachment, data_url
from mmcli.chatkit.bridge import Bridge
from mmcli.chatkit.conversation import (
    IMAGE_TOKENS,
    Conversation,
    Message,
    PrefixCheck,
    Turn,
    cost,
    fit,
)
from mmcli.chatkit.records import AttachmentInfo, ChatRecord, Options, Usage
from mmcli.errors import InputError
from mmcli.events import ChatDone, TextDelta
from mmcli.records import ResolvedModel, Timings
from mmcli.settings import Settings


class ChatSession:
    """Conversation + engine + bridge. ``shared`` engines come from ``mmcli.engines.load``
    (library use); otherwise the session loads and closes its own (so ``/model`` frees memory).
    """

    def __init__(self, model: ResolvedModel, settings: Settings, options: Options, *,
                 shared: bool = False, notice: Callable[[str], None] | None = None) -> None:
        self.model = model
        self.settings = settings
        self.options = options
        self.shared = shared
        self.notice = notice or (lambda msg: console.warn(msg, quiet=settings.quiet))
        self.conv = Conversation(system=options.system,
                                 default_system=model.options.get("system"))
        self.bridge = Bridge(settings, options.caption_model, options.transcribe_model)
        self.prefix = PrefixCheck()
        self.turns_sent = 0
        self.context_used = 0
        self._engine: Any = None
        self._load_s = 0.0
        self._ids: list[int] = []
        self._warned_prefix = False
        self._fitted: tuple[int, bool | None] = (0, None)
        # Tokens of one image: the manifest's ``image_tokens`` option or a rough guess, then
        # learned from the engine's real prompt count after each turn with images.
        self.image_tokens = int(model.options.get("image_tokens") or IMAGE_TOKENS)
        self.image_tokens_known = bool(model.options.get("image_tokens"))

    @property
    def engine(self) -> Any:
        """The loaded engine (loaded on first use)."""
        if self._engine is None:
            if self.shared:
                self._engine, self._load_s = engines.load(self.model, self.settings)
            else:
                cls = engines.backend_class(self.model.engine)
                start = time.perf_counter()
                self._engine = cls.load(self.model, self.settings)
                self._load_s = time.perf_counter() - start
        return self._engine

    @property
    def max_side(self) -> int:
        """The long side images are sent at (the model's ``max_side`` option, else 1024)."""
        return int(self.model.options.get("max_side", 1024))

    @property
    def n_ctx(self) -> int:
        """Context size of the loaded model."""
        return int(self.engine.n_ctx)

    def set_model(self, model: ResolvedModel) -> None:
        """Switch models, keeping the conversation (attachments are re-prepared for it)."""
        self.close()
        self.model = model
        self.conv.default_system = model.options.get("system")
        self.prefix.invalidate()
        self.image_tokens = int(model.options.get("image_tokens") or IMAGE_TOKENS)
        self.image_tokens_known = bool(model.options.get("image_tokens"))
        for turn in self.conv.turns:
            for att in turn.attachments:
                self.prepare(att)

    def set_system(self, text: str | None) -> None:
        """Replace the system prompt (the next turn re-evaluates the history)."""
        self.conv.system = text or None
        self.prefix.invalidate()

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.conv.turns.clear()
        self.prefix.invalidate()
        self.context_used = 0

    def close(self) -> None:
        """Close the session's own engine (shared ones are closed by ``engines.close_all``)."""
        if self._engine is not None and not self.shared:
            self._engine.close()
        self._engine = None

    def send(self, text: str, attachments: list[Attachment] | None = None,
             should_stop: Callable[[], bool] | None = None) -> Iterator[str | ChatRecord]:
        """Send one user message; yield reply text pieces, then the turn's ChatRecord.

        Raises:
            InputError: an attachment or the message cannot be used (the turn is not added).
            ModelUnavailableError / NotAvailableError: a bridge model is missing.
        """
        attachments = list(attachments or [])
        start = time.perf_counter()
        for att in attachments:
            self.prepare(att)
        turn = Turn(text, attachments)
        self.conv.turns.append(turn)
        try:
            self._frames_fit(turn)
            attach_s = time.perf_counter() - start
            self._fitted = self._fit()
        except BaseException:
            self.conv.turns.pop()
            raise
        pieces: list[str] = []
        done: ChatDone | None = None
        try:
            for event in self._chat(turn, should_stop):
                if isinstance(event, ChatDone):
                    done = event
                elif isinstance(event, TextDelta):
                    pieces.append(event.text)
                    yield event.text
            if done is None:
                raise RuntimeError(f"engine '{self.model.engine}' ended the reply without "
                                   "its ChatDone event")
        except BaseException:
            if pieces:  # Ctrl-C mid-reply: keep what was said so the history stays true
                turn.reply = "".join(pieces)
            else:
                self.conv.turns.remove(turn)
            raise
        turn.reply = "".join(pieces)
        self._learn(done)
        self.turns_sent += 1
        stopped = should_stop is not None and should_stop()
        dropped, reused = self._fitted  # the last fit (a fallback to captions fits again)
        yield self._record(turn, done, attach_s, dropped, reused, stopped)

    def prepare(self, att: Attachment, frames: int | None = None) -> None:
        """Set how ``att`` enters this model's prompt (a video: up to ``frames`` native
        frames, by default ``Options.max_frames``)."""
        self.bridge.prepare(att, chat_model=self.model.name,
                            has_vision=bool(getattr(self.engine, "has_vision", False)),
                            frames=self.options.max_frames if frames is None else frames)

    def _frames_fit(self, turn: Turn) -> None:
        """A native video whose frames do not fit the context even alone (system prompt + this
        turn + the reply's reserve) enters as timed captions instead, with a notice."""
        videos = [a for a in turn.attachments if a.kind == "video" and a.frames]
        if not videos:
            return
        alone = Conversation(self.conv.system, [turn], self.conv.default_system)
        reserve = min(self.options.max_tokens, self.n_ctx // 2)
        tokens = cost(alone, self._count, self.image_tokens)
        if tokens + reserve > self.n_ctx and not self.image_tokens_known:
            try:  # the rough guess says no: ask the model what one frame really costs
                self._measure(videos[0].frames[0][1])
            except InputError:
                pass  # not even one frame fits: the guess stands
            tokens = cost(alone, self._count, self.image_tokens)
        if tokens + reserve > self.n_ctx:
            self._to_captions(videos, f"~{tokens} tokens with the reply's {reserve}")

    def _measure(self, image: bytes) -> None:
        """The model's tokens per image (sizes alike, e.g. one clip's frames), from one image
        through the engine: its prompt count minus the text-only count with a placeholder."""
        def message(part: dict[str, Any]) -> list[Message]:
            return [{"role": "user", "content": [part, {"type": "text", "text": "."}]}]

        text = len(self.engine.prompt_tokens(message({"type": "text", "text": "<image>"})))
        url = {"type": "image_url", "image_url": {"url": data_url(image)}}
        done = [e for e in self.engine.chat(message(url), max_tokens=1)
                if isinstance(e, ChatDone)]
        if done:
            self.image_tokens = max(1, done[0].prompt_tokens - text)
            self.image_tokens_known = True
        self.prefix.invalidate()  # the engine's evaluated tokens are the probe's now

    def _to_captions(self, videos: list[Attachment], why: str) -> None:
        for att in videos:
            self.notice(f"{att.name}: {len(att.frames)} frames as images need {why}, more than "
                        f"the context holds ({self.n_ctx}): the frames enter as captions")
            self.prepare(att, frames=0)
        self.prefix.invalidate()

    def _chat(self, turn: Turn, should_stop: Callable[[], bool] | None,
              ) -> Iterator[ChatDone | TextDelta | Any]:
        """The engine's reply events; when the engine's exact count finds that a native
        video's frames do not fit (before any reply text), once more with captions."""
        def call() -> Iterator[Any]:
            return iter(self.engine.chat(
                self.conv.messages(), max_tokens=self.options.max_tokens,
                temperature=self.options.temperature, seed=self.options.seed,
                should_stop=should_stop))

        events = call()
        try:
            first = next(events, None)
        except InputError as exc:
            videos = [a for a in turn.attachments if a.kind == "video" and a.frames]
            if not videos or "context" not in exc.message:
                raise
            self._to_captions(videos, f"more tokens ({exc.message})")
            dropped, _ = self._fitted
            more, reused = self._fit()
            self._fitted = (dropped + more, reused)
            events = call()
            first = next(events, None)
        if first is not None:
            yield first
            yield from events

    def _learn(self, done: ChatDone | None) -> None:
        """Take the model's real image cost from a turn with images: the engine's prompt
        count minus the text-only count (whose placeholders the estimate then absorbs)."""
        images = self.conv.image_count()
        if done is None or not images or not self._ids:
            return
        self.image_tokens = max(1, (done.prompt_tokens - len(self._ids)) // images)
        self.image_tokens_known = True

    def _fit(self) -> tuple[int, bool | None]:
        """Fit the history into n_ctx and check KV-prefix stability; (dropped, reused)."""
        reserve = min(self.options.max_tokens, self.n_ctx // 2)
        _, dropped = fit(self.conv, self._count, self.n_ctx, reserve, self.image_tokens)
        if dropped:
            self.notice(f"context full ({self.n_ctx} tokens): dropped the oldest "
                        f"{dropped} turn{'s' if dropped > 1 else ''} (system prompt kept)")
            self.prefix.invalidate()
        reused = self.prefix.check(self._ids)
        if reused is False and not self._warned_prefix:
            self._warned_prefix = True
            self.notice(f"the chat template of '{self.model.name}' rewrites earlier turns: "
                        "every turn re-evaluates the whole history (slower)")
        return dropped, reused

    def _count(self, messages: list[Message]) -> int:
        self._ids = list(self.engine.prompt_tokens(messages))
        return len(self._ids)

    def _record(self, turn: Turn, done: ChatDone, attach_s: float, dropped: int,
                reused: bool | None, stopped: bool) -> ChatRecord:
        load_s, self._load_s = self._load_s, 0.0
        decode_s = done.total_s - done.ttft_s
        tps = (done.completion_tokens - 1) / decode_s if done.completion_tokens > 1 and \
            decode_s > 0 else 0.0
        self.context_used = done.prompt_tokens + done.completion_tokens
        extra = {"attach_s": attach_s, "ttft_s": done.ttft_s, "tokens_per_s": tps,
                 **dict(done.extra)}
        return ChatRecord(
            input=turn.user, task="chat", model=self.model.info, device=self.engine.device,
            timings=Timings(load_s=load_s, run_s=attach_s + done.total_s, extra=extra),
            reply=turn.reply or "", finish_reason="interrupted" if stopped else done.finish_reason,
            usage=Usage(done.prompt_tokens, done.completion_tokens, done.cached_tokens),
            attachments=[info(a) for a in turn.attachments], turn=self.turns_sent,
            context=self.n_ctx, dropped_turns=dropped, prefix_reused=reused)


def info(att: Attachment) -> AttachmentInfo:
    """The record view of an attachment."""
    return AttachmentInfo(path=att.path, kind=att.kind, sha256=att.sha256, bytes=len(att.data),
                          used_as=att.used_as, by=att.by,
                          text=att.text if att.used_as in ("described", "transcribed") or
                          att.frames else None,
                          cached=att.cached, frames=len(att.frames) if att.frames else None,
                          region=att.region.mask if att.region is not None else None)
