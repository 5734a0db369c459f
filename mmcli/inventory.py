"""What mmcli knows about models without loading or hashing them.

``describe`` is ``mmcli models show NAME`` (the manifest entry, each file on disk, the task
defaults it is in); ``runnable_now`` is doctor's "which tasks run right now, offline, and with
which model". Both only look: file states come from ``mmcli.pins``' record, engines are
checked with ``importlib.util.find_spec`` (nothing is imported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcli import engines, hub, pins
from mmcli.manifest import Manifest, ModelEntry


def engine_packages(engine: str) -> dict[str, bool]:
    """Import name -> installed, for each package the engine needs."""
    return engines.packages(engine)


def defaults_of(name: str, manifest: Manifest) -> dict[str, int]:
    """Task -> rank (1 = first choice) of each ``[defaults]`` list that names the model."""
    return {task: names.index(name) + 1 for task, names in sorted(manifest.defaults.items())
            if name in names}


def file_facts(entry: ModelEntry) -> list[dict[str, Any]]:
    """Per file: role, name, url (url sources), size (bytes, when on disk), sha256 and where
    it comes from (``manifest`` pin or the ``hub`` cache's LFS name), path, and state: ``ok``
    (verified, unchanged since), ``mismatch``, ``not verified`` or ``missing``."""
    base = hub.base_dir(entry)
    out = []
    for role, name in entry.roles.items():
        path: Path | None = None
        if entry.source == "url":
            blob = hub.url_blob_path(entry.sha256[role], name)
            path = blob if blob.is_file() else None
        elif base is not None:
            path = hub.find_file(base, name)  # some files may be here, others not
        sha, origin = hub.expected_sha256(entry, role, path)
        out.append({
            "role": role, "name": path.name if path is not None else name,
            "url": entry.url.get(role), "size": _size(path), "sha256": sha,
            "sha256_from": origin or None, "path": str(path) if path is not None else None,
            "state": "missing" if path is None else pins.known_state(path, sha),
        })
    return out


def _size(path: Path | None) -> int | None:
    if path is None:
        return None
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def describe(entry: ModelEntry, manifest: Manifest) -> dict[str, Any]:
    """Everything about one model, JSON-ready (the shape of ``models show --json``)."""
    return {
        "name": entry.name, "description": entry.description, "engine": entry.engine,
        "engine_packages": engine_packages(entry.engine), "tasks": list(entry.tasks),
        "defaults": defaults_of(entry.name, manifest), "license": entry.license,
        "size_mb": entry.size_mb, "status": hub.status(entry), "source": entry.source_label,
        "repo": entry.repo, "revision": entry.revision, "package": entry.package,
        "path": str(entry.path) if entry.path is not None else None,
        "url": dict(entry.url) or None, "manifest": str(entry.origin),
        "options": dict(entry.options), "files": file_facts(entry),
    }


CHANGED = "cached copy fails its sha256 pin"


def _not_ready(entry: ModelEntry) -> str | None:
    """Why this model cannot run right now offline, or None."""
    files = hub.local_files(entry)
    if files is None:
        return "package not installed" if entry.source == "package" else \
            "missing" if entry.source == "path" else "not downloaded"
    missing = [mod for mod, ok in engine_packages(entry.engine).items() if not ok]
    if missing:
        return f"engine '{entry.engine}' needs {', '.join(missing)}"
    if entry.source in hub.DOWNLOADED and any(
            pins.known_state(files[role], sha) == "mismatch" for role, sha in entry.sha256.items()):
        return CHANGED
    return None


def runnable_now(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Task -> what it would run offline right now: the first default that is local and whose
    engine is installed (``model``), or ``model: None`` and the ``fix`` to run; ``skipped``
    lists the defaults passed over, with the reason."""
    out: dict[str, dict[str, Any]] = {}
    for task in engines.TASKS:
        entries = [manifest.models[n] for n in manifest.defaults.get(task, [])]
        skipped: list[dict[str, str]] = []
        for entry in entries:
            why = _not_ready(entry)
            if why is None:
                out[task] = {"model": entry.name, "engine": entry.engine, "fix": None,
                             "skipped": skipped}
                break
            skipped.append({"model": entry.name, "reason": why})
        else:
            changed = {s["model"] for s in skipped if s["reason"] == CHANGED}
            out[task] = {"model": None, "engine": None, "fix": _fix(task, entries, changed),
                         "skipped": skipped}
    return out


def _fix(task: str, entries: list[ModelEntry], changed: set[str]) -> str:
    """The one command that would make ``task`` runnable: install a missing engine (a download
    would not help), else pull the first downloadable default, else install its package."""
    for entry in entries:
        spec = engines.spec(entry.engine)
        if spec.pip and not all(engine_packages(entry.engine).values()):
            return spec.pip
    for entry in entries:
        if entry.source in hub.DOWNLOADED:
            rm = f"mmcli models rm {entry.name} && " if entry.name in changed else ""
            return f"{rm}mmcli models pull {entry.name}"
    for entry in entries:
        if entry.source == "package":
            return f"pip install {entry.package}"
    return f"add a model to [defaults] {task} (see `mmcli models list --task {task}`)"
