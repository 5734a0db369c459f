"""Tasks: the library layer between commands and engines.

Each task module ``mmcli.tasks.<task>`` provides the same names, so the CLI
(``mmcli.cli.common.run_batch``) and the library API (``mmcli.api``) drive every task alike:

- ``KINDS``: media kinds accepted (``{"audio", "video"}``…); ``STDIN_BYTES``: whether ``-``
  may carry the media itself.
- ``FORMATS``: the ``--format`` values; ``suffix(fmt)``: sidecar suffix for ``--output-dir``;
  ``render(record, fmt)``: the text written for a record.
- ``Options``: a dataclass of the task's options (defaults = the CLI defaults).
- ``processor(model, settings, options)``: returns ``item -> Iterable[Record]``; it loads the
  engine lazily with ``mmcli.engines.load`` on the first item (once per process).
- ``error_record(item, info, model)``: the task's record for a failed input.
- optional ``files(record, fmt) -> [(suffix, bytes | str)]``: the sidecars ``--output-dir``
  writes for one record when that is not one text file (WAV audio, a PNG per mask, every
  subtitle format for ``--format all``). Each is written atomically and journaled.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASK_MODULES = {
    "caption": "mmcli.tasks.caption",
    "vqa": "mmcli.tasks.vqa",
    "transcribe": "mmcli.tasks.transcribe",
    "speak": "mmcli.tasks.speak",
    "segment": "mmcli.tasks.segment",
    "chat": "mmcli.tasks.chat",
}


def task_module(task: str) -> ModuleType:
    """Import the module of ``task`` (tests may point TASK_MODULES at a fake)."""
    return importlib.import_module(TASK_MODULES[task])
