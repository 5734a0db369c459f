"""Run a task over a batch of inputs: stream records, record failures, compute the exit code.

A failure of one input (bad file, engine error on it) becomes an error record and the batch
goes on; a failure that concerns every input (model unavailable, bad usage) stops the batch.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

from mmcli import console
from mmcli.errors import ExitCode, InputError, MmcliError
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.journal import Journal
from mmcli.outputs import Writer, sidecar_path
from mmcli.progressbar import AboveBar, BatchBar, same_terminal
from mmcli.records import ErrorInfo, Record
from mmcli.settings import Settings

Process = Callable[[InputItem], Iterator[TaskEvent]]
ErrorRecord = Callable[[InputItem, ErrorInfo], Record]
# A runner takes the inputs to process (pulled lazily: the time budget is checked at each
# pull) and yields each with its events, in input order. ``sequential`` runs them here, one
# at a time; ``--jobs`` and ``--ray`` runners run them elsewhere and yield buffered events.
Results = Iterator[tuple[InputItem, Iterable[TaskEvent]]]
Runner = Callable[[Iterator[InputItem]], Results]


class Terminated(BaseException):
    """Raised by the SIGTERM handler: abandon the current input like Ctrl-C does."""


@dataclass
class Job:
    """Journal-backed batch state: which inputs are done, the time budget, retry policy."""

    journal: Journal | None = None
    key: Callable[[InputItem], str] | None = None
    budget_s: float | None = None
    retry_failed: bool = False


@dataclass
class Summary:
    """Counts for the end-of-batch line."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    left: int = 0
    started: float = field(default_factory=time.perf_counter)

    def line(self) -> str:
        """``3 done, 1 failed, 0 skipped in 2.1 s`` (+ ``, 5 left`` when stopped early)."""
        took = time.perf_counter() - self.started
        left = f", {self.left} left" if self.left else ""
        return (f"{self.done} done, {self.failed} failed, {self.skipped} skipped{left} "
                f"in {took:.1f} s")

    @property
    def exit_code(self) -> ExitCode:
        """0 when nothing failed, 1 otherwise."""
        return ExitCode.INPUT_FAILED if self.failed else ExitCode.OK


def sequential(process: Process, error_record: ErrorRecord, *, debug: bool = False) -> Runner:
    """The runner that processes each input here, in turn, streaming its events."""

    def run(items: Iterator[InputItem]) -> Results:
        for item in items:
            yield item, guarded(item, process, error_record, debug=debug)

    return run


def run(items: list[InputItem], runner: Runner, writer: Writer, settings: Settings, *,
        skip_existing: bool = False, job: Job | None = None,
        title: str = "processing") -> Summary:
    """Process every item, writing records as they arrive.

    Args:
        items: the discovered inputs (items with ``error`` set fail without processing).
        runner: runs the inputs it pulls and yields each with its events (``sequential``,
            or a ``--jobs``/``--ray`` runner); outputs are written here, in input order.
        writer: where records go.
        settings: global settings (quiet, debug).
        skip_existing: skip items whose sidecar already exists under the writer's output dir.
        job: journal, time budget and retry policy (``--journal``, ``--max-duration``…).
        title: what the progress bar calls the run (task and model).
    Returns:
        The summary; ``summary.exit_code`` is the batch's exit code.
    """
    summary = Summary()
    job = job or Job()
    bar = BatchBar(len(items), title) if console.show_progress(settings.quiet) and items \
        else None

    def to_process() -> Iterator[InputItem]:
        """The inputs to run, pulled by the runner: skips counted, the budget checked."""
        for index, item in enumerate(items):
            if job.budget_s is not None and \
                    time.perf_counter() - summary.started > job.budget_s:
                summary.left = len(items) - index
                console.info(f"time budget reached; {summary.left} inputs left for the "
                             "next run", quiet=settings.quiet)
                return
            if _skip(item, writer, job, skip_existing):
                summary.skipped += 1
                if bar is not None:
                    bar.start(item.display)
                    bar.finish("skipped")
                continue
            yield item

    results = runner(to_process())
    try:
        with bar if bar is not None else nullcontext():
            if bar is not None and same_terminal(writer.stdout, sys.stderr):
                writer.stdout = AboveBar(bar.console, writer.stdout)  # type: ignore[assignment]
            for item, events in results:
                if bar is not None:
                    bar.start(item.display)
                state = _one(item, events, writer, summary, job, bar)
                if bar is not None:
                    bar.finish(state)
            writer.close()
    except (KeyboardInterrupt, Terminated):
        summary.left = len(items) - summary.done - summary.failed - summary.skipped
        console.info(f"stopped: {summary.line()}", quiet=False)
        raise
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # a runner's workers stop with the run, however it ends
    if len(items) > 1 or summary.failed or summary.skipped or summary.left:
        console.info(summary.line(), quiet=settings.quiet)
    return summary


def _skip(item: InputItem, writer: Writer, job: Job, skip_existing: bool) -> bool:
    if skip_existing and writer.output_dir is not None and \
            sidecar_path(writer.output_dir, item, writer.suffix).exists():
        return True
    if job.journal is None or job.key is None or item.error is not None:
        return False
    state = job.journal.status(job.key(item))
    return state == "done" or (state == "failed" and not job.retry_failed)


def guarded(item: InputItem, process: Process, error_record: ErrorRecord, *,
            debug: bool = False) -> Iterator[TaskEvent]:
    """The events of one input, the per-input loop that ``run`` and ``mmcli.api`` share.

    A failure of this input (bad file, engine error on it) ends its events with
    ``Done(error record)``; failures that concern the whole run (model unavailable, usage,
    a closed stdout) propagate.
    """
    try:
        if item.error is not None:
            raise InputError(item.error)
        yield from process(item)
    except MmcliError as exc:
        if not isinstance(exc, InputError):
            raise  # concerns the whole batch (model unavailable, usage): stop here
        yield Done(_failed(item, exc, error_record, debug))
    except BrokenPipeError:
        raise  # stdout's reader left (`| head`): the whole run ends, not this input
    except (OSError, ValueError, RuntimeError) as exc:
        # Engines and decoders raise these on bad content; the batch must go on.
        yield Done(_failed(item, exc, error_record, debug))


def _failed(item: InputItem, exc: BaseException, error_record: ErrorRecord,
            debug: bool) -> Record:
    if debug:
        traceback.print_exc()
    return error_record(item, ErrorInfo.from_exception(exc))


def _one(item: InputItem, events: Iterable[TaskEvent], writer: Writer, summary: Summary,
         job: Job, bar: BatchBar | None) -> str:
    first_output = len(writer.written)
    failure: str | None = None
    for event in events:
        if not isinstance(event, Done):
            if bar is not None:
                bar.event(event)
            writer.event(event, item)
            continue
        record = event.record
        if record.error is not None:
            failure = record.error.message
            message = failure if failure.startswith(item.display) else \
                f"{item.display}: {failure}"
            console.error(message)
        writer.write(record, item)
    if failure is None:
        summary.done += 1
    else:
        summary.failed += 1
    if job.journal is not None and job.key is not None and item.error is None:
        # After the outputs were renamed into place: "done" always means the files exist.
        job.journal.append(job.key(item), item, "failed" if failure else "done",
                           writer.written[first_output:], failure)
    return "failed" if failure else "done"
