"""Cross-file batching for faster-whisper: every input runs its own sequential pipeline, and
their CTranslate2 calls run together.

Each input of a batch runs faster-whisper's ordinary sequential ``WhisperModel.transcribe`` in a
thread (VAD, 30-second windows, prompts, temperature fallback, language detection, word
alignment: all unchanged), on a copy of the model whose CTranslate2 ``Whisper`` is a ``_Proxy``.
The proxy hands each engine call to the ``Gatherer`` and blocks. When every running input waits
on a call (or has finished), ``Gatherer.step`` runs the waiting calls of one kind as ONE batched
call (the encoder on every waiting window, one beam search over every waiting prompt) and hands
each input its row. A step's calls are therefore fixed by the inputs and the order they were
started in, never by thread timing.

CTranslate2's int8 CPU kernels give each row the same result whatever the batch around it (the
benchmark and tests check transcripts against sequential decoding). Sampling calls (the
temperature fallback) do not batch: CTranslate2's sampler is a thread-local generator seeded at
its first use, and in the sequential path every input starts sampling from the seed (mmcli
reloads the model after an input sampled). Here an input's sampling calls run alone on a fresh
instance of the model that only that input uses, one such instance at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import ctranslate2
import numpy as np

T = TypeVar("T")


class Cancelled(BaseException):
    """Raised inside an input's thread when its batch stops (the run ended or was killed)."""


@dataclass
class Job(Generic[T]):
    """One input's pipeline in its thread: ``result`` or ``error`` once ``done``."""

    number: int
    result: T | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Rows:
    """An input's rows of a batched encoder output (what its ``encode`` call returned)."""

    output: Any  # ctranslate2.StorageView [batch, frames, d_model]
    index: int
    batch: int


@dataclass
class _Call:
    job: Job[Any]
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Sampler:
    """The fresh model instance of the one input that samples now."""

    job: Job[Any] | None = None
    model: Any = None
    waiting: list[_Call] = field(default_factory=list)


