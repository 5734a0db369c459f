"""``transcribe --batch-size N``: N inputs transcribed together, outputs in input order.

The runner keeps N inputs in flight, each running ``transcribe.transcribe_one`` (the sequential
path's own code) in its thread of the engine's batch; their CTranslate2 calls run together
(``mmcli.backends.whisperbatch``). The next inputs' audio is decoded ahead on a bounded queue
(``AHEAD`` inputs), so the engine does not wait for files. As the oldest input finishes, it is
yielded with its events and a new input takes its place. A bad file fails only itself (its
error record, through the same per-input guard as the sequential path); a failure of the whole
run (model, usage) stops it as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mmcli import console, engines
from mmcli.batch import Results, Runner, guarded, sequential
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.settings import Settings

if TYPE_CHECKING:
    import numpy as np

    from mmcli.work import Work

# Inputs decoded ahead of the ones in flight. Small: an input pulled is an input taken from the
# --max-duration budget, and decoding is fast next to the model.
AHEAD = 2


class SpeechBatch(Protocol):
    """An engine's batch across inputs (``WhisperEngine.batch``)."""

    device: str

    def transcribe(self, audio: np.ndarray, compute_type: str | None,
                   **kwargs: Any) -> tuple[Iterator[Any], Any]:
        """As the engine's ``transcribe``, from inside a started job."""
        ...

    def start(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a job (``.done``, ``.result``, ``.error``)."""
        ...

    def step(self) -> bool:
        """Run the calls the running jobs wait on."""
        ...

    def close(self) -> None:
        """Stop the jobs still running."""
        ...


@dataclass
class Notes:
    """Where an input's messages go: stderr now (one at a time), or kept for its turn."""

    settings: Settings
    kept: list[tuple[str, str]] | None = None

    def info(self, message: str) -> None:
        """A ``--verbose`` detail."""
        self._say("info", message)

    def warn(self, message: str) -> None:
        """A warning (hidden by ``--quiet``)."""
        self._say("warn", message)

    def _say(self, level: str, message: str) -> None:
        if self.kept is not None:
            self.kept.append((level, message))
        elif level == "warn":
            console.warn(message, quiet=self.settings.quiet)
        else:
            console.info(message)

    def flush(self) -> None:
        """Print the kept messages (in the batch's output order)."""
        kept, self.kept = self.kept or [], None
        for level, message in kept:
            self._say(level, message)


@dataclass
class Steps:
    """The transcribe task's parts the runner calls (passed in: that module imports this one).

    Attributes:
        check: ``check(engine, options)``, usage errors before the first input.
        decode: ``decode(engine, item)``, an input's samples (run ahead, in another thread).
        one: ``transcribe_one(engine, item, audio, model, options, notes, load_s)``, events.
    """

    check: Callable[[Any, Any], None]
    decode: Callable[[Any, InputItem], Any]
    one: Callable[..., Iterator[TaskEvent]]


@dataclass
class _Flight:
    item: InputItem
    job: Any
    notes: Notes


def runner(work: Work, steps: Steps) -> Runner:
    """The runner of ``work`` (whose ``options.batch_size`` > 1)."""

    def run(items: Iterator[InputItem]) -> Results:
        return _batched(work, steps, items)

    return run


def _batched(work: Work, steps: Steps, items: Iterator[InputItem]) -> Results:
    options = work.options
    first = next(items, None)
    while first is not None and first.error is not None:  # fails without loading the model
        yield first, guarded(first, work.process(), work.error_record, debug=work.settings.debug)
        first = next(items, None)
    if first is None:
        return
    second = next(items, None)
    pending = _chain([first] if second is None else [first, second], items)
    one_at_a_time = sequential(work.process(), work.error_record, debug=work.settings.debug)
    if second is None:  # a lone input: nothing to batch with, and its text streams live
        yield from one_at_a_time(pending)
        return
    engine, load_s = engines.load(work.model, work.settings)
    _, extra = engine.model(options.compute_type)
    steps.check(engine, options)
    if not hasattr(engine, "batch"):  # an engine without batching: one input at a time
        yield from one_at_a_time(pending)
        return
    batch: SpeechBatch = engine.batch(options.compute_type)
    loads = [load_s + extra]  # reported by the first record, as the sequential path does
    ahead: deque[tuple[InputItem, Future[Any] | None]] = deque()
    flying: deque[_Flight] = deque()
    decoder = ThreadPoolExecutor(1, thread_name_prefix="mmcli-decode")
    try:
        more = True
        while True:
            while more and len(ahead) < AHEAD + options.batch_size - len(flying):
                item = next(pending, None)
                if item is None:
                    more = False
                    break
                ahead.append((item, None if item.error is not None
                              else decoder.submit(steps.decode, engine, item)))
            while ahead and len(flying) < options.batch_size:
                flying.append(_start(work, steps, batch, *ahead.popleft(),
                                     loads.pop() if loads else 0.0))
            if not flying:
                return
            if flying[0].job.done:
                done = flying.popleft()
                if done.job.error is not None:
                    raise done.job.error
                yield done.item, _events(done.job.result, done.notes)
            else:
                batch.step()
    finally:
        batch.close()
        # Waits for the one decode under way (short): a thread left inside PyAV at exit aborts.
        decoder.shutdown(wait=True, cancel_futures=True)


def _start(work: Work, steps: Steps, batch: SpeechBatch, item: InputItem,
           audio: Future[Any] | None, load_s: float) -> _Flight:
    notes = Notes(work.settings, kept=[])

    def process(item: InputItem) -> Iterator[TaskEvent]:
        assert audio is not None  # an input with an error never reaches its processor
        return steps.one(batch, item, audio.result, work.model, work.options, notes, load_s)

    def events() -> list[TaskEvent]:
        return list(guarded(item, process, work.error_record, debug=work.settings.debug))

    return _Flight(item, batch.start(events), notes)


def _events(events: Iterable[TaskEvent], notes: Notes) -> Iterator[TaskEvent]:
    """An input's events; its messages appear just before its record, as they would alone."""
    for event in events:
        if isinstance(event, Done):
            notes.flush()
        yield event


def _chain(first: list[InputItem], rest: Iterator[InputItem]) -> Iterator[InputItem]:
    yield from first
    yield from rest
