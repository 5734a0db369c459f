"""A task module following the contract of ``mmcli.tasks`` on top of the fake engine."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mmcli import engines
from mmcli.inputs import InputItem
from mmcli.outputs import default_render
from mmcli.records import ErrorInfo, Record, Timings
from mmcli.records import ResolvedModel
from mmcli.settings import Settings

KINDS = frozenset({"image", "audio", "text"})
STDIN_BYTES = True
FORMATS = ("text", "json", "jsonl")
render = default_render


def suffix(fmt: str) -> str:
    return ".json" if fmt in ("json", "jsonl") else ".txt"


@dataclass
class Options:
    upper: bool = False


@dataclass
class EchoRecord(Record):
    summary: str = ""

    def text(self) -> str:
        return self.summary


def processor(model: ResolvedModel, settings: Settings,
              options: Options) -> Callable[[InputItem], Iterator[Record]]:
    def process(item: InputItem) -> Iterator[Record]:
        engine, load_s = engines.load(model, settings)
        start = time.perf_counter()
        summary = engine.describe(item.read_bytes(), upper=options.upper)
        yield EchoRecord(input=item.display, task="caption", model=model.info,
                         device=engine.device, summary=summary,
                         timings=Timings(load_s=load_s, run_s=time.perf_counter() - start))

    return process


def error_record(item: InputItem, info: ErrorInfo, model: ResolvedModel) -> Record:
    return EchoRecord(input=item.display, task="caption", model=model.info, error=info)
