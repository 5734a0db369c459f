"""The ``--ray`` runner: a batch's inputs run on a pool of Ray actors, outputs written here.

Each actor (``--ray-workers N``, ``--ray-cpus``/``--ray-gpus`` each) installs the driver's
task and engine registrations, runs its engines with exactly its CPUs as threads and loads the
model once (on its first input). The driver pulls inputs lazily (so skips, the journal and
``--max-duration`` work as locally), keeps at most two inputs in flight per actor, and yields
each input's events in input order to ``batch.run``, which writes stdout, sidecars and the
journal: every output is written once, by the driver.

Inputs are read where they are when the worker sees the same file (same size and mtime at the
same absolute path: one machine or shared storage); otherwise the worker answers "not here"
and the driver ships the bytes. A worker killed mid-run (SIGKILL, OOM) is restarted by Ray and
its in-flight inputs are retried; an input whose worker died on every retry runs once more
with nothing queued behind it, and becomes an error record if it kills the worker again. Ray is
imported only when ``--ray`` is given (``pip install 'mmcli[ray]'``).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from mmcli import console
from mmcli.batch import Results, Runner
from mmcli.errors import MmcliError, ModelUnavailableError, UsageError
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.records import ErrorInfo
from mmcli.work import Work

INSTALL_HINT = "pip install 'mmcli[ray]'"
DEPTH = 2  # inputs in flight per actor: the next one is there when the current one ends
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SLICE_S = 0.25  # Ray waits in slices this long, signals delivered between them
WAIT_S = 60.0  # a note on stderr each time no worker has started for this long
RETRIES = 2  # Ray re-runs an input whose worker died this many times, then it fails


class Where(Protocol):
    """The ``--ray*`` options (``cli.common.BatchArgs``)."""

    ray: str | None
    ray_workers: int
    ray_cpus: float
    ray_gpus: float


def import_ray() -> Any:
    """The ``ray`` module, or a usage error naming the extra to install (exit 2)."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray, which is not installed", hint=INSTALL_HINT) from None
    return ray


@dataclass
class Stop:
    """A worker's failure that concerns the whole run (model missing there, usage)."""

    error: MmcliError


@dataclass
class NotHere:
    """The worker cannot see the input's file: the driver ships its bytes."""


class Worker:
    """The actor: one task and model, loaded once, run on the inputs it is sent."""

    def __init__(self, work: Work, cpus: float) -> None:
        threads = max(1, int(cpus))
        # Before any engine loads: numpy's BLAS and OpenMP read these once, at load (a
        # runtime_env would do it too, at ~5 s more per actor start). CTranslate2's,
        # llama.cpp's and onnxruntime's own thread counts come from settings.threads.
        os.environ.update({name: str(threads) for name in THREAD_VARS})
        work.install()
        self.work = work.with_threads(threads)
        self.host = socket.gethostname()
        self.runner: Runner | None = None

    def ready(self) -> str | Stop:
        """This worker's hostname once the model's files are there (else ``Stop``)."""
        missing = [p for p in self.work.model.files.values() if not p.exists()]
        entry = self.work.model.entry
        if missing and entry is not None:
            from mmcli import hub

            files = hub.local_files(entry)  # another install path on this node (its package)
            if files is not None:
                self.work = replace(self.work, model=replace(self.work.model, files=files))
                missing = []
        if missing:
            return Stop(ModelUnavailableError(
                f"model '{self.work.model.name}' is missing on Ray worker {self.host} "
                f"({missing[0]})",
                hint=f"run `mmcli models pull {self.work.model.name}` on every node, or put the "
                "model cache on shared storage (HF_HOME); bundled models need their package "
                "installed on every node"))
        return self.host

    def run(self, item: InputItem, seen: tuple[int, int] | None) -> list[TaskEvent] | Stop | \
            NotHere:
        """One input's events; ``seen`` is the (size, mtime) the driver sees for its file."""
        if seen is not None and item.path is not None and _fingerprint(item.path) != seen:
            return NotHere()
        if self.runner is None:
            self.runner = self.work.runner()
        try:
            return [e for _, events in self.runner(iter([item])) for e in events]
        except MmcliError as exc:
            exc.message = f"{exc.message} (on Ray worker {self.host})"
            exc.args = (exc.message,)
            return Stop(exc)

    def run_once(self, item: InputItem, seen: tuple[int, int] | None) -> list[TaskEvent] | \
            Stop | NotHere:
        """``run`` that Ray does not retry when the worker dies (the runner marks it so)."""
        return self.run(item, seen)


