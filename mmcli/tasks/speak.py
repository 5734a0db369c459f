"""Text to speech with piper: one ``SpeechRecord`` per text (an argument, a file or a line).

The task yields the audio as ``AudioChunk`` events (one per sentence, as synthesized); where it
goes is ``Options.sink``, carried out by the writer (``mmcli.sinks``): ``files`` (a WAV per text
under ``--output-dir``), ``file`` (``-o``: streamed into a temp file, renamed at the end),
``stdout`` (a WAV on a pipe), ``raw`` (16-bit PCM per sentence) or ``play`` (a system player).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mmcli import console, engines
from mmcli.enginetypes import TextToSpeechEngine
from mmcli.errors import InputError, UsageError
from mmcli.events import AudioChunk, Done, TaskEvent
from mmcli.inputs import InputItem, text_name
from mmcli.outputs import default_render
from mmcli.records import ErrorInfo, Record, ResolvedModel, Timings
from mmcli.settings import Settings
from mmcli.sinks import AudioTarget
from mmcli.tasks.base import Process, Sidecar, Task

# Options.sink -> the writer's audio target mode.
TARGETS = {"files": "sidecar", "file": "file", "stdout": "stdout", "raw": "raw", "play": "play"}


@dataclass
class SpeechRecord(Record):
    """One synthesized text. ``output`` is the file written (relative to --output-dir there)."""

    output: str | None = None
    voice: str = ""
    speaker: int | None = None
    sample_rate: int = 0
    duration_s: float = 0.0
    characters: int = 0
    sentences: int = 0
    seed: int = 0
    real_time_factor: float = 0.0


@dataclass
class Options:
    """``mmcli speak`` options (None = the voice's own default)."""

    speaker: str | None = None
    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w: float | None = None
    sentence_silence: float = 0.0
    volume: float = 1.0
    seed: int = 0
    sink: str = "files"
    output: str | None = None


def text_items(texts: list[str], input_files: list[Path], lines: bool,
               stdin: BinaryIO | None) -> list[InputItem]:
    """The texts to speak as batch items, in order.

    Arguments are one text (joined by spaces); ``-`` (or no text and no files) reads stdin;
    each ``--input-file`` is one text, or one text per non-empty line with ``lines``.

    Raises:
        UsageError: there is no text at all (exit 2).
    """
    sources: list[tuple[str, Path | None, str | None]] = []  # (display, path, text)
    if texts and texts != ["-"]:
        sources.append(("text", None, " ".join(texts)))
    elif texts == ["-"] or not input_files:
        if stdin is None or getattr(stdin, "isatty", lambda: False)():
            raise UsageError("no text to speak", hint='pass text: mmcli speak "Hello there"')
        try:
            sources.append(("-", None, _text_of(stdin.read(), "standard input")))
        except InputError as exc:
            raise UsageError(exc.message) from None
    sources += [(str(p), p, None) for p in input_files]
    items = _line_items(sources) if lines else [_whole(d, p, t) for d, p, t in sources]
    if not any(_has_text(i) for i in items):
        raise UsageError("no text to speak (the text is empty)",
                         hint='pass some words: mmcli speak "Hello there"')
    return items


def _text_of(data: bytes, name: str) -> str:
    """UTF-8 text, or an error saying the input is not text (a WAV given as a text file)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name} is not text: byte {exc.start} is not UTF-8 "
                         "(speak reads UTF-8 text files)") from None
    if "\x00" in text:
        raise InputError(f"{name} is not text: it holds NUL bytes (a binary file?)")
    return text


def _whole(display: str, path: Path | None, text: str | None) -> InputItem:
    if path is None:
        return InputItem(display=display, path=None, rel=Path(text_name((text or "").strip())),
                         data=(text or "").encode("utf-8"))
    error = None if path.is_file() else f"{path}: no such file"
    return InputItem(display=display, path=path, rel=Path(path.stem), error=error)


def _line_items(sources: list[tuple[str, Path | None, str | None]]) -> list[InputItem]:
    found: list[tuple[str, str]] = []
    for display, path, text in sources:
        if path is not None:
            try:
                text = _text_of(path.read_bytes(), str(path))
            except OSError as exc:
                raise UsageError(f"{path}: {exc.strerror or exc}") from None
            except InputError as exc:
                raise UsageError(exc.message) from None
        for number, line in enumerate((text or "").splitlines(), start=1):
            if line.strip():
                found.append((f"{display}:{number}", line.strip()))
    width = max(4, len(str(len(found))))
    # Numbered for narration order, named by the text so another script never reuses a name.
    return [InputItem(display=d, path=None, rel=Path(f"{n:0{width}d}-{text_name(t)}"),
                      data=t.encode("utf-8"))
            for n, (d, t) in enumerate(found, start=1)]


def _has_text(item: InputItem) -> bool:
    if item.error is not None:
        return True  # reported per input
    try:
        return bool(item.read_bytes().strip())
    except OSError:
        return True


def _config(engine: TextToSpeechEngine, options: Options) -> Any:
    from piper.config import SynthesisConfig

    return SynthesisConfig(speaker_id=engine.speaker_id(options.speaker),
                           length_scale=options.length_scale, noise_scale=options.noise_scale,
                           noise_w_scale=options.noise_w, volume=options.volume)


def _pcm(chunks: Iterator[Any], rate: int, options: Options,
         record: SpeechRecord) -> Iterator[AudioChunk]:
    """16-bit PCM per sentence, with ``--sentence-silence`` between sentences."""
    silence = b"\x00\x00" * int(round(options.sentence_silence * rate))
    yield AudioChunk(b"", rate)  # the sample rate is known even when no sentence comes
    frames = 0
    for chunk in chunks:
        if record.sentences and silence:
            frames += len(silence) // 2
            yield AudioChunk(silence, rate)
        record.sentences += 1
        pcm = chunk.audio_int16_bytes
        frames += len(pcm) // 2
        yield AudioChunk(pcm, rate)
    record.duration_s = frames / rate


class SpeakTask(Task[Options]):
    """``speak``: texts in, audio (and a ``SpeechRecord`` per text) out."""

    name = "speak"
    kinds = frozenset({"text"})
    stdin_bytes = False
    options_type = Options
    record_type = SpeechRecord

    def suffix(self, fmt: str) -> str:
        """The audio sidecar's suffix (``--skip-existing`` checks it)."""
        return ".wav"

    def files(self, record: Record, fmt: str) -> list[Sidecar]:
        """``--output-dir``: besides the WAV (from the audio events), the JSON record with
        ``--format json/jsonl``."""
        return [(".json", default_render(record, "json"))] if fmt in ("json", "jsonl") else []

    def audio(self, options: Options) -> AudioTarget:
        """Where the audio goes (the writer writes it)."""
        return AudioTarget(TARGETS[options.sink], options.output)

    def error_record(self, item: InputItem, info: ErrorInfo, model: ResolvedModel) -> Record:
        """The record of a text that failed."""
        return SpeechRecord(input=item.display, task="speak", model=model.info,
                            voice=model.name, error=info)

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        """``item -> AudioChunk… Done(SpeechRecord)``; loads the voice once, on the first item."""
        announced: list[bool] = []

        def process(item: InputItem) -> Iterator[TaskEvent]:
            engine: TextToSpeechEngine
            engine, load_s = engines.load(model, settings)
            text = _text_of(item.read_bytes(), item.display).strip()
            if not text:
                raise InputError("the text is empty")
            config = _config(engine, options)
            rate = engine.info.sample_rate
            if options.sink == "raw" and not announced:
                announced.append(True)
                console.info(f"raw audio: signed 16-bit little-endian mono PCM, {rate} Hz "
                             f"(e.g. | aplay -r {rate} -f S16_LE -t raw -)", quiet=settings.quiet)
            record = SpeechRecord(input=item.display, task="speak", model=model.info,
                                  device=engine.device, voice=model.name,
                                  speaker=config.speaker_id, sample_rate=rate,
                                  characters=len(text), seed=options.seed,
                                  output=_output_name(options, item))
            start = time.perf_counter()
            yield from _pcm(engine.synthesize(text, config, options.seed), rate, options, record)
            run_s = time.perf_counter() - start
            record.real_time_factor = run_s / record.duration_s if record.duration_s else 0.0
            record.timings = Timings(load_s=load_s, run_s=run_s)
            yield Done(record)

        return process


def _output_name(options: Options, item: InputItem) -> str | None:
    """What the record says was written: the -o path, ``-`` for stdout, the sidecar name."""
    if options.sink == "file":
        return options.output
    if options.sink in ("raw", "stdout"):
        return "-"
    if options.sink == "files":
        return f"{item.rel}.wav"
    return None


TASK = SpeakTask()