class Gatherer:
    """Runs inputs' pipelines in threads and their engine calls in batches (see the module).

    Args:
        whisper: the loaded ``ctranslate2.models.Whisper``.
        fresh: makes a new instance of the same model (for an input's sampling calls).
    """

    def __init__(self, whisper: Any, fresh: Callable[[], Any]) -> None:
        self.whisper, self._fresh = whisper, fresh
        self._cond = threading.Condition()
        self._running = 0  # jobs executing Python: neither waiting on a call nor finished
        self._calls: list[_Call] = []
        self._local = threading.local()
        self._sampler = _Sampler()
        self._closed = False
        self._count = 0
        self._threads: list[threading.Thread] = []
        self._open: dict[int, _Call] = {}  # every call not yet answered, by id (see close)
        self.steps: list[dict[str, int]] = []  # per step: call kind -> rows (tests, tuning)

    def proxy(self) -> _Proxy:
        """The stand-in for ``WhisperModel.model`` that routes calls through this gatherer."""
        return _Proxy(self)

    def start(self, fn: Callable[[], T]) -> Job[T]:
        """Run ``fn`` in a new thread (its engine calls wait for ``step``)."""
        job: Job[T] = Job(self._count)
        self._count += 1

        def body() -> None:
            self._local.job = job
            try:
                job.result = fn()
            except BaseException as exc:  # re-raised by the runner, in order, or dropped
                job.error = exc
            finally:
                with self._cond:
                    job.done = True
                    self._running -= 1
                    self._cond.notify_all()

        with self._cond:
            self._running += 1
        thread = threading.Thread(target=body, name=f"mmcli-batch-{job.number}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return job

    def step(self) -> bool:
        """Wait until every job waits on a call or has finished, then run the waiting calls.

        Returns:
            False when no call was waiting (every job had finished).
        """
        with self._cond:
            while self._running > 0:
                self._cond.wait()
            calls, self._calls = sorted(self._calls, key=lambda c: c.job.number), []
        if not calls and not self._sampler.waiting:
            return False
        ready = self._plan_sampling(calls)
        self._run(ready)
        with self._cond:
            for call in ready:
                call.done = True
            self._running += len(ready)
            self._cond.notify_all()
        return True

    def close(self) -> None:
        """Stop: every waiting and future call raises ``Cancelled`` in its thread."""
        with self._cond:
            self._closed = True
            # Also the calls a step has taken out of the queue (an interrupted ``_run``).
            for call in self._open.values():
                if not call.done:
                    call.error, call.done = Cancelled(), True
            self._calls, self._sampler.waiting, self._open = [], [], {}
            self._cond.notify_all()
        # Wait for the woken jobs to unwind: a thread still inside CTranslate2 (a sampling
        # input's own decode) when the interpreter exits aborts the process ("terminate
        # called without an active exception") instead of exiting 143/130.
        for thread in self._threads:
            thread.join(timeout=30)

    def submit(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Called by the proxy in a job's thread: wait for the step that runs this call."""
        call = _Call(self._local.job, method, args, kwargs)
        with self._cond:
            if self._closed:
                raise Cancelled()
            self._calls.append(call)
            self._open[id(call)] = call
            self._running -= 1
            self._cond.notify_all()
            while not call.done:
                self._cond.wait()
            self._open.pop(id(call), None)
        if call.error is not None:
            raise call.error
        return call.result

    def _plan_sampling(self, calls: list[_Call]) -> list[_Call]:
        """The calls to run now: sampling calls of inputs other than the sampling one wait."""
        sampler = self._sampler
        if sampler.job is not None and sampler.job.done:
            sampler.job = sampler.model = None
        ready = []
        for call in sampler.waiting + calls:
            if not _samples(call):
                ready.append(call)
            elif sampler.job in (None, call.job):
                sampler.job = call.job
                ready.append(call)
        sampler.waiting = [c for c in sampler.waiting + calls if c not in ready]
        if not ready and sampler.waiting:  # cannot happen: the sampling job runs
            raise RuntimeError("batched transcription stalled")
        return ready

    def _run(self, calls: list[_Call]) -> None:
        groups: dict[tuple[Any, ...], list[_Call]] = {}
        for call in calls:
            groups.setdefault(_key(call), []).append(call)
        counts: dict[str, int] = {}
        for key, group in groups.items():
            counts[key[0]] = counts.get(key[0], 0) + len(group)
            if key[0] == "sample":
                for call in group:
                    self._alone(call, self._sampling_model())
            else:
                self._batched(group)
        self.steps.append(counts)

    def _sampling_model(self) -> Any:
        if self._sampler.model is None:
            ctranslate2.set_random_seed(0)
            self._sampler.model = self._fresh()
        return self._sampler.model

    def _batched(self, group: list[_Call]) -> None:
        """One engine call for the group; if it fails, each call alone (errors stay local)."""
        if len(group) == 1:
            self._alone(group[0], self.whisper)
            return
        try:
            results = _BATCHED[group[0].method](self.whisper, group)
        except (RuntimeError, ValueError):
            for call in group:
                self._alone(call, self.whisper)
            return
        for call, result in zip(group, results):
            call.result = result

    def _alone(self, call: _Call, model: Any) -> None:
        try:
            call.result = _BATCHED[call.method](model, [call])[0]
        except Exception as exc:  # the input's own failure, raised in its thread
            call.error = exc


class _Proxy:
    """``ctranslate2.models.Whisper`` as seen by one batch: compute calls are gathered."""

    def __init__(self, gatherer: Gatherer) -> None:
        self._gatherer = gatherer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gatherer.whisper, name)  # is_multilingual, device, n_mels, …

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return self._gatherer.submit("encode", args, kwargs)

    def detect_language(self, *args: Any, **kwargs: Any) -> Any:
        return self._gatherer.submit("detect_language", args, kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self._gatherer.submit("generate", args, kwargs)

    def align(self, *args: Any, **kwargs: Any) -> Any:
        return self._gatherer.submit("align", args, kwargs)


def _samples(call: _Call) -> bool:
    kw = call.kwargs
    return call.method == "generate" and (kw.get("sampling_topk", 1) != 1
                                          or kw.get("num_hypotheses", 1) > 1)


def _key(call: _Call) -> tuple[Any, ...]:
    """Calls with equal keys run as one batch (same options, prompts of one shape)."""
    if _samples(call):
        return ("sample", call.job.number)
    kw = tuple(sorted((k, repr(v)) for k, v in call.kwargs.items()))
    if call.method == "generate":
        (prompt,) = call.args[1]
        return ("generate", len(prompt), _special(prompt), kw)
    if call.method == "align":
        return ("align", tuple(call.args[1]), kw)
    return (call.method, kw)


def _special(prompt: Sequence[int]) -> tuple[int, ...]:
    """Where the prompt's special tokens are (CTranslate2 wants its start-of-transcript and
    text start at the same place in every prompt of a batch); ids from 50256 up are Whisper's
    special and timestamp tokens in every vocabulary (an ordinary token there only splits a
    batch, it never mixes shapes)."""
    return tuple(i for i, t in enumerate(prompt) if t >= 50256)


def _features(rows: list[Any]) -> Any:
    """One StorageView holding every call's rows, in order (the batch's own when it fits)."""
    first = rows[0]
    if len(rows) == 1 and not isinstance(first, _Rows):
        return first
    if all(isinstance(r, _Rows) for r in rows) and all(r.output is first.output for r in rows) \
            and [r.index for r in rows] == list(range(first.batch)):
        return first.output
    arrays = [_array(r.output)[r.index:r.index + 1] if isinstance(r, _Rows) else _array(r)
              for r in rows]
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(arrays)))


def _array(view: Any) -> np.ndarray:
    if getattr(view, "device", "cpu") != "cpu":
        view = view.to_device(ctranslate2.Device.cpu)
    return np.asarray(view)


def _encode(model: Any, group: list[_Call]) -> list[Any]:
    features = _features([c.args[0] for c in group])
    out = model.encode(features, **group[0].kwargs)
    return [_Rows(out, i, len(group)) for i in range(len(group))]


def _detect(model: Any, group: list[_Call]) -> list[Any]:
    results = model.detect_language(_features([c.args[0] for c in group]), **group[0].kwargs)
    return [[r] for r in results]


def _generate(model: Any, group: list[_Call]) -> list[Any]:
    prompts = [c.args[1][0] for c in group]
    results = model.generate(_features([c.args[0] for c in group]), prompts, **group[0].kwargs)
    return [[r] for r in results]


def _align(model: Any, group: list[_Call]) -> list[Any]:
    tokens = [t for c in group for t in c.args[2]]
    frames = [f for c in group
              for f in (c.args[3] if isinstance(c.args[3], list) else [c.args[3]] * len(c.args[2]))]
    results = model.align(_features([c.args[0] for c in group]), group[0].args[1], tokens,
                          frames, **group[0].kwargs)
    out, at = [], 0
    for call in group:
        out.append(results[at:at + len(call.args[2])])
        at += len(call.args[2])
    return out


_BATCHED: dict[str, Callable[[Any, list[_Call]], list[Any]]] = {
    "encode": _encode, "detect_language": _detect, "generate": _generate, "align": _align}