def _fingerprint(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, int(st.st_mtime)


def _shipped(item: InputItem) -> InputItem:
    """The item with its file's bytes (parts too), for a worker that cannot see it."""
    parts = tuple(_shipped(p) for p in item.parts)
    if item.path is None or item.data is not None or item.error is not None:
        return replace(item, parts=parts)
    try:
        data = item.path.read_bytes()
    except OSError as exc:
        return replace(item, parts=parts, error=f"{item.display}: {exc.strerror or exc}")
    return replace(item, data=data, parts=parts)


def _seen(item: InputItem) -> tuple[int, int] | None:
    """What the driver sees of the item's file, for the worker to compare (None: no file)."""
    if item.path is None or item.data is not None or item.error is not None or item.parts:
        return None
    return _fingerprint(item.path)


def connect(ray: Any, address: str, cpus: int) -> bool:
    """Join the cluster ``address`` asks for; True when this call started Ray (stop it after).

    ``local`` starts Ray here with ``cpus`` CPUs; ``auto`` joins ``RAY_ADDRESS`` or the
    cluster running on this machine; anything else is a cluster address.
    """
    _errors_to_stderr()
    if ray.is_initialized():
        return False  # a library caller or a test session started it: reuse, leave it running
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False,
             "include_dashboard": False}
    # ray.init installs its own SIGTERM handler (exit 1 or 15); mmcli's (unwind, summary,
    # exit 143) must stay: the runner's close stops the actors and a Ray started here.
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        if address == "local":
            ray.init(address="local", num_cpus=cpus, **quiet)
        else:
            target = (os.environ.get("RAY_ADDRESS") or "auto") if address == "auto" else address
            ray.init(address=target, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--ray {address}: cannot reach a Ray cluster ({first})",
                         hint="start one with `ray start --head` (then --ray auto), set "
                         "RAY_ADDRESS, or use --ray local") from None
    finally:
        if main and sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    return True


def _errors_to_stderr() -> None:
    """Ray prints cluster messages ("a worker died", "task retried") on the driver's stdout,
    which is mmcli's data: send them to stderr instead, cut to one short line each."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:  # another Ray layout: its messages stay where Ray puts them
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "mmcli", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        # "killed by `ray.kill`": the runner stopping its own actors at the end, not news
        lines = [_short(line) for line in data.get("lines", []) if "`ray.kill`" not in line]
        if not lines:
            return
        original({**data, "lines": lines, "is_err": True}, ignore_prefix)

    to_stderr.mmcli = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


def _short(line: str, limit: int = 200) -> str:
    first = line.strip().splitlines()[0] if line.strip() else line
    return first if len(first) <= limit else first[:limit - 1] + "…"


def runner(work: Work, where: Where) -> Runner:
    """A runner that sends the inputs to ``where.ray_workers`` Ray actors (see module doc)."""
    ray = import_ray()
    assert where.ray is not None
    started = connect(ray, where.ray, max(1, math.ceil(where.ray_workers * where.ray_cpus)))
    try:
        check_fits(ray, where)
    except UsageError:
        if started:
            ray.shutdown()
        raise
    ray.method(max_task_retries=0)(Worker.run_once)  # see _stream: Died
    cls = ray.remote(Worker).options(  # type: ignore[attr-defined]
        num_cpus=where.ray_cpus, num_gpus=where.ray_gpus, max_restarts=-1,
        max_task_retries=RETRIES, max_concurrency=1)

    def run(items: Iterator[InputItem]) -> Results:
        first = next(items, None)  # nothing to run (all skipped, done or past the budget):
        actors = [] if first is None else \
            [cls.remote(work, where.ray_cpus) for _ in range(where.ray_workers)]  # no actors
        try:
            if first is not None:
                yield from _stream(ray, actors, itertools.chain([first], items), work)
        finally:
            for actor in actors:
                ray.kill(actor)
            if started:
                ray.shutdown()

    return run


def check_fits(ray: Any, where: Where) -> None:
    """A worker must fit the cluster's CPUs and GPUs, or nothing would ever run."""
    total = ray.cluster_resources()
    for name, flag, per in (("CPU", "--ray-cpus", where.ray_cpus),
                            ("GPU", "--ray-gpus", where.ray_gpus)):
        if per > total.get(name, 0.0):
            raise UsageError(f"{flag} {per:g} per worker: the Ray cluster has "
                             f"{total.get(name, 0.0):g} {name}s",
                             hint=f"lower {flag} or add nodes with {name}s")


