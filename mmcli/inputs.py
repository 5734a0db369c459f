"""Input discovery shared by every task command: files, folders, globs, ``-`` and shards.

Media kind comes from content sniffing (magic bytes) first and the extension second, so a
renamed file is still found and a ``.jpg`` that is really text becomes a clean error record.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mmcli.errors import UsageError

EXTENSIONS = {
    "image": {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"},
    "audio": {".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aiff"},
    "video": {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v"},
    "text": {".txt", ".md", ".csv", ".json", ".jsonl", ".py", ".toml", ".yaml", ".yml", ".rst"},
}


def text_name(text: str, limit: int = 32) -> str:
    """An output name for content that has no file name (a text argument, stdin): a short
    slug of the text plus a content hash, so different texts never share a sidecar and the
    same text always maps to the same one (``hello-there-2cf24dba``)."""
    slug = "-".join(re.findall(r"[a-z0-9]+", text.lower()))[:limit].rstrip("-") or "text"
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def sniff(head: bytes) -> str | None:
    """Media kind of content from its first bytes: ``image``, ``audio``, ``video`` or None."""
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image"
    if head[:6] in (b"GIF87a", b"GIF89a") or head[:2] == b"BM":
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio"
    if head[:4] in (b"fLaC", b"OggS") or head[:3] == b"ID3":
        return "audio"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "audio"  # MPEG audio frame sync (mp3 without ID3) / ADTS AAC
    if head[4:8] == b"ftyp":
        return "audio" if head[8:12] in (b"M4A ", b"M4B ") else "video"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video"  # Matroska / WebM
    return None


def kind_of(path: Path) -> str | None:
    """Kind of a file by content, then by extension; None when unknown or unreadable."""
    try:
        with path.open("rb") as fh:
            found = sniff(fh.read(16))
    except OSError:
        found = None
    if found:
        return found
    for kind, exts in EXTENSIONS.items():
        if path.suffix.lower() in exts:
            return kind
    return None


@dataclass
class InputItem:
    """One input of a batch.

    Attributes:
        display: what records show in ``input`` (the path as the user gave or found it).
        path: the file, or None for bytes read from stdin.
        rel: path relative to the argument it came from; output-dir sidecars mirror it.
        data: the bytes, for stdin input.
        error: why the item cannot be processed (missing, unreadable) - reported per input.
        parts: the inputs of a group processed as one unit (``vqa --together``), else empty.
    """

    display: str
    path: Path | None
    rel: Path
    data: bytes | None = None
    error: str | None = None
    parts: tuple[InputItem, ...] = ()

    @classmethod
    def group(cls, items: list[InputItem]) -> InputItem:
        """One unit of work made of ``items`` (the first failed part fails the group)."""
        error = next((f"{i.display}: {i.error}" if not i.error.startswith(i.display)
                      else i.error for i in items if i.error), None)
        return cls(display=" + ".join(i.display for i in items), path=None,
                   rel=Path("together"), error=error, parts=tuple(items))

    def read_bytes(self) -> bytes:
        """The content (stdin bytes or the file's)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``K/N`` (0 <= K < N), e.g. ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``."""
    if not text:
        return None
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise UsageError(f"--shard {text!r} is not K/N", hint="e.g. --shard 0/4 (K from 0 to N-1)")
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"--shard {text}: K must be between 0 and N-1", hint="e.g. --shard 3/4")
    return k, n


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Deterministic membership: a hash of the path, the same on every machine and run."""
    if shard is None:
        return True
    k, n = shard
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n == k


def discover(args: Iterable[str], kinds: set[str], *, stdin: BinaryIO | None = None,
             stdin_bytes: bool = False, shard: tuple[int, int] | None = None) -> list[InputItem]:
    """Expand arguments into input items, sorted and deduplicated, filtered by ``shard``.

    Args:
        args: files, folders (walked recursively, filtered by ``kinds``), globs, or ``-``.
        kinds: media kinds the task accepts (``image``, ``audio``, ``video``, ``text``).
        stdin: the binary stdin, read when an argument is ``-``.
        stdin_bytes: when True, stdin that starts with a media magic number of ``kinds`` is
            the media itself; otherwise ``-`` means newline-separated paths.
        shard: ``(K, N)`` from ``--shard``.
    Returns:
        The items; missing files are items with ``error`` set (reported per input).
    Raises:
        UsageError: nothing at all was found (empty folders, unmatched globs, empty stdin):
            nothing to do is not success. The message says what was searched.
    """
    items: list[InputItem] = []
    empty: list[str] = []  # arguments that gave nothing, with why
    for arg in args:
        found = _from_stdin(stdin, kinds, stdin_bytes, empty) if arg == "-" else \
            _expand(arg, kinds, empty)
        items.extend(found)
    if not items:
        wanted = ", ".join(sorted(kinds))
        exts = " ".join(sorted(e for k in kinds for e in EXTENSIONS.get(k, ())))
        raise UsageError(f"no input found: searched {'; '.join(empty) or 'nothing'} "
                         f"for {wanted} files",
                         hint=f"folders are searched recursively for {exts} (hidden files "
                              "are skipped); pass files, folders, globs or - (paths on stdin)")
    if empty:
        from mmcli import console

        for why in empty:
            console.warn(f"no input in {why}", quiet=False)
    seen: set[str] = set()
    out: list[InputItem] = []
    for item in items:
        key = str(item.path.resolve()) if item.path is not None else f"<stdin>{id(item)}"
        if key in seen:
            continue
        seen.add(key)
        if in_shard(item.display, shard):
            out.append(item)
    return out


def _from_stdin(stdin: BinaryIO | None, kinds: set[str], stdin_bytes: bool,
                empty: list[str]) -> list[InputItem]:
    if stdin is None:
        raise UsageError("'-' reads standard input, but there is none")
    data = stdin.read()
    if not data.strip():
        empty.append("standard input (it is empty)")
        return []
    if stdin_bytes and sniff(data[:16]) in kinds:
        name = f"stdin-{hashlib.sha256(data).hexdigest()[:8]}"  # two stdin runs never collide
        return [InputItem(display="-", path=None, rel=Path(name), data=data)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("standard input is neither a list of paths nor a supported media file",
                         hint=f"pipe paths one per line, or {'/'.join(sorted(kinds))} bytes")
    items: list[InputItem] = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            items.extend(_expand(line, kinds, empty))
    return items


def _expand(arg: str, kinds: set[str], empty: list[str]) -> list[InputItem]:
    path = Path(arg)
    if path.is_dir():
        found = _walk(path, kinds, empty)
        if not found and not any(e.startswith(f"{arg} ") for e in empty):
            empty.append(f"{arg} (a folder with no {'/'.join(sorted(kinds))} files)")
        return found
    if path.exists() or os.path.lexists(arg):
        return [InputItem(display=arg, path=path, rel=_file_rel(path))]
    if glob.has_magic(arg):
        matches = sorted(glob.glob(arg, recursive=True))
        out: list[InputItem] = []
        for m in matches:
            mp = Path(m)
            out.extend(_walk(mp, kinds, empty) if mp.is_dir() else
                       [InputItem(display=m, path=mp, rel=_file_rel(mp))])
        if not out:
            empty.append(f"{arg} (no files match the pattern)")
        return out
    return [InputItem(display=arg, path=path, rel=Path(path.name),
                      error=f"{arg}: no such file or directory")]


def _file_rel(path: Path) -> Path:
    """Where a file named on its own goes under --output-dir: its relative path as given, so
    ``a/x.wav`` and ``b/x.wav`` (from xargs or a glob) do not collide; absolute paths and paths
    with ``..`` keep only their name (collisions among those are caught by mark_collisions)."""
    if path.is_absolute() or ".." in path.parts:
        return Path(path.name)
    return Path(os.path.normpath(path))


def mark_collisions(items: list[InputItem]) -> None:
    """Give every item whose output name another item already uses an error (not a silent
    overwrite): e.g. ``/a/x.wav`` and ``/b/x.wav``, or two folders holding the same file name."""
    owner: dict[Path, str] = {}
    for item in items:
        if item.error is not None or item.path is None:
            continue
        first = owner.setdefault(item.rel, item.display)
        if first != item.display:
            item.error = (f"its output name {item.rel} is already used by {first}; pass the "
                          "folder that holds both, or use a separate --output-dir")


def _walk(root: Path, kinds: set[str], empty: list[str]) -> list[InputItem]:
    found: list[InputItem] = []

    def unreadable(exc: OSError) -> None:  # os.walk skips these silently otherwise
        empty.append(f"{exc.filename} (cannot be read: {exc.strerror or exc})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue  # journals, temp files, .DS_Store
            p = Path(dirpath) / name
            ext_kind = next((k for k, e in EXTENSIONS.items() if p.suffix.lower() in e), None)
            if ext_kind in kinds or kind_of(p) in kinds:
                found.append(InputItem(display=str(p), path=p, rel=p.relative_to(root)))
    return found
