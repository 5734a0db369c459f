"""Library use without the CLI: the same code path as the commands.

    from mmcli import api
    for record in api.run("transcribe", ["talk.mp3"]):
        print(record.to_dict())

``api.stream`` yields every event (text deltas, transcript segments, audio chunks) as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from mmcli import batch, inputs, manifest, resolve, tasks
from mmcli.errors import UsageError
from mmcli.events import AudioChunk, Done, TaskEvent
from mmcli.records import Record, ResolvedModel
from mmcli.settings import Settings


def load_model(task: str, model: str | None = None, settings: Settings | None = None,
               models_file: Path | None = None) -> ResolvedModel:
    """Resolve ``model`` (a name, a path, or None for the task default) to local files."""
    settings = settings or Settings.from_env(models_file=models_file)
    return resolve.resolve(model, task, manifest.load(settings.models_file), settings)


def stream(task: str, sources: list[str | Path | bytes],
           model: str | ResolvedModel | None = None, *, settings: Settings | None = None,
           **options: Any) -> Iterator[TaskEvent]:
    """Run ``task`` on paths (files, folders, globs) or raw bytes; yield its events.

    Args:
        task: caption, vqa, transcribe, speak, segment or chat.
        sources: paths or bytes (bytes are treated like media piped on stdin).
        model: a manifest name, a local model path, a ResolvedModel, or None (the default).
        settings: global settings (offline, device, threads); default from the environment.
        **options: fields of the task's ``Options`` dataclass.
    Returns:
        ``mmcli.events`` events per input, each input's ending in ``Done(record)``; failed
        inputs are records with ``error`` set.
    Raises:
        UsageError: an unknown task or option.
    """
    settings = settings or Settings.from_env()
    if task not in tasks.NAMES:
        raise UsageError(f"unknown task {task!r}", hint=f"one of {', '.join(tasks.NAMES)}")
    spec = tasks.get(task)
    unknown = set(options) - {f.name for f in fields(spec.options_type)}  # type: ignore[arg-type]
    if unknown:
        raise UsageError(f"unknown option(s) for {task}: {', '.join(sorted(unknown))}")
    opts = spec.options_type(**options)
    resolved = model if isinstance(model, ResolvedModel) else load_model(task, model, settings)
    process = spec.processor(resolved, settings, opts)
    items: list[inputs.InputItem] = []
    for src in sources:
        if isinstance(src, bytes):
            items.append(inputs.InputItem(display="<bytes>", path=None, rel=Path("bytes"),
                                          data=src))
        else:
            items.extend(inputs.discover([str(src)], set(spec.kinds)))
    for item in spec.group(items, opts):
        yield from batch.guarded(item, process,
                                 lambda it, info: spec.error_record(it, info, resolved))


def run(task: str, sources: list[str | Path | bytes], model: str | ResolvedModel | None = None,
        *, settings: Settings | None = None, **options: Any) -> Iterator[Record]:
    """Like ``stream``, but only the records (one per input, or per question for vqa)."""
    for event in stream(task, sources, model, settings=settings, **options):
        if isinstance(event, Done):
            yield event.record


def speak(text: str, model: str | ResolvedModel | None = None, *,
          settings: Settings | None = None, **options: Any) -> tuple[Record, bytes]:
    """Speak one text: its ``SpeechRecord`` and the WAV bytes (``b""`` when it failed)."""
    from mmcli.audio import wav_bytes

    pcm: list[bytes] = []
    rate, record = 0, None
    for event in stream("speak", [text.encode("utf-8")], model, settings=settings, **options):
        if isinstance(event, AudioChunk):
            pcm.append(event.pcm)
            rate = event.sample_rate
        elif isinstance(event, Done):
            record = event.record
    assert record is not None  # every input ends in a Done record
    return record, (wav_bytes(b"".join(pcm), rate) if record.ok and rate else b"")


__all__ = ["run", "stream", "speak", "load_model"]
