"""mmcli as one stage of a Ray Data pipeline: a callable class for ``Dataset.map_batches``.

Rows come in with a ``path`` column (files the workers can read) or a ``bytes`` column
(content, e.g. from ``ray.data.read_binary_files``; an optional ``name`` column says what
the records' ``input`` is); rows go out as the record dicts ``--format json`` prints, one per
input (vqa: one per question), plus a ``wav`` column of WAV bytes for ``speak``. Each actor
resolves the model once and loads it on its first batch. Needs ``pip install 'mmcli[ray]'``.

Example::

    import ray
    from mmcli.ray import Mmcli

    ds = ray.data.from_items([{"path": "/data/a.wav"}, {"path": "/data/b.wav"}])
    out = ds.map_batches(Mmcli, fn_constructor_kwargs={"task": "transcribe"},
                         concurrency=2, num_cpus=1, batch_size=8)
    for row in out.iter_rows():
        print(row["input"], row["text"])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import ray  # noqa: F401 - only to fail at import with the install hint
except ImportError:
    raise ImportError("mmcli.ray needs Ray: pip install 'mmcli[ray]'") from None

from mmcli.events import AudioChunk, Done
from mmcli.inputs import InputItem
from mmcli.settings import Settings

__all__ = ["Mmcli"]


class Mmcli:
    """Run an mmcli task on each row of a batch (see the module docstring).

    Args:
        task: caption, vqa, transcribe, speak, segment or chat.
        model: a manifest name, a local model path, or None for the task's default.
        threads: engine threads (default: the CPUs Ray gives this actor, else the engine's).
        device: auto, cpu, cuda or metal.
        models_file: an extra models.toml layer (``--models``).
        **options: fields of the task's ``Options`` dataclass (as ``mmcli.api.run`` takes).
    """

    def __init__(self, task: str, model: str | None = None, *, threads: int | None = None,
                 device: str = "auto", models_file: str | Path | None = None,
                 **options: Any) -> None:
        from mmcli import api, tasks
        from mmcli.errors import UsageError

        if task not in tasks.NAMES:
            raise UsageError(f"unknown task {task!r}", hint=f"one of {', '.join(tasks.NAMES)}")
        self.spec = tasks.get(task)
        self.settings = Settings.from_env(device=device, threads=threads or _ray_cpus(),
                                          models_file=Path(models_file) if models_file else None)
        known = {f for f in self.spec.options_type.__dataclass_fields__}  # type: ignore[attr-defined]
        unknown = set(options) - known
        if unknown:
            raise UsageError(f"unknown option(s) for {task}: {', '.join(sorted(unknown))}")
        self.options = self.spec.options_type(**options)
        self.model = api.load_model(task, model, self.settings)
        self.process = self.spec.processor(self.model, self.settings, self.options)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Records (as ``--format json`` dicts, one column per field) for a batch of rows."""
        from mmcli.audio import wav_bytes
        from mmcli.batch import guarded

        rows: list[dict[str, Any]] = []
        wavs: list[bytes] = []
        for item in _items(batch):
            pcm: list[bytes] = []
            rate = 0
            for event in guarded(item, self.process, self._error_record,
                                 debug=self.settings.debug):
                if isinstance(event, AudioChunk):
                    pcm.append(event.pcm)
                    rate = event.sample_rate
                elif isinstance(event, Done):
                    rows.append(event.record.to_dict())
                    wavs.append(wav_bytes(b"".join(pcm), rate) if pcm and rate else b"")
        keys = list(dict.fromkeys(k for row in rows for k in row))
        out: dict[str, list[Any]] = {k: [row.get(k) for row in rows] for k in keys}
        if self.spec.name == "speak":
            out["wav"] = wavs
        return out

    def _error_record(self, item: InputItem, info: Any) -> Any:
        return self.spec.error_record(item, info, self.model)


def _ray_cpus() -> int | None:
    """The CPUs Ray assigned to this actor (None outside Ray or without a CPU request)."""
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - not inside a Ray worker
        return None
    return max(1, int(cpus)) if cpus else None


def _items(batch: Mapping[str, Any]) -> list[InputItem]:
    """The inputs of a batch: a ``path`` column, or ``bytes`` (+ optional ``name``)."""
    from mmcli.errors import UsageError

    if "path" in batch:
        items = []
        for value in batch["path"]:
            path = Path(str(value))
            error = None if path.is_file() else f"{path}: no such file"
            items.append(InputItem(display=str(path), path=path, rel=Path(path.name),
                                   error=error))
        return items
    if "bytes" in batch:
        names = list(batch["name"]) if "name" in batch else None
        return [InputItem(display=str(names[i]) if names else f"<bytes {i}>", path=None,
                          rel=Path(str(names[i]) if names else f"bytes-{i}"), data=bytes(data))
                for i, data in enumerate(batch["bytes"])]
    raise UsageError(f"mmcli.ray.Mmcli: a batch needs a 'path' or 'bytes' column, got "
                     f"{', '.join(batch) or 'none'}")
