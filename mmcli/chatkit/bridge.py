"""Modality bridging: images a chat model cannot see are captioned, audio is transcribed, a
video becomes timed notes (each sampled frame captioned - by the chat model itself when it sees
images - and the sound track's timed transcript). For a chat model that sees images a video
enters natively instead: its sampled frames as images (``Bridge.frames``) plus the timed
transcript; the session falls back to the notes when the frames do not fit the context.

Both go through the library API (``mmcli.api.run``), i.e. the same task modules, models and
errors as ``mmcli caption`` / ``mmcli transcribe``. Results are cached per (task, sha256) for
the life of the session, so re-attaching a file (or resending it every turn) costs nothing.
"""

from __future__ import annotations

from typing import Any

from mmcli.chatkit.attachments import Attachment
from mmcli.errors import InputError, MmcliError, NotAvailableError
from mmcli.settings import Settings

TASK_OF = {"image": "caption", "audio": "transcribe", "video": "caption"}
USED_AS = {"caption": "described", "transcribe": "transcribed"}
VIDEO_FPS = 1.0  # frames a chat model sees natively: one per second of clip ...
VIDEO_FRAMES = 4  # ... at most this many (each costs the model's image tokens)


class Bridge:
    """Turns non-native attachments into labelled text, with a per-hash cache."""

    def __init__(self, settings: Settings, caption_model: str | None = None,
                 transcribe_model: str | None = None) -> None:
        self.settings = settings
        self.models = {"caption": caption_model, "transcribe": transcribe_model}
        self.cache: dict[tuple[str, str], tuple[str, str]] = {}
        self.clips: dict[tuple[str, int], tuple[list[tuple[float, bytes]], str | None, str]] = {}

    def prepare(self, att: Attachment, *, chat_model: str, has_vision: bool,
                frames: int = 0) -> None:
        """Decide how ``att`` enters the prompt for this chat model, bridging when needed.

        Args:
            att: the attachment (its ``used_as``/``by``/``text``/``frames`` are set).
            chat_model: the chat model's name (for messages; the frame captioner when it sees
                images and no --caption-model is given).
            has_vision: the chat model takes images.
            frames: for a video and a model that sees images, at most this many sampled
                frames enter natively (0: the video enters as timed captions).
        Raises:
            InputError: the bridge model failed on this file.
            ModelUnavailableError / NotAvailableError: no bridge model can be used.
        """
        if att.kind == "text" or att.used_as == "missing":
            return
        if att.kind == "image" and has_vision:
            att.used_as, att.by, att.text, att.cached = "native", None, None, False
            return
        att.frames = []
        if att.kind == "video" and has_vision and frames > 0:
            self._native_video(att, chat_model, frames)
            return
        task = TASK_OF[att.kind]
        key = (task, att.key)
        att.cached = key in self.cache
        if not att.cached:
            self.cache[key] = (self._video(att, chat_model, has_vision) if att.kind == "video"
                               else self._region(att, chat_model) if att.region is not None
                               else self._run(task, att, chat_model))
        att.by, att.text = self.cache[key]
        att.used_as = USED_AS[task]

    def _native_video(self, att: Attachment, chat_model: str, limit: int) -> None:
        """Sample up to ``limit`` frames (PNG, cached per hash) and transcribe the sound
        track; the attachment enters natively, its text the timed transcript notes."""
        key = (att.sha256, limit)
        att.cached = key in self.clips
        if not att.cached:
            self.clips[key] = self.frames(att, chat_model, limit)
        att.frames, att.by, att.text = self.clips[key]
        att.used_as = "native"

    def frames(self, att: Attachment, chat_model: str,
               limit: int) -> tuple[list[tuple[float, bytes]], str | None, str]:
        """A clip for a model that sees images: ``(frames as (seconds, PNG bytes), the
        transcribe model or None, timed notes without frame captions)``.

        Raises:
            InputError: not a readable video, no decodable frame, the transcribe model failed.
        """
        from mmcli.backends import frames as sampler
        from mmcli.images import DEFAULT_MAX_SIDE
        from mmcli.tasks.video import Evidence, Line, Transcript

        try:
            info = sampler.probe(att.data)
            if not info.has_video:
                raise sampler.no_video(info.has_audio)
            sampled = [(f.t, png(f.picture)) for f in sampler.sample(
                att.data, fps=VIDEO_FPS, max_frames=limit, max_side=DEFAULT_MAX_SIDE,
                name=att.name)]
        except InputError as exc:
            raise InputError(f"{att.name}: {exc.message}", hint=exc.hint) from None
        if not sampled:
            raise InputError(f"{att.name}: no frame of the clip could be decoded")
        by, heard = None, None
        if info.has_audio:
            record = self._run("transcribe", att, chat_model, whole=True)
            by = f"{record.model.name if record.model else self.models['transcribe']}" \
                 " (sound track)"
            heard = Transcript(record.transcript.strip(),
                               [Line(s.start, s.end, s.text.strip()) for s in record.segments])
        notes = Evidence(info.duration_s, [], [], "", heard, {}).notes()
        return sampled, by, notes

    def remember(self, kind: str, key: str, by: str, text: str) -> None:
        """Seed the cache (a loaded transcript brings its bridged texts back); ``key`` is
        ``Attachment.key``."""
        self.cache[(TASK_OF[kind], key)] = (by, text)

    def _region(self, att: Attachment, chat_model: str) -> tuple[str, str]:
        """A region for a model that cannot see: the caption model describes the marked crop
        with caption's region prompt (what ``mmcli caption --point`` asks)."""
        assert att.region is not None
        record = self._run("caption", att, chat_model, data=att.region.png,
                           prompt=att.region.instruction)
        by = record.model.name if record.model is not None else str(self.models["caption"])
        return by, record.text().strip()

    def _video(self, att: Attachment, chat_model: str, has_vision: bool) -> tuple[str, str]:
        """Timed notes of a clip: frame captions (by the chat model when it sees images, else
        the caption model) and the transcript; no merged caption (the chat model reads the
        notes itself)."""
        model = self.models["caption"] or (chat_model if has_vision else None)
        record = self._run("caption", att, chat_model, model=model, frames="each",
                           merge=False, transcribe_model=self.models["transcribe"])
        by = record.model.name if record.model is not None else str(model)
        heard = record.stages.get("transcribe")
        if heard is not None:
            by += f" and {heard.model} (sound track)"
        return by, record.notes

    def _run(self, task: str, att: Attachment, chat_model: str, *, model: str | None = None,
             whole: bool = False, data: bytes | None = None, **options: Any) -> Any:
        from mmcli import api

        why = ("video clips are described before they enter the chat" if att.kind == "video"
               else f"chat model '{chat_model}' cannot see images" if task == "caption"
               else "audio is transcribed before it enters the chat")
        try:
            source: str | bytes = data if data is not None else \
                att.path if att.path != "-" else att.data
            records = list(api.run(task, [source], model=model or self.models[task],
                                   settings=self.settings, **options))
        except (ImportError, KeyError):
            raise NotAvailableError(
                f"{att.name}: {why}, and the '{task}' task is not available in this version",
                hint="pick a vision-language chat model with --model" if task == "caption"
                else None)
        except MmcliError as exc:
            if isinstance(exc, InputError):
                raise
            raise type(exc)(f"{att.name}: {why}, and no {task} model is usable: {exc.message}",
                            hint=exc.hint)
        if not records:
            raise InputError(f"{att.name}: the {task} task returned nothing")
        record = records[0]
        if record.error is not None:
            raise InputError(f"{att.name}: {task} failed: {record.error.message}")
        if options or whole:
            return record
        by = record.model.name if record.model is not None else str(self.models[task])
        return by, record.text().strip()


def png(picture: Any) -> bytes:
    """PNG bytes of an ``mmcli.images.Picture`` (lossless: the model sees the sampled pixels)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (picture.width, picture.height), picture.rgb).save(
        out, format="PNG", compress_level=1)
    return out.getvalue()
