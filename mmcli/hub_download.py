"""The network half of the model store: Hugging Face repos via huggingface-hub, URLs via urllib.

``mmcli.hub`` imports this module only when a download is really needed (huggingface-hub is
slow to import). It knows nothing of manifests or of where files live: ``hub`` passes it the
repo pin, the URL and the destination path. A failed or interrupted download never leaves a
partial file under the final name.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from mmcli import console
from mmcli.errors import ModelUnavailableError
from mmcli.settings import Settings

CHUNK = 1 << 20


def pull_repo(name: str, repo: str, revision: str, patterns: list[str],
              settings: Settings) -> None:
    """Download the files matching ``patterns`` of ``repo@revision`` into the HF cache.

    Args:
        name: the model's manifest name (for messages).
        repo: ``org/name`` on the hub; revision: the pinned branch, tag or commit.
        patterns: file names or globs to fetch (the manifest's ``files`` values).
        settings: for ``quiet`` (progress bars).

    Raises:
        ModelUnavailableError: network, auth or missing revision (a re-run resumes).
    """
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils import disable_progress_bars
    except ImportError:  # pragma: no cover - a hard dependency
        raise ModelUnavailableError("huggingface-hub is not installed",
                                    hint="run `pip install huggingface-hub`") from None
    if not console.show_progress(settings.quiet):
        disable_progress_bars()
    try:
        snapshot_download(repo_id=repo, revision=revision, allow_patterns=patterns)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # network, auth, missing revision: all mean "unavailable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(
            f"download of '{name}' from {repo} failed: {first[:200]}",
            hint="check the network (HF_ENDPOINT for a mirror); a re-run resumes") from None


def fetch_url(url: str, dest: Path, sha256: str, settings: Settings) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, verifying sha256 before the rename.

    Raises:
        ModelUnavailableError: network failure or checksum mismatch (nothing is left behind).
    """
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, part.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            with console.progress(total or 1, dest.name,
                                  enabled=console.show_progress(settings.quiet)) as bar:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
                    if bar is not None:
                        bar.advance(bar.task_ids[0], len(block))
            out.flush()
            os.fsync(out.fileno())
            if total and out.tell() != total:
                raise ConnectionError(f"connection closed after {out.tell()} of {total} bytes")
    except BaseException as exc:
        part.unlink(missing_ok=True)
        _cleanup_empty(dest.parent)
        if isinstance(exc, Exception):  # URLError, IncompleteRead, timeouts, disk full...
            reason = getattr(exc, "reason", None) or exc or type(exc).__name__
            raise ModelUnavailableError(f"download of {url} failed: {reason!s:.200}",
                                        hint="check the network and re-run") from None
        raise  # KeyboardInterrupt / SystemExit: nothing left behind, then stop
    if digest.hexdigest() != sha256.lower():
        part.unlink(missing_ok=True)
        _cleanup_empty(dest.parent)
        raise ModelUnavailableError(
            f"checksum mismatch for {url}: got {digest.hexdigest()[:12]}…, "
            f"expected {sha256[:12]}…", hint="the file changed upstream or the manifest is wrong")
    os.replace(part, dest)
    return dest


def _cleanup_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
