"""``/save`` and ``/load``: a conversation as a JSON transcript with attachment hashes.

Bridged and inlined attachments keep the text that entered the prompt, so a loaded transcript
resumes without re-running caption/transcribe models (the bridge cache is seeded from it).
Native images and videos keep only path + sha256: on load the file is re-read and its hash
checked (a native video's frames are sampled again).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mmcli.atomic import atomic_write
from mmcli.chatkit.attachments import Attachment, RegionPart
from mmcli.chatkit.conversation import Conversation, Turn
from mmcli.errors import InputError

FORMAT = "mmcli-chat-transcript"
VERSION = 1


def to_json(conv: Conversation, model: str) -> str:
    """The transcript of ``conv`` as JSON text."""
    turns = [{"user": t.user, "reply": t.reply,
              "attachments": [_att(a) for a in t.attachments]} for t in conv.turns]
    doc = {"format": FORMAT, "version": VERSION, "model": model,
           "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "system": conv.system, "turns": turns}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _att(a: Attachment) -> dict[str, Any]:
    out = {"path": a.path, "kind": a.kind, "sha256": a.sha256, "bytes": len(a.data),
           "used_as": a.used_as, "by": a.by, "text": a.text}
    if a.region is not None:  # the prompt that makes the region again (and its mask)
        r = a.region
        out["region"] = {"where": r.where, "points": r.points, "neg_points": r.neg_points,
                         "box": r.box, "style": r.style,
                         "mask": asdict(r.mask) if r.mask is not None else None}
    return out


def _region(r: dict[str, Any] | None) -> RegionPart | None:
    if r is None:
        return None
    from mmcli.tasks.segment import MaskResult

    mask = MaskResult(**r["mask"]) if r.get("mask") else None
    return RegionPart(str(r["where"]), [tuple(p) for p in r.get("points", [])],  # type: ignore
                      [tuple(p) for p in r.get("neg_points", [])],  # type: ignore
                      tuple(r["box"]) if r.get("box") else None,  # type: ignore
                      str(r.get("style", "outline")), mask=mask)


def save(path: Path, conv: Conversation, model: str) -> None:
    """Write the transcript atomically."""
    try:
        atomic_write(path.expanduser(), to_json(conv, model))
    except OSError as exc:
        raise InputError(f"cannot save to {path}: {exc.strerror or exc}")


def load(path: Path) -> tuple[Conversation, str, list[str]]:
    """Read a transcript: ``(conversation, model name, notes about missing images)``."""
    try:
        doc = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable transcript ({exc})")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: not an mmcli chat transcript (saved with /save)")
    notes: list[str] = []
    conv = Conversation(system=doc.get("system"))
    try:
        for t in doc["turns"]:
            atts = [_restore(a, notes) for a in t.get("attachments", [])]
            conv.turns.append(Turn(str(t["user"]), atts, t.get("reply")))
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: damaged transcript (missing {exc})")
    return conv, str(doc.get("model", "")), notes


def _restore(a: dict[str, Any], notes: list[str]) -> Attachment:
    data = b""
    if a["used_as"] == "native":
        p = Path(a["path"])
        data = p.read_bytes() if p.is_file() else b""
        if not data or Attachment(a["path"], a["kind"], data).sha256 != a["sha256"]:
            notes.append(f"{a['kind']} {a['path']} changed or is gone; the model will be told so")
            return Attachment(a["path"], a["kind"], b"", sha256=a["sha256"], used_as="missing",
                              text=f"(the {a['kind']} is no longer available)")
    return Attachment(a["path"], a["kind"], data, sha256=a["sha256"], used_as=a["used_as"],
                      by=a.get("by"), text=a.get("text"), region=_region(a.get("region")))