def _stream(ray: Any, actors: list[Any], items: Iterator[InputItem], work: Work) -> Results:
    """Dispatch to ready actors (least queued first), yield results in input order."""
    ready: list[int] = []  # actors whose model files were found
    starting = {actor.ready.remote(): i for i, actor in enumerate(actors)}
    pending: deque[list[Any]] = deque()  # [item, ref, actor index], input order
    exhausted = False
    while True:
        if starting and (not ready or not exhausted):
            done = _wait(ray, list(starting), 0 if ready else WAIT_S)
            if not done and not ready:
                free = ray.available_resources().get("CPU", 0.0)
                console.warn(f"no Ray worker has started after {WAIT_S:.0f} s (the cluster has "
                             f"{free:g} free CPUs now); still waiting")
            for ref in done:
                index = starting.pop(ref)
                answer = ray.get(ref)
                if isinstance(answer, Stop):
                    raise answer.error
                ready.append(index)
        while not exhausted and len(pending) < DEPTH * len(ready):
            item = next(items, None)
            if item is None:
                exhausted = True
                break
            index = _least_queued(ready, pending)
            pending.append([item, actors[index].run.remote(_sent(item), _seen(item)), index])
        if not pending:
            if exhausted:
                return
            continue
        item, ref, index = pending.popleft()
        answer = _get(ray, ref, item, actors[index])
        if isinstance(answer, Died):
            # Ray's retries ran out: this input may have killed its worker, or only waited
            # behind the one that did. Once more, with nothing queued behind it and no retry
            # (the driver sends nothing meanwhile): it runs, or it is the culprit.
            answer = _get(ray, actors[index].run_once.remote(_sent(item), _seen(item)), item,
                          actors[index])
            if isinstance(answer, Died):
                info = ErrorInfo.from_exception(RuntimeError(
                    f"{item.display}: the Ray worker died {RETRIES + 2} times on this input"))
                answer = [Done(work.error_record(item, info))]
        if isinstance(answer, Stop):
            raise answer.error
        assert isinstance(answer, list)
        yield item, answer


@dataclass
class Died:
    """The input's worker died on each of Ray's retries."""


def _sent(item: InputItem) -> InputItem:
    """The item as a worker gets it: its path absolute (workers have another cwd); a group's
    parts (``vqa --together``: one unit of a few images) always travel as bytes."""
    if item.parts:
        return _shipped(item)
    return replace(item, path=item.path.absolute()) if item.path is not None else item


def _least_queued(ready: list[int], pending: deque[list[Any]]) -> int:
    queued = {i: 0 for i in ready}
    for _, _, index in pending:
        queued[index] += 1
    return min(ready, key=lambda i: queued[i])


def _get(ray: Any, ref: Any, item: InputItem, actor: Any) -> list[TaskEvent] | Stop | Died:
    """The actor's answer (shipping the bytes when the worker cannot see the file)."""
    try:
        _wait(ray, [ref], None)
        answer = ray.get(ref)
        if isinstance(answer, NotHere):
            ref = actor.run.remote(_shipped(item), None)
            _wait(ray, [ref], None)
            answer = ray.get(ref)
        return answer  # type: ignore[no-any-return]
    except ray.exceptions.RayTaskError as exc:
        # A bug in the worker (not an input's failure): the driver fails as a local run would.
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from None
        raise
    except ray.exceptions.RayActorError:
        return Died()


def _wait(ray: Any, refs: list[Any], timeout: float | None) -> list[Any]:
    """``ray.wait`` for one of ``refs`` (None: until one is ready), in short slices with
    SIGINT/SIGTERM held meanwhile and delivered between them, here in Python: a handler's
    exception raised inside Ray's C code comes out as a SystemError, not as Ctrl-C/SIGTERM."""
    start = time.monotonic()
    while True:
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        step = SLICE_S if left is None else min(SLICE_S, left)
        got: list[int] = []
        held = _hold_signals(got)
        try:
            done, _ = ray.wait(refs, num_returns=1, timeout=step)
        finally:
            for signum, handler in held.items():
                signal.signal(signum, handler)
        for signum in got[:1]:
            _deliver(signum, held[signum])
        if done or left == 0.0 or (left is not None and left <= step):
            return list(done)


def _hold_signals(got: list[int]) -> dict[int, Any]:
    """Record SIGINT/SIGTERM in ``got`` instead of acting; returns the handlers replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    held: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        held[signum] = signal.signal(signum, lambda number, _frame: got.append(number))
    return held


def _deliver(signum: int, handler: Any) -> None:
    """Act on a held signal as its own handler would have."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)
