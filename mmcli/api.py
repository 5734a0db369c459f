"""Library use without the CLI: the same code path as the commands.

    from mmcli import api
    for record in api.run("transcribe", ["talk.mp3"]):
        print(record.to_dict())
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from mmcli import batch, inputs, manifest, resolve
from mmcli.errors import InputError, MmcliError
from mmcli.records import ErrorInfo, Record
from mmcli.records import ResolvedModel
from mmcli.settings import Settings
from mmcli.tasks import task_module


def load_model(task: str, model: str | None = None, settings: Settings | None = None,
               models_file: Path | None = None) -> ResolvedModel:
    """Resolve ``model`` (a name, a path, or None for the task default) to local files."""
    settings = settings or Settings.from_env(models_file=models_file)
    return resolve.resolve(model, task, manifest.load(settings.models_file), settings)


def run(task: str, sources: list[str | Path | bytes], model: str | ResolvedModel | None = None,
        *, settings: Settings | None = None, **options: Any) -> Iterator[Record]:
    """Run ``task`` on paths (files, folders, globs) or raw bytes; yield typed records.

    Args:
        task: caption, vqa, transcribe, speak, segment or chat.
        sources: paths or bytes (bytes are treated like media piped on stdin).
        model: a manifest name, a local model path, a ResolvedModel, or None (the default).
        settings: global settings (offline, device, threads); default from the environment.
        **options: fields of the task's ``Options`` dataclass.
    Returns:
        An iterator of records; failed inputs are records with ``error`` set.
    """
    settings = settings or Settings.from_env()
    mod = task_module(task)
    known = {f.name for f in fields(mod.Options)}
    unknown = set(options) - known
    if unknown:
        raise MmcliError(f"unknown option(s) for {task}: {', '.join(sorted(unknown))}")
    resolved = model if isinstance(model, ResolvedModel) else load_model(task, model, settings)
    process = mod.processor(resolved, settings, mod.Options(**options))
    items: list[inputs.InputItem] = []
    for src in sources:
        if isinstance(src, bytes):
            items.append(inputs.InputItem(display="<bytes>", path=None, rel=Path("bytes"),
                                          data=src))
        else:
            items.extend(inputs.discover([str(src)], set(mod.KINDS)))
    for item in items:
        try:
            if item.error:
                raise InputError(item.error)
            yield from process(item)
        except InputError as exc:
            yield mod.error_record(item, ErrorInfo.from_exception(exc), resolved)
        except (OSError, ValueError, RuntimeError) as exc:
            yield mod.error_record(item, ErrorInfo.from_exception(exc), resolved)


__all__ = ["run", "load_model", "batch"]
