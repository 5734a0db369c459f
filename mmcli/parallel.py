"""``--jobs N``: N engine instances in worker processes on this machine, outputs in input order.

Each worker is a fresh interpreter (the "spawn" start method: engines hold threads, and a
forked copy of a process with live engine threads can deadlock). It installs the driver's
task/engine registrations, builds the task's processor once (the model loads on its first
input, once per worker) and runs the inputs it is sent through the task's own runner (a
task that batches across inputs batches its share). ``--threads`` is the total: each worker
gets ``total // N`` engine threads (at least 1); the total defaults to the CPUs this process
may use.

The driver (the generator ``runner`` returns) pulls inputs lazily - the time budget and the
skip/journal checks happen at each pull - and keeps at most ``WINDOW_PER_JOB * N`` of them in
flight, at most ``DEPTH`` queued per worker: while a worker runs one input the next one is
already read and in its pipe, and while the driver writes outputs the workers keep working.
That is the overlap of reading and decoding with inference: one worker decodes while another
infers. Results come back as each input's list of events and are yielded in input order.

Faults:
- a worker that dies (killed, segfault, out of memory) is replaced; the input it was running
  gets one more try on a fresh worker, and becomes an error record (exit 1) if that worker
  dies too. Inputs that were only queued on it are sent elsewhere without counting a try.
  Workers that keep dying before finishing any input stop the run (exit 3).
- an error that concerns the whole run in a worker (model unavailable, usage) stops the run
  with that error, after the inputs before it were written, as a sequential run would.
- Ctrl-C / SIGTERM reach the driver only (workers ignore SIGINT): the driver stops taking
  inputs, terminates the workers and waits for them; a driver killed outright takes its
  workers with it (Linux: parent-death signal; elsewhere they exit when the pipe closes).
Workers never write to stdout: their fds 1 and 2 are a pipe the driver relays to its stderr
(above the progress bar, when one is shown).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmcli import parallel_worker
from mmcli.errors import ExitCode, InputError, MmcliError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from mmcli.batch import Results, Runner
    from mmcli.events import TaskEvent
    from mmcli.inputs import InputItem
    from mmcli.work import Work

DEPTH = 2  # inputs queued on one worker: the one it runs and the next, already in its pipe
WINDOW_PER_JOB = 2  # inputs in flight per worker, counting finished ones waiting for order
TRIES = 2  # a worker death on an input: one more try on a fresh worker, then an error record
STOP_WAIT_S = 5.0  # a finished run waits this long for workers to close their engines


class WorkersDying(MmcliError):
    """Worker processes die before finishing any input (a crash loading the engine)."""

    exit_code = ExitCode.MODEL_UNAVAILABLE


def cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def runner(work: Work, jobs: int) -> Runner:
    """The runner of ``--jobs jobs``: that many worker processes, each with its engine.

    Args:
        work: the run's task, model, settings and options (pickled to each worker).
        jobs: worker processes (engine instances); ``--threads`` is split between them.
    Returns:
        A runner yielding each input with its list of events, in input order.
    """
    total = work.settings.threads or cpus()
    share = work.with_threads(max(1, total // jobs))

    def run(items: Iterator[InputItem]) -> Results:
        pool = _Pool(share, jobs)
        try:
            yield from pool.results(items)
            pool.stop(graceful=True)
        finally:
            pool.stop(graceful=False)  # interrupted, failed or closed early: no waiting

    return run


@dataclass
class _Worker:
    """The driver's view of one worker process."""

    process: BaseProcess
    conn: Connection
    log: Connection | None
    queued: list[int] = field(default_factory=list)  # seqs sent, not finished
    started: list[int] = field(default_factory=list)  # of those, the ones it began
    idle: bool = False  # it asked for an input and has none queued
    finished_any: bool = False


