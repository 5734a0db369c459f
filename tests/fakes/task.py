"""A task object following the contract of ``mmcli.tasks.base`` on top of the fake engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from mmcli import engines
from mmcli.events import Done, TaskEvent
from mmcli.inputs import InputItem
from mmcli.records import Record, ResolvedModel, Timings
from mmcli.settings import Settings
from mmcli.tasks.base import Process, Task


@dataclass
class Options:
    upper: bool = False


@dataclass
class EchoRecord(Record):
    summary: str = ""

    def text(self) -> str:
        return self.summary


class EchoTask(Task[Options]):
    name = "caption"
    kinds = frozenset({"image", "audio", "text"})
    options_type = Options
    record_type = EchoRecord

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        def process(item: InputItem) -> Iterator[TaskEvent]:
            engine, load_s = engines.load(model, settings)
            start = time.perf_counter()
            summary = engine.describe(item.read_bytes(), upper=options.upper)
            yield Done(EchoRecord(input=item.display, task="caption", model=model.info,
                                  device=engine.device, summary=summary,
                                  timings=Timings(load_s=load_s,
                                                  run_s=time.perf_counter() - start)))

        return process


TASK = EchoTask()
