"""The worker process of ``--jobs`` (``mmcli.parallel`` is the driver that starts it).

A worker ignores SIGINT (Ctrl-C is the driver's), dies on SIGTERM, dies with the driver (Linux:
parent-death signal), points its stdout and stderr at the driver's log pipe, installs the
driver's registrations, builds the task's runner once and runs the inputs it is sent. Messages
to the driver: ``("start", seq)``, ``("done", seq, events)``, ``("idle",)`` (nothing queued),
``("fatal", seq, exception)``; from it: ``("item", seq, item)``, ``("flush",)`` (run what you
hold), ``("stop",)``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mmcli.errors import MmcliError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from mmcli.inputs import InputItem
    from mmcli.work import Work


def main(work: Work, conn: Connection, log: Connection | None, parent: int) -> None:
    """A worker's life: detach from the terminal's signals and stdout, then run inputs."""
    _detach(log, parent, work.settings.threads)
    feed = _Feed(conn)
    try:
        work.install()
        run = work.runner()
        while not feed.stopped:
            for _item, events in run(feed.burst()):
                done = list(events)  # per-input failures are records by now
                conn.send(("done", feed.started.popleft(), done))
    except (EOFError, BrokenPipeError):
        pass  # the driver is gone: nothing to report to
    except BaseException as exc:  # noqa: BLE001 - the driver decides; it re-raises this
        conn.send(("fatal", feed.started[0] if feed.started else None, _portable(exc)))
    finally:
        from mmcli import engines

        engines.close_all()


class _Feed:
    """The inputs the driver sends, as runner bursts: a burst ends when the driver says
    ``flush`` (nothing more for now: a batching runner runs what it holds) or ``stop``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.started: deque[int] = deque()
        self.stopped = False

    def burst(self) -> Iterator[InputItem]:
        while True:
            if not self.conn.poll():
                self.conn.send(("idle",))
            message = self.conn.recv()
            if message[0] == "item":
                self.started.append(message[1])
                self.conn.send(("start", message[1]))
                yield message[2]
            else:
                self.stopped = message[0] == "stop"
                return


def _detach(log: Connection | None, parent: int, threads: int | None) -> None:
    """Signals, output and thread settings of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the driver's terminate() ends us at once
    _die_with(parent)
    target = log.fileno() if log is not None else sys.stderr.fileno()
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(target, 1)  # stdout is the driver's data stream: nothing here may reach it
    if log is not None:
        os.dup2(target, 2)
    if threads:
        # OpenMP pools (CTranslate2) follow the worker's share, not the machine's cores.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def _die_with(parent: int) -> None:
    """Linux: the kernel kills this worker when the driver dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the driver died before the line above took effect
        os._exit(0)


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError naming it."""
    import pickle
    import traceback

    try:
        pickle.loads(pickle.dumps(exc))
        if isinstance(exc, MmcliError):
            return exc
    except Exception:  # noqa: BLE001 - any pickling failure means "send a stand-in"
        pass
    text = "".join(traceback.format_exception(exc)).rstrip()
    if isinstance(exc, MmcliError):
        return MmcliError(exc.message, exc.hint)
    return RuntimeError(f"a --jobs worker failed:\n{text}")