class _Pool:
    """Worker processes, the inputs in flight, and the order results leave in."""

    def __init__(self, work: Work, jobs: int) -> None:
        import multiprocessing

        self.work, self.jobs = work, jobs
        self.ctx = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []
        self.items: dict[int, InputItem] = {}  # in flight, by sequence number
        self.done: dict[int, list[TaskEvent]] = {}
        self.fatal: dict[int, BaseException] = {}
        self.tries: dict[int, int] = {}
        self.retry: list[int] = []  # seqs to send again (their worker died), lowest first
        self.issued = self.emitted = 0
        self.exhausted = False
        self.deaths = 0  # workers that died before finishing any input, in a row
        self.logs: dict[int, bytes] = {}
        depth = getattr(work.options, "batch_size", 1)  # a batching task needs a batch's worth
        self.depth = max(DEPTH, depth if isinstance(depth, int) else 1)
        self.window = max(WINDOW_PER_JOB, self.depth) * jobs

    def results(self, items: Iterator[InputItem]) -> Results:
        """Assign, collect and yield in input order until the inputs run out."""
        while True:
            while self.emitted in self.done:
                seq = self.emitted
                self.emitted += 1
                yield self.items.pop(seq), self.done.pop(seq)
            if self.emitted in self.fatal:
                raise self.fatal[self.emitted]
            self._assign(items)
            if self.exhausted and not self.items:
                return
            self._wait()

    def _assign(self, items: Iterator[InputItem]) -> None:
        while self._room():
            seq = self._next(items)
            if seq is None:
                break
            worker = self._pick()
            self._send(worker, ("item", seq, self.items[seq]))
            worker.queued.append(seq)
            worker.idle = False
        for worker in self.workers:  # nothing to give: a batching worker runs what it holds
            if worker.idle and worker.started:
                self._send(worker, ("flush",))
                worker.idle = False

    def _room(self) -> bool:
        return len(self.workers) < self.jobs or \
            any(len(w.queued) < self.depth for w in self.workers)

    def _next(self, items: Iterator[InputItem]) -> int | None:
        """The next input to send: one whose worker died first, else a new one (pulled)."""
        if self.retry:
            return self.retry.pop(0)
        if self.exhausted or self.fatal or self.issued - self.emitted >= self.window:
            return None
        item = next(items, None)  # the budget and skip checks run here
        if item is None:
            self.exhausted = True
            return None
        self.items[self.issued] = item
        self.issued += 1
        return self.issued - 1

    def _pick(self) -> _Worker:
        """An idle worker, else a new one while fewer than ``jobs`` run, else the least busy."""
        empty = [w for w in self.workers if not w.queued]
        if empty:
            return empty[0]
        if len(self.workers) < self.jobs:
            return self._spawn()
        return min((w for w in self.workers if len(w.queued) < self.depth),
                   key=lambda w: len(w.queued))

    def _spawn(self) -> _Worker:
        conn, theirs = self.ctx.Pipe()
        log = their_log = None
        if os.name == "posix":
            log, their_log = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(target=parallel_worker.main, daemon=True, name="mmcli-worker",
                                   args=(self.work, theirs, their_log, os.getpid()))
        with _sigint_ignored():  # a Ctrl-C during the child's start-up reaches the driver only
            process.start()
        theirs.close()
        if their_log is not None:
            their_log.close()
        worker = _Worker(process, conn, log)
        self.workers.append(worker)
        return worker

    def _send(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        try:
            worker.conn.send(message)
        except OSError:
            pass  # it died: its sentinel tells, and its inputs go to another worker

    def _wait(self) -> None:
        from multiprocessing.connection import wait

        watched: dict[Any, tuple[str, _Worker]] = {}
        for w in self.workers:
            watched[w.conn] = ("conn", w)
            watched[w.process.sentinel] = ("exit", w)
            if w.log is not None:
                watched[w.log] = ("log", w)
        for ready in wait(list(watched)):
            kind, worker = watched[ready]
            if kind == "log":
                self._relay(worker)
            elif kind == "conn" and worker in self.workers:
                self._receive(worker)
        for ready in wait(list(watched), timeout=0):
            kind, worker = watched[ready]
            if kind == "exit" and worker in self.workers:
                self._died(worker)

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._message(worker, worker.conn.recv())
        except (EOFError, OSError):
            pass  # it is dying: its sentinel follows

    def _message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "idle":
            # Waiting for an input: nothing queued is still on its way to it.
            worker.idle = len(worker.queued) == len(worker.started)
        elif kind == "start":
            worker.started.append(message[1])
        elif kind == "done":
            seq, events = message[1], message[2]
            worker.queued.remove(seq)
            worker.started.remove(seq)
            worker.finished_any = True
            self.deaths = 0
            self.done[seq] = events
        elif kind == "fatal":
            seq, exc = message[1], message[2]
            self.fatal[seq if seq is not None else min(worker.queued, default=self.emitted)] = exc

    def _died(self, worker: _Worker) -> None:
        self._receive(worker)  # what it said before it died
        self._relay(worker)
        self.workers.remove(worker)
        worker.process.join()
        _close(worker)
        code = worker.process.exitcode
        for seq in worker.queued:
            if seq in self.done or seq in self.fatal or \
                    (self.fatal and seq > min(self.fatal)):
                continue  # finished, or after an error that stops the run anyway
            if seq in worker.started:
                self.tries[seq] = self.tries.get(seq, 0) + 1
                if self.tries[seq] >= TRIES:
                    self.done[seq] = [self._error(seq, code)]
                    continue
            self.retry.append(seq)
        self.retry.sort()
        if self.fatal or worker.finished_any:
            return
        self.deaths += 1
        if self.deaths >= 2 * self.jobs + 2:
            raise WorkersDying(
                f"worker processes die before finishing any input ({_how(code)})",
                hint="run with --jobs 1 to see the engine's own error")

    def _error(self, seq: int, code: int | None) -> TaskEvent:
        from mmcli.events import Done
        from mmcli.records import ErrorInfo

        item = self.items[seq]
        problem = InputError(f"the worker process running this input died {TRIES} times "
                             f"({_how(code)}); try it alone with --jobs 1")
        return Done(self.work.error_record(item, ErrorInfo.from_exception(problem)))

    def _relay(self, worker: _Worker) -> None:
        """Worker log lines to this process's stderr (above the bar: Rich's redirect)."""
        if worker.log is None:
            return
        pid = worker.process.pid or 0
        pending = self.logs.pop(pid, b"")
        try:
            while worker.log.poll():
                chunk = os.read(worker.log.fileno(), 65536)
                if not chunk:
                    break
                pending += chunk
        except OSError:
            pass
        *lines, rest = pending.split(b"\n")
        if not worker.process.is_alive() and rest:
            lines, rest = [*lines, rest], b""
        for line in lines:
            sys.stderr.write(line.decode("utf-8", "replace") + "\n")
        if lines:
            sys.stderr.flush()
        if rest:
            self.logs[pid] = rest

    def stop(self, *, graceful: bool) -> None:
        """End every worker: asked to finish (graceful), else terminated at once. A worker
        leaves the list only once it is gone, so an interrupted graceful stop is finished by
        the forced one that follows it."""
        for w in self.workers:
            if graceful:
                self._send(w, ("stop",))
            else:
                w.process.terminate()
        while self.workers:
            w = self.workers[0]
            w.process.join(STOP_WAIT_S if graceful else 1.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            self._relay(w)
            _close(w)
            self.workers.pop(0)


def _close(worker: _Worker) -> None:
    worker.conn.close()
    if worker.log is not None:
        worker.log.close()


def _how(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class _sigint_ignored:
    """Ignore SIGINT while a worker starts: it inherits the ignored disposition."""

    def __enter__(self) -> None:
        try:
            self.previous: Any = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread: signals are the host program's
            self.previous = None

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
