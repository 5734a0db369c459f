"""Attachments: kind detection, hashing, the text size cap, and how each enters a prompt.

An attachment is read and hashed once. How it is used depends on the chat model: an image goes
in natively when the model has an mmproj, otherwise it is *bridged* (described by a caption
model); audio is transcribed (``used_as`` leaves room for native audio on libmtmd audio models);
text is inlined under a filename header. Bridged text is cached per sha256 for the session.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcli.errors import InputError
from mmcli.inputs import EXTENSIONS, InputItem, sniff

MIME = {b"\xff\xd8": "image/jpeg", b"\x89P": "image/png", b"GI": "image/gif", b"BM": "image/bmp",
        b"RI": "image/webp", b"II": "image/tiff", b"MM": "image/tiff"}


@dataclass
class RegionPart:
    """The region of an image attachment (``/attach photo.jpg --point X,Y``), made by
    ``mmcli.chatkit.regions``: the marked crop enters the prompt instead of the whole image.

    Attributes:
        where: the region's prompt as typed (``320,240`` or ``10,10,50,40``).
        points / neg_points / box: the segment prompt of this one region (original pixels).
        style: ``outline`` | ``dim`` (how the crop marks the region).
        note: the sentence saying what is marked (caption's region lead).
        instruction: caption's region prompt, for a caption model describing the crop.
        mask: the region, the same object as one of segment's ``masks`` (``MaskResult``).
        crop: ``[x0, y0, x1, y1]`` of the crop in original pixels.
        png: the marked crop as the model sees it (empty until segmented).
    """

    where: str
    points: list[tuple[float, float]] = field(default_factory=list)
    neg_points: list[tuple[float, float]] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    style: str = "outline"
    note: str = ""
    instruction: str = ""
    mask: Any = None
    crop: list[int] = field(default_factory=list)
    png: bytes = field(default=b"", repr=False)


@dataclass
class Attachment:
    """A file attached to a message.

    Attributes:
        path: as the user gave it (``-`` for stdin).
        kind: ``image`` | ``audio`` | ``video`` | ``text``.
        data: the bytes (kept for native images and for bridging).
        sha256: hex digest of ``data``.
        used_as / by / text / cached: filled when the attachment is resolved for a model
            (see ``mmcli.chatkit.records.AttachmentInfo``).
        frames: a native video's sampled frames, ``(seconds, PNG bytes)`` each; ``text`` then
            holds its timed transcript notes.
        region: a region of an image (``data`` stays the whole file: its hash, its size).
    """

    path: str
    kind: str
    data: bytes = field(repr=False)
    sha256: str = ""
    used_as: str = ""
    by: str | None = None
    text: str | None = None
    cached: bool = False
    frames: list[tuple[float, bytes]] = field(default_factory=list, repr=False)
    region: RegionPart | None = None

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def name(self) -> str:
        """The file name shown in labels (``stdin`` for piped input)."""
        return "stdin" if self.path == "-" else Path(self.path).name

    @property
    def label(self) -> str:
        """The name in prompt labels: ``photo.jpg``, or ``photo.jpg, region at 320,240``."""
        return self.name if self.region is None else f"{self.name}, region at {self.region.where}"

    @property
    def key(self) -> str:
        """What the bridge caches its text under: the file's hash (and the region)."""
        if self.region is None:
            return self.sha256
        neg = ";".join(f"{x:g},{y:g}" for x, y in self.region.neg_points)
        return f"{self.sha256}#{self.region.where}-{neg}/{self.region.style}"

    def data_url(self) -> str:
        """A ``data:`` URL of an image, for native vision input."""
        return data_url(self.data)

    def image_count(self) -> int:
        """Images this attachment puts in the prompt (a native video: one per frame)."""
        if self.used_as != "native":
            return 0
        return len(self.frames) if self.kind == "video" else 1

    def image_parts(self, for_count: bool = False) -> list[dict[str, Any]]:
        """The content parts of a native attachment: the image, or each video frame after a
        label with its time, then the clip's timed transcript notes. ``for_count`` puts a
        text placeholder where each image goes (a text-only tokenizer counts the rest)."""
        def image(data: bytes) -> dict[str, Any]:
            if for_count:
                return {"type": "text", "text": "<image>"}
            return {"type": "image_url", "image_url": {"url": data_url(data)}}

        if self.used_as != "native":
            return []
        if self.region is not None:  # the marked crop, then what is marked (as caption)
            return [image(self.region.png),
                    {"type": "text", "text": f"\n[image {self.label}]: {self.region.note}\n"}]
        if self.kind != "video":
            return [image(self.data)]
        parts: list[dict[str, Any]] = []
        for i, (t, png) in enumerate(self.frames):
            head = f"[video {self.name}: {len(self.frames)} frames]\n" if i == 0 else "\n"
            parts += [{"type": "text", "text": f"{head}[frame at {t:.1f}s]\n"}, image(png)]
        return [*parts, {"type": "text", "text": f"\n{self.text or ''}\n"}]

    def prompt_text(self) -> str:
        """The labelled block this attachment contributes to the prompt (empty when native)."""
        if self.used_as == "native":
            return ""
        if self.used_as == "described":
            return f"[{self.kind} {self.label}, described by {self.by}]: {self.text}"
        if self.used_as == "missing":
            return f"[{self.kind} {self.label}]: {self.text}"
        if self.used_as == "transcribed":
            return f"[audio {self.name}, transcribed by {self.by}]: {self.text}"
        return f"[file {self.name}]\n{self.text}\n[end of {self.name}]"


def data_url(data: bytes) -> str:
    """A ``data:`` URL of image bytes (the MIME type sniffed from the first bytes)."""
    mime = MIME.get(data[:2], "image/png")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def detect_kind(name: str, data: bytes) -> str:
    """``image`` | ``audio`` | ``video`` | ``text`` from content (then extension); InputError
    otherwise. A video container is opened (headers only): an mp4 holding only sound is
    ``audio``; one that cannot be read is refused before any model loads."""
    sniffed = sniff(data[:16])
    if sniffed in ("image", "audio"):
        return sniffed
    if sniffed == "video":
        return _video_kind(name, data)
    if data[:5] == b"%PDF-":
        raise InputError(f"{name}: PDF attachments are not supported (kind: pdf)",
                         hint=f"convert it to text first, e.g. `pdftotext {name} out.txt`")
    if _is_text(data):
        return "text"
    ext = Path(name).suffix.lower()
    if ext in EXTENSIONS["image"] | EXTENSIONS["audio"]:
        raise InputError(f"{name}: not a readable {ext[1:]} file (unrecognised content)")
    raise InputError(f"{name}: unsupported attachment kind (binary data)",
                     hint="attach images, audio, or text files (txt, md, csv, json, code)")


def _video_kind(name: str, data: bytes) -> str:
    from mmcli.backends import frames

    try:
        info = frames.probe(data)
    except InputError as exc:
        raise InputError(f"{name}: {exc.message}") from None
    if info.has_video:
        return "video"
    if info.has_audio:
        return "audio"
    raise InputError(f"{name}: {frames.no_video(False).message}")


def _is_text(data: bytes) -> bool:
    head = data[:65536]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the 64 KB window is still text.
        return exc.start >= len(head) - 3 and len(data) > len(head)
    return True


def from_bytes(path: str, data: bytes, max_text_kb: int) -> Attachment:
    """Build an attachment from content; text over ``max_text_kb`` is an InputError."""
    kind = detect_kind(path, data)
    att = Attachment(path=path, kind=kind, data=data)
    if kind == "text":
        if len(data) > max_text_kb * 1024:
            raise InputError(
                f"{att.name}: text attachment is {len(data) / 1024:.0f} KB, over the "
                f"{max_text_kb} KB limit",
                hint="attach an excerpt, or raise the limit with --max-text-kb")
        att.text = data.decode("utf-8", errors="replace").strip("\n")
        att.used_as = "inlined"
    return att


def load(path: str, max_text_kb: int) -> Attachment:
    """Read and classify the file at ``path`` (missing / unreadable -> InputError)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{path}: no such file", hint="check the path (Tab completes it)")
    if p.is_dir():
        raise InputError(f"{path}: is a folder; attach files one by one")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})")
    return from_bytes(path, data, max_text_kb)


def from_item(item: InputItem, max_text_kb: int) -> Attachment:
    """An attachment from a batch input item (file or stdin bytes)."""
    if item.error:
        raise InputError(item.error)
    if item.path is None:
        return from_bytes("-", item.read_bytes(), max_text_kb)
    return load(str(item.path), max_text_kb)
