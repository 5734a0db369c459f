"""The task contract: one object per task that the CLI, the library API and the batch loop
drive alike (``mmcli.tasks.get(name)`` returns it).

A task declares the media kinds and ``--format`` values it takes, its ``Options`` dataclass, how
it processes one input (a generator of ``mmcli.events`` events ending in ``Done`` records), how
a record renders in each format, and which files ``--output-dir`` writes for a record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from mmcli.outputs import default_render, json_suffix
from mmcli.sinks import AudioTarget, Sidecar

if TYPE_CHECKING:
    from mmcli.batch import Runner
    from mmcli.events import TaskEvent
    from mmcli.inputs import InputItem
    from mmcli.records import ErrorInfo, Record, ResolvedModel
    from mmcli.settings import Settings
    from mmcli.work import Work

O = TypeVar("O")  # noqa: E741 - the task's Options dataclass

BASE_FORMATS = ("text", "json", "jsonl")
# item -> events; the last event(s) are ``Done(record)``. Built once per run by ``processor``.
Process = Callable[["InputItem"], Iterator["TaskEvent"]]


class Task(Generic[O]):
    """Base of every task object; subclasses set the class attributes and ``processor``."""

    name: ClassVar[str] = ""
    kinds: ClassVar[frozenset[str]] = frozenset()
    stdin_bytes: ClassVar[bool] = True  # may ``-`` carry the media itself (not paths)?
    formats: ClassVar[tuple[str, ...]] = BASE_FORMATS
    options_type: type[O]
    record_type: ClassVar[type[Record]]

    def suffix(self, fmt: str) -> str:
        """The sidecar suffix for ``fmt`` (``--skip-existing`` checks this file)."""
        return json_suffix(fmt)

    def skip_suffix(self, fmt: str, options: O) -> str:
        """The suffix of an input's first sidecar with these options (``--skip-existing``)."""
        return self.suffix(fmt)

    def render(self, record: Record, fmt: str) -> str:
        """The text written for one record in ``fmt``."""
        return default_render(record, fmt)

    def files(self, record: Record, fmt: str) -> list[Sidecar]:
        """``--output-dir`` sidecars of one record: ``[(suffix, content)]``."""
        return [(self.suffix(fmt), self.render(record, fmt))]

    def processor(self, model: ResolvedModel, settings: Settings, options: O) -> Process:
        """Return ``item -> events``; the engine loads lazily on the first item (once)."""
        raise NotImplementedError

    def error_record(self, item: InputItem, info: ErrorInfo, model: ResolvedModel) -> Record:
        """The record of an input that failed."""
        return self.record_type(input=item.display, task=self.name, model=model.info, error=info)

    def runner(self, work: Work) -> Runner | None:
        """A runner that processes several inputs together (batching across inputs), or None
        for one input at a time. ``--jobs``/``--ray`` workers use it on their share too."""
        return None

    def group(self, items: list[InputItem], options: O) -> list[InputItem]:
        """How discovered inputs become units of work (default: one per input)."""
        return items

    def audio(self, options: O) -> AudioTarget | None:
        """Where ``AudioChunk`` events go (None: the task makes no audio)."""
        return None

    def check(self, fmt: str, options: Any, *, output_dir: bool) -> None:
        """Refuse option combinations the task cannot honour, before anything loads."""
