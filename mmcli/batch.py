"""Run a task over a batch of inputs: stream records, record failures, compute the exit code.

A failure of one input (bad file, engine error on it) becomes an error record and the batch
goes on; a failure that concerns every input (model unavailable, bad usage) stops the batch.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mmcli import console
from mmcli.errors import ExitCode, InputError, MmcliError
from mmcli.inputs import InputItem
from mmcli.outputs import Writer, sidecar_path
from mmcli.records import ErrorInfo, Record
from mmcli.settings import Settings

Process = Callable[[InputItem], Iterable[Record]]
ErrorRecord = Callable[[InputItem, ErrorInfo], Record]


@dataclass
class Summary:
    """Counts for the end-of-batch line."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.perf_counter)

    def line(self) -> str:
        """``3 done, 1 failed, 0 skipped in 2.1 s``."""
        took = time.perf_counter() - self.started
        return f"{self.done} done, {self.failed} failed, {self.skipped} skipped in {took:.1f} s"

    @property
    def exit_code(self) -> ExitCode:
        """0 when nothing failed, 1 otherwise."""
        return ExitCode.INPUT_FAILED if self.failed else ExitCode.OK


def run(items: list[InputItem], process: Process, error_record: ErrorRecord, writer: Writer,
        settings: Settings, *, skip_existing: bool = False) -> Summary:
    """Process every item, writing records as they arrive.

    Args:
        items: the discovered inputs (items with ``error`` set fail without processing).
        process: item -> records (a generator, so output streams).
        error_record: builds the task's record for a failed item.
        writer: where records go.
        settings: global settings (quiet, debug).
        skip_existing: skip items whose sidecar already exists under the writer's output dir.
    Returns:
        The summary; ``summary.exit_code`` is the batch's exit code.
    """
    summary = Summary()
    show = console.show_progress(settings.quiet) and len(items) > 1
    with console.progress(len(items), "processing", enabled=show) as bar:
        for item in items:
            if skip_existing and writer.output_dir is not None and \
                    sidecar_path(writer.output_dir, item, writer.suffix).exists():
                summary.skipped += 1
            else:
                _one(item, process, error_record, writer, settings, summary)
            if bar is not None:
                bar.advance(bar.task_ids[0])
    writer.close()
    if len(items) > 1 or summary.failed or summary.skipped:
        console.info(summary.line(), quiet=settings.quiet)
    return summary


def _one(item: InputItem, process: Process, error_record: ErrorRecord, writer: Writer,
         settings: Settings, summary: Summary) -> None:
    try:
        if item.error is not None:
            raise InputError(item.error)
        records: Iterator[Record] = iter(process(item))
        for record in records:
            writer.write(record, item)
            if record.ok:
                summary.done += 1
            else:
                summary.failed += 1
                assert record.error is not None
                console.error(f"{item.display}: {record.error.message}")
    except MmcliError as exc:
        if not isinstance(exc, InputError):
            raise  # concerns the whole batch (model unavailable, usage): stop here
        _fail(item, exc, error_record, writer, settings, summary)
    except (OSError, ValueError, RuntimeError) as exc:
        # Engines and decoders raise these on bad content; the batch must go on.
        _fail(item, exc, error_record, writer, settings, summary)


def _fail(item: InputItem, exc: BaseException, error_record: ErrorRecord, writer: Writer,
          settings: Settings, summary: Summary) -> None:
    if settings.debug:
        traceback.print_exc()
    info = ErrorInfo.from_exception(exc)
    message = info.message if info.message.startswith(item.display) else \
        f"{item.display}: {info.message}"
    console.error(message)
    summary.failed += 1
    writer.write(error_record(item, info), item)
