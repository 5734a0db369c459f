"""What a worker needs to run a task away from the driver (``--jobs`` processes, Ray actors).

``Work`` is a plain picklable value: the task name, the resolved model, the settings and the
task's options, plus the task and engine registrations in force (tests register fakes, and a
spawned worker must see the same ones). A worker calls ``work.install()`` once, then
``work.process()`` to build the task's processor, which loads the engine on its first input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mmcli.records import ResolvedModel
from mmcli.settings import Settings

if TYPE_CHECKING:
    from mmcli.batch import Runner
    from mmcli.engines import EngineSpec
    from mmcli.events import TaskEvent
    from mmcli.inputs import InputItem
    from mmcli.records import ErrorInfo, Record
    from mmcli.tasks.base import Process


@dataclass
class Work:
    """One run's task, model, settings and options, rebuildable in another process."""

    task: str
    model: ResolvedModel
    settings: Settings
    options: Any
    task_targets: dict[str, str] = field(default_factory=dict)
    engine_specs: list[EngineSpec] = field(default_factory=list)

    @classmethod
    def of(cls, task: str, model: ResolvedModel, settings: Settings, options: Any) -> Work:
        """The work of this run, with the registrations of this process."""
        from mmcli import engines, tasks

        return cls(task, model, settings, options, dict(tasks.registrations()),
                   [engines.spec(n) for n in engines.names()])

    def install(self) -> None:
        """Apply the driver's task and engine registrations in this (worker) process."""
        from mmcli import engines, tasks

        for name, target in self.task_targets.items():
            tasks.register(name, target)
        for spec in self.engine_specs:
            engines.register(spec)

    def with_threads(self, threads: int) -> Work:
        """The same work with ``threads`` engine threads (a worker's share of the total)."""
        return replace(self, settings=replace(self.settings, threads=max(1, threads)))

    def process(self) -> Process:
        """The task's processor (item -> events); the engine loads on the first item."""
        from mmcli import tasks

        return tasks.get(self.task).processor(self.model, self.settings, self.options)

    def runner(self) -> Runner:
        """The runner of this process (the driver's, or a worker's for its share): the task's
        own batching runner, else one input at a time."""
        from mmcli import tasks
        from mmcli.batch import sequential

        batched = tasks.get(self.task).runner(self)
        if batched is not None:
            return batched
        return sequential(self.process(), self.error_record, debug=self.settings.debug)

    def error_record(self, item: InputItem, info: ErrorInfo) -> Record:
        """The task's record of an input that failed."""
        from mmcli import tasks

        return tasks.get(self.task).error_record(item, info, self.model)

    def events(self, item: InputItem, process: Process) -> Iterator[TaskEvent]:
        """One input's events through the shared per-input guard (failures become records)."""
        from mmcli.batch import guarded

        return guarded(item, process, self.error_record, debug=self.settings.debug)
