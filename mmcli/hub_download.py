"""The network half of the model store: Hugging Face repos via huggingface-hub, URLs via urllib.

``mmcli.hub`` imports this module only when a download is really needed (huggingface-hub is
slow to import). It knows nothing of manifests or of where files live: ``hub`` passes it the
repo pin, the URL and the destination path. A failed or interrupted download never leaves a
partial file under the final name.

Before a download, ``unreachable`` asks the server for anything at all with a short timeout:
an unplugged network then fails in seconds instead of after huggingface-hub's retries (five,
with back-off, ~24 s), and huggingface-hub's own log lines reach stderr only under ``-v``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmcli import console
from mmcli.errors import ModelUnavailableError
from mmcli.settings import Settings

CHUNK = 1 << 20
DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 4.0  # default wait for the server to answer at all (HF_HUB_ETAG_TIMEOUT wins)


def endpoint() -> str:
    """The hub's base URL as the environment says now (``HF_ENDPOINT`` for a mirror).

    Read at call time: huggingface-hub reads it once, at import.
    """
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def host(url: str) -> str:
    """``host[:port]`` of a URL, for messages."""
    return urllib.parse.urlsplit(url).netloc or url


def unreachable(url: str) -> str | None:
    """None when the server of ``url`` answers at all (any HTTP status); else the reason.

    One HEAD request to the server's root, through the environment's proxy settings, waiting
    ``HF_HUB_ETAG_TIMEOUT`` seconds (default ``PROBE_SECONDS``) and never retried.
    """
    parts = urllib.parse.urlsplit(url)
    root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    try:
        timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or PROBE_SECONDS)
    except ValueError:
        timeout = PROBE_SECONDS
    try:
        with urllib.request.urlopen(urllib.request.Request(root, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # an error status is still an answer: the server is there
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused, DNS, TLS
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"no answer in {timeout:g} s"
        return f"{getattr(reason, 'strerror', None) or reason}"[:120]


def require_network(name: str, server: str) -> None:
    """Fail in seconds, in one line, when ``server`` does not answer at all (rather than after
    half a minute of huggingface-hub retries, each one logged).

    Raises:
        ModelUnavailableError: naming the model and the host, with the next step.
    """
    why = unreachable(server)
    if why is not None:
        raise ModelUnavailableError(
            f"model '{name}' is not downloaded and {host(server)} cannot be reached ({why})",
            hint=f"run `mmcli models pull {name}` once online (HF_ENDPOINT for a mirror); "
                 "`mmcli doctor` lists what runs offline")


@contextmanager
def _hub_logs(verbose: bool) -> Iterator[None]:
    """huggingface-hub's warnings (retries, fallbacks) reach stderr only with ``-v``."""
    logger = logging.getLogger("huggingface_hub")
    previous = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def pull_repo(name: str, repo: str, revision: str, patterns: list[str],
              settings: Settings) -> None:
    """Download the files matching ``patterns`` of ``repo@revision`` into the HF cache.

    Args:
        name: the model's manifest name (for messages).
        repo: ``org/name`` on the hub; revision: the pinned branch, tag or commit.
        patterns: file names or globs to fetch (the manifest's ``files`` values).
        settings: ``quiet`` (progress bars), ``verbose`` (huggingface-hub's log lines).

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
        with _hub_logs(settings.verbose):
            snapshot_download(repo_id=repo, revision=revision, allow_patterns=patterns,
                              endpoint=endpoint())
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
