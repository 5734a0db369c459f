"""Speech to text with faster-whisper: one ``TranscriptRecord`` per input.

Segments are decoded lazily and yielded as ``SegmentDone`` events the moment they are decoded
(the writer shows them live on a terminal), then the input's ``TranscriptRecord``.

Whisper invents words for audio without speech ("Thank you." for a 0.08 s clip), so each segment
is judged by Whisper's own scores before it is yielded (``is_silence``), audio shorter than a
syllable is not decoded at all, and an input left without speech gets an empty transcript and
one warning. Segment and word times never pass the input's duration.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mmcli import console, engines, journal, subtitles
from mmcli.enginetypes import SpeechToTextEngine
from mmcli.errors import InputError, UsageError
from mmcli.events import Done, Measured, SegmentDone, TaskEvent
from mmcli.inputs import InputItem
from mmcli.outputs import default_render
from mmcli.records import Record, ResolvedModel, Timings
from mmcli.settings import Settings
from mmcli.tasks.base import Process, Sidecar, Task
from mmcli.tasks.transcribe_batch import Notes, Steps

if TYPE_CHECKING:
    import numpy as np

    from mmcli.batch import Runner
    from mmcli.work import Work

SUFFIXES = {"text": ".txt", "json": ".json", "jsonl": ".json", "srt": ".srt", "vtt": ".vtt",
            "tsv": ".tsv"}

# openai-whisper's decoding thresholds (faster-whisper's defaults): a decode whose average token
# log-probability is below LOGPROB or whose text gzips better than COMPRESSION is retried at the
# next temperature; with no_speech_prob above NO_SPEECH as well, the window is silence.
LOGPROB = -1.0
COMPRESSION = 2.4
NO_SPEECH = 0.6
# Shorter than the shortest syllable (~0.1 s): nothing to recognize. tiny.en still reads "No."
# from the first 0.1 s of the word, and makes up "Thank you." from 0.08 s of a newsreel. The
# VAD does not help here: faster-whisper keeps speech chunks of any length (Silero's
# min_speech_duration_ms = 0) and pads them by 0.4 s, so one 32 ms window over its threshold
# turns a whole short clip into "speech".
MIN_SPEECH_S = 0.1
# --batch-size default: inputs transcribed together (bench/throughput.py; README Performance).
BATCH_SIZE = 8


@dataclass
class Word:
    """A word with its timing (``--word-timestamps``)."""

    start: float
    end: float
    word: str
    probability: float


@dataclass
class Segment:
    """A decoded segment: seconds from the start of the input, text and decoder scores."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    words: list[Word] | None = None


@dataclass
class TranscriptRecord(Record):
    """One input's transcript. JSON calls ``transcript`` ``text``."""

    language: str | None = None
    language_probability: float | None = None
    duration_s: float = 0.0
    transcript: str = ""
    segments: list[Segment] = field(default_factory=list)

    def text(self) -> str:
        """The whole transcript on one line."""
        return self.transcript

    def to_dict(self) -> dict[str, Any]:
        """Record JSON with the transcript under ``text`` (in declared field order)."""
        return {("text" if k == "transcript" else k): v for k, v in super().to_dict().items()}


@dataclass
class Options:
    """``mmcli transcribe`` options (defaults = CLI defaults)."""

    language: str | None = None
    task: str = "transcribe"
    beam_size: int = 5
    vad: bool = True
    word_timestamps: bool = False
    initial_prompt: str | None = None
    temperature: float = 0.0
    compute_type: str | None = None
    # Inputs whose CTranslate2 calls run together (1: one at a time). Each input's transcript
    # is the one sequential decoding gives (tests/test_transcribe_batch.py), so it is not part
    # of the journal key.
    batch_size: int = journal.not_in_key(BATCH_SIZE)


def temperatures(start: float) -> list[float]:
    """openai-whisper's fallback schedule: ``start`` then +0.2 up to 1.0."""
    steps = [round(start + 0.2 * i, 2) for i in range(6)]
    return [t for t in steps if t <= 1.0] or [start]


def engine_kwargs(options: Options) -> dict[str, Any]:
    """faster-whisper ``transcribe`` arguments for the options."""
    return {"language": options.language, "task": options.task, "beam_size": options.beam_size,
            "vad_filter": options.vad, "word_timestamps": options.word_timestamps,
            "initial_prompt": options.initial_prompt,
            "temperature": temperatures(options.temperature)}


