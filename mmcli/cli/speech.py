"""``mmcli transcribe`` and ``mmcli speak``: parse options, hand them to the batch driver."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from mmcli.cli import common
from mmcli.errors import UsageError

FormatOpt = Annotated[str, typer.Option(
    "--format", "-f", help="text | json | jsonl | srt | vtt | tsv | all (all: with --output-dir).")]
SpeakFormatOpt = Annotated[str, typer.Option(
    "--format", "-f", help="text (audio only) | json | jsonl (a record per output).")]
TextsArg = Annotated[Optional[list[str]], typer.Argument(
    help="Text to speak (words are joined); - or nothing reads standard input.",
    show_default=False)]


def transcribe(
    ctx: typer.Context,
    inputs: common.InputsArg = None,
    model: common.ModelOpt = None,
    fmt: FormatOpt = "text",
    language: Annotated[Optional[str], typer.Option(
        "--language", "-l", help="Language code (default: detect; en for .en models).")] = None,
    task: Annotated[str, typer.Option("--task", help="transcribe | translate (to English).")
                    ] = "transcribe",
    beam_size: Annotated[int, typer.Option("--beam-size", min=1, help="Beam width.")] = 5,
    vad: Annotated[bool, typer.Option(
        "--vad/--no-vad", help="Skip non-speech with Silero VAD (no hallucinated text on "
        "silence).")] = True,
    word_timestamps: Annotated[bool, typer.Option(
        "--word-timestamps", help="Add per-word start/end/probability to JSON.")] = False,
    initial_prompt: Annotated[Optional[str], typer.Option(
        "--initial-prompt", help="Text that primes the first window (names, spelling).")] = None,
    temperature: Annotated[float, typer.Option(
        "--temperature", min=0.0, max=1.0, help="Start temperature; falls back +0.2 up to 1.0 "
        "on repetitive or unlikely output.")] = 0.0,
    compute_type: Annotated[Optional[str], typer.Option(
        "--compute-type", help="auto | int8 | int8_float16 | float16 | float32 (default: the "
        "model's manifest option, else auto).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Inputs transcribed together (one batched encoder/beam "
        "search call for all); 1: one at a time. Same transcripts either way.")] = 8,
    output: common.OutputOpt = None,
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Transcribe (or translate) speech in audio and video files with faster-whisper."""
    from mmcli.tasks.transcribe import Options

    options = Options(language=language, task=task, beam_size=beam_size, vad=vad,
                      word_timestamps=word_timestamps, initial_prompt=initial_prompt,
                      temperature=temperature, compute_type=compute_type, batch_size=batch_size)
    common.run_batch(ctx, task="transcribe", inputs=inputs, model=model, fmt=fmt, output=output,
                     batch=batch, options=options)


def speak(
    ctx: typer.Context,
    texts: TextsArg = None,
    input_file: Annotated[Optional[list[Path]], typer.Option(
        "--input-file", "-i", help="Speak this text file (repeatable: one audio per file).",
        dir_okay=False)] = None,
    lines: Annotated[bool, typer.Option(
        "--lines", help="One audio per non-empty line (0001.wav, 0002.wav, … with --output-dir).")
    ] = False,
    model: Annotated[Optional[str], typer.Option(
        "--voice", "--model", "-m", help="Voice: manifest name or a piper .onnx path.",
        autocompletion=common.complete_model)] = None,
    speaker: Annotated[Optional[str], typer.Option(
        "--speaker", help="Speaker id or name (multi-speaker voices).")] = None,
    length_scale: Annotated[Optional[float], typer.Option(
        "--length-scale", min=0.05, help="Speed: > 1 slower, < 1 faster (voice default).")] = None,
    noise_scale: Annotated[Optional[float], typer.Option(
        "--noise-scale", min=0.0, help="Generator noise (voice default, usually 0.667).")] = None,
    noise_w: Annotated[Optional[float], typer.Option(
        "--noise-w", min=0.0, help="Phoneme width noise (voice default, usually 0.8).")] = None,
    sentence_silence: Annotated[float, typer.Option(
        "--sentence-silence", min=0.0, help="Seconds of silence between sentences.")] = 0.0,
    volume: Annotated[float, typer.Option("--volume", min=0.0, help="Volume multiplier.")] = 1.0,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, help="Noise seed: the same text, voice and seed give the same audio.")
    ] = 0,
    raw: Annotated[bool, typer.Option(
        "--raw", help="Stream 16-bit mono PCM to stdout sentence by sentence.")] = False,
    play: Annotated[bool, typer.Option(
        "--play", help="Play through aplay, paplay, afplay or ffplay.")] = False,
    fmt: SpeakFormatOpt = "text",
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the WAV here (atomically).", dir_okay=False)] = None,
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Speak text with a piper voice: WAV files, a WAV on a pipe, raw PCM, or the speakers."""
    from mmcli.tasks import speak as task

    items = task.text_items(texts or [], input_file or [], lines, common.stdin_stream())  # type: ignore[arg-type]
    sink = _sink(len(items), fmt, output, batch.output_dir, raw, play)
    options = task.Options(speaker=speaker, length_scale=length_scale, noise_scale=noise_scale,
                           noise_w=noise_w, sentence_silence=sentence_silence, volume=volume,
                           seed=seed, sink=sink, output=str(output) if output else None)
    common.run_batch(ctx, task="speak", inputs=None, items=items, model=model, fmt=fmt,
                     output=None, batch=batch, options=options)


def _sink(count: int, fmt: str, output: Path | None, output_dir: Path | None, raw: bool,
          play: bool) -> str:
    """Where speak's audio goes; conflicting choices are usage errors (exit 2)."""
    chosen = [name for name, on in (("-o", output), ("--output-dir", output_dir), ("--raw", raw),
                                    ("--play", play)) if on]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} cannot be used together")
    if output_dir is not None:
        return "files"
    if output is not None:
        if count > 1:
            raise UsageError("-o writes one audio file, but there are several texts",
                             hint="use --output-dir DIR for one WAV per text or line")
        if not output.parent.is_dir():
            raise UsageError(f"-o {output}: the folder {output.parent} does not exist")
        if output.suffix.lower() != ".wav":
            kind = output.suffix or "a file without extension"
            raise UsageError(f"-o {output}: speak writes WAV audio, not {kind}",
                             hint=f"name it {output.with_suffix('.wav').name} (convert later, "
                                  "e.g. ffmpeg -i speech.wav speech.mp3)")
        return "file"
    if play:
        return "play"
    if fmt != "text":
        raise UsageError(f"--format {fmt} prints records on stdout, so the audio needs a place",
                         hint="add -o FILE, --output-dir DIR or --play")
    if raw:
        return "raw"
    if count > 1:
        raise UsageError("one WAV on stdout cannot hold several texts",
                         hint="use --output-dir DIR, or --raw to stream them one after another")
    return "stdout"


def register(app: typer.Typer) -> None:
    """Add ``transcribe`` and ``speak`` to ``app``."""
    app.command("transcribe")(common.batch_options(transcribe))
    app.command("speak")(common.batch_options(speak))
