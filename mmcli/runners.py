"""Which runner executes a batch's inputs: here one at a time, ``--jobs N`` engine instances
on this machine, or Ray workers (``--ray``). The batch loop (``mmcli.batch.run``) writes every
output in input order whichever runs them, so journal, resume and exit codes mean the same."""

from __future__ import annotations

from typing import Protocol

from mmcli.batch import Runner
from mmcli.work import Work


class Placement(Protocol):
    """The ``--jobs`` / ``--ray*`` options (``cli.common.BatchArgs`` has them)."""

    jobs: int
    ray: str | None
    ray_workers: int
    ray_cpus: float
    ray_gpus: float


def choose(work: Work, where: Placement) -> Runner:
    """The runner ``where`` asks for (parallel engines import nothing until chosen)."""
    if where.ray is not None:
        from mmcli import rayrun

        return rayrun.runner(work, where)
    if where.jobs > 1:
        from mmcli import parallel

        return parallel.runner(work, where.jobs)
    return work.runner()