def check(engine: SpeechToTextEngine, options: Options) -> None:
    """Options the model cannot honour are usage errors, not silent surprises."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # Whisper's language list

    if options.language is not None and options.language not in _LANGUAGE_CODES:
        close = difflib.get_close_matches(options.language, _LANGUAGE_CODES, n=3)
        raise UsageError(f"--language {options.language}: not a language Whisper knows",
                         hint=(f"did you mean {', '.join(close)}? " if close else "")
                         + "use a code such as en, de, fr, es, ja, zh (or leave it out to detect)")
    if not engine.multilingual(options.compute_type):
        if options.task == "translate":
            raise UsageError("--task translate needs a multilingual model; this is English-only",
                             hint="use e.g. --model small (not a .en model)")
        if options.language not in (None, "en"):
            raise UsageError(f"--language {options.language}: this model is English-only",
                             hint="use a multilingual model, e.g. --model small")


def _source(item: InputItem) -> Path | bytes:
    """The path (checked readable and non-empty) or the stdin bytes of an input."""
    if item.data is not None:
        if not item.data:
            raise InputError("standard input is empty")
        return item.data
    assert item.path is not None
    try:
        with item.path.open("rb") as fh:
            if not fh.read(1):
                raise InputError("file is empty")
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})") from None
    return item.path


def is_silence(seg: Any, last_temperature: float) -> bool:
    """True when Whisper's own scores say a decoded segment holds no speech.

    Two rules: openai-whisper's (``no_speech_prob`` > 0.6 and ``avg_logprob`` < -1.0), which
    faster-whisper applies only per 30 s window of its sequential pipeline and its batched
    pipeline never; and a failed fallback: the decode failed the log-probability or compression
    check at every temperature up to the last one, while the no-speech head rates silence more
    likely than speech (``no_speech_prob`` > 0.5). On tiny.en, whole spoken words (0.2 s and
    longer, alone or in sentences, with noise down to -5 dB SNR) met neither; words made up for
    0.08-0.25 s cuts of a newsreel often met one.

    Args:
        seg: a faster-whisper segment (``avg_logprob``, ``no_speech_prob``,
            ``compression_ratio``, ``temperature``).
        last_temperature: the last temperature of the fallback schedule.
    Returns:
        Whether to drop the segment.
    """
    unlikely = seg.avg_logprob < LOGPROB
    if unlikely and seg.no_speech_prob > NO_SPEECH:
        return True
    failed = unlikely or seg.compression_ratio > COMPRESSION
    exhausted = (seg.temperature or 0.0) >= last_temperature - 1e-6
    return failed and exhausted and seg.no_speech_prob > 0.5


def _segment(seg: Any, duration: float) -> Segment:
    """A record segment with its (and its words') times clamped to ``[0, duration]``.

    Whisper's timestamp tokens may point past the audio (the last cue of a 17.44 s file ends at
    18.04 s); subtitles, JSON and TSV all read these clamped times.
    """
    def clamp(t: float) -> float:
        return min(max(t, 0.0), duration)

    start = clamp(seg.start)
    words = None if seg.words is None else [
        Word(clamp(w.start), max(clamp(w.end), clamp(w.start)), w.word, w.probability)
        for w in seg.words]
    return Segment(seg.id, start, max(clamp(seg.end), start), seg.text, seg.avg_logprob,
                   seg.no_speech_prob, seg.temperature, words)


def _run(engine: Transcriber, audio: Any, options: Options, record: TranscriptRecord,
         settings: Settings, say: Callable[[str], None] = console.info
         ) -> Generator[TaskEvent, None, str | None]:
    """Decode, keep the segments with speech (each judged before it is yielded).

    Returns:
        Why the transcript is empty, or None when it is not.
    """
    segments, info = engine.transcribe(audio, options.compute_type, **engine_kwargs(options))
    record.language, record.language_probability = info.language, info.language_probability
    last_temperature = temperatures(options.temperature)[-1]
    dropped = 0
    for seg in segments:
        if is_silence(seg, last_temperature):
            dropped += 1
            if settings.verbose:
                say(f"{record.input}: segment {seg.id} dropped as silence "
                    f"(no_speech_prob {seg.no_speech_prob:.2f}, "
                    f"avg_logprob {seg.avg_logprob:.2f}): {seg.text.strip()!r}")
            continue
        segment = _segment(seg, record.duration_s)
        record.segments.append(segment)
        yield SegmentDone(segment.start, segment.end, segment.text)
    record.transcript = "".join(s.text for s in record.segments).strip()
    if record.transcript:
        return None
    if dropped:
        return "Whisper rated what it heard as silence"
    if options.vad and not info.duration_after_vad:
        return "voice activity detection found no speech"
    return "Whisper found no speech"


class Transcriber(Protocol):
    """What one input's transcription needs: the engine, or an input's place in a batch."""

    device: str

    def transcribe(self, audio: np.ndarray, compute_type: str | None,
                   **kwargs: Any) -> tuple[Iterator[Any], Any]:
        """``(lazy segments, info)`` as ``SpeechToTextEngine.transcribe``."""
        ...


def transcribe_one(engine: Transcriber, item: InputItem, audio: Callable[[], np.ndarray],
                   model: ResolvedModel, options: Options, notes: Notes,
                   load_s: float = 0.0) -> Iterator[TaskEvent]:
    """One input's events (``SegmentDone``…, ``Done(record)``), alone or in a batch.

    Args:
        engine: transcribes the samples.
        item: the input.
        audio: returns its 16 kHz samples (decodes now, or hands over what was decoded ahead).
        model: the resolved model (for the record).
        options: the task options.
        notes: where warnings go.
        load_s: model load time to report in this record.
    """
    start = time.perf_counter()
    samples = audio()
    decode_s = time.perf_counter() - start
    record = TranscriptRecord(input=item.display, task="transcribe", model=model.info,
                              device=engine.device, duration_s=len(samples) / 16000)
    yield Measured(record.duration_s)
    if record.duration_s >= MIN_SPEECH_S:
        why = yield from _run(engine, samples, options, record, notes.settings, notes.info)
    else:
        why = (f"{record.duration_s:.2f} s of audio is shorter than a syllable "
               f"({MIN_SPEECH_S} s)")
        record.language = options.language
    if why:
        notes.warn(f"{item.display}: empty transcript: {why}")
    record.timings = Timings(load_s=load_s, run_s=time.perf_counter() - start,
                             extra={"decode_audio_s": decode_s})
    yield Done(record)


def decode(engine: SpeechToTextEngine, item: InputItem) -> np.ndarray:
    """16 kHz samples of an input (``InputError`` when it is empty or unreadable)."""
    return engine.decode(_source(item))


class TranscribeTask(Task[Options]):
    """``transcribe``: audio and video in, a transcript (and subtitle formats) out."""

    name = "transcribe"
    kinds = frozenset({"audio", "video"})
    formats = ("text", "json", "jsonl", "srt", "vtt", "tsv", "all")
    options_type = Options
    record_type = TranscriptRecord

    def suffix(self, fmt: str) -> str:
        """Sidecar suffix for ``--output-dir`` (``all`` is checked by its ``.txt``)."""
        return SUFFIXES.get(fmt, ".txt")

    def render(self, record: Record, fmt: str) -> str:
        """Text of a record in one format."""
        assert isinstance(record, TranscriptRecord)
        if fmt in ("json", "jsonl") or not record.ok:
            return default_render(record, fmt)
        if fmt == "srt":
            return subtitles.srt(record.segments)
        if fmt == "vtt":
            return subtitles.vtt(record.segments)
        if fmt == "tsv":
            return subtitles.tsv(record.segments)
        return record.transcript + "\n"

    def files(self, record: Record, fmt: str) -> list[Sidecar]:
        """``--output-dir`` sidecars: one file, or every format for ``--format all``."""
        if fmt != "all":
            return [(self.suffix(fmt), self.render(record, fmt))]
        out: list[Sidecar] = [(".txt", self.render(record, "text")),
                              (".json", self.render(record, "json"))]
        out += [(f".{f}", self.render(record, f)) for f in ("srt", "vtt", "tsv")]
        return out

    def check(self, fmt: str, options: Options, *, output_dir: bool) -> None:
        """``--format all`` writes one file per format, so it needs ``--output-dir``."""
        if options.task not in ("transcribe", "translate"):
            raise UsageError(f"--task {options.task!r} is not transcribe or translate")
        if fmt == "all" and not output_dir:
            raise UsageError("--format all writes one file per format; it needs --output-dir")

    def processor(self, model: ResolvedModel, settings: Settings, options: Options) -> Process:
        """``item -> SegmentDone… Done(TranscriptRecord)``; loads the model on the first item."""

        def process(item: InputItem) -> Iterator[TaskEvent]:
            engine: SpeechToTextEngine
            engine, load_s = engines.load(model, settings)
            _, extra_load = engine.model(options.compute_type)
            check(engine, options)
            return transcribe_one(engine, item, lambda: decode(engine, item), model, options,
                                  Notes(settings), load_s + extra_load)

        return process

    def runner(self, work: Work) -> Runner | None:
        """``--batch-size N`` > 1: N inputs transcribed together (``transcribe_batch``)."""
        if work.options.batch_size <= 1:
            return None
        from mmcli.tasks import transcribe_batch

        return transcribe_batch.runner(work, Steps(check, decode, transcribe_one))


TASK = TranscribeTask()
