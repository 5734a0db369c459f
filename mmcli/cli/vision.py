"""``mmcli caption`` and ``mmcli vqa``: thin commands over mmcli.tasks.caption / vqa."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from mmcli.cli import common

P = "Model"  # help panels
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="text | json | jsonl.")]
MmprojOpt = Annotated[Optional[Path], typer.Option(
    "--mmproj", help="Vision projector GGUF, with --model FILE.gguf.", dir_okay=False,
    rich_help_panel=P)]
MaxTokensOpt = Annotated[Optional[int], typer.Option(
    "--max-tokens", min=1, help="Cap on generated tokens (default: the preset's).")]
TemperatureOpt = Annotated[float, typer.Option(
    "--temperature", min=0.0, help="0 = greedy, reproducible (default).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Sampling seed (with --temperature > 0).")]
MaxSideOpt = Annotated[Optional[int], typer.Option(
    "--max-side", min=0, help="Downsize images so the long side is at most this many pixels "
    "(default: the model's, 1024; 0 = never).")]
V = "Video clips"
FpsOpt = Annotated[float, typer.Option(
    "--fps", help="Frames to sample per second of clip (capped by --max-frames).",
    rich_help_panel=V)]
MaxFramesOpt = Annotated[int, typer.Option(
    "--max-frames", min=1, help="Most frames sampled per clip, evenly spread.", rich_help_panel=V)]
FramesOpt = Annotated[str, typer.Option(
    "--frames", help="together (one prompt) | each (one by one) | auto (together when they "
    "fit the model's context).", rich_help_panel=V)]
ScenesOpt = Annotated[bool, typer.Option(
    "--scenes", help="Pick frames at scene changes (up to --max-frames; decodes the whole "
    "clip) instead of evenly spread.", rich_help_panel=V)]
AudioOpt = Annotated[bool, typer.Option(
    "--audio/--no-audio", help="Transcribe the clip's sound track (when it has one).",
    rich_help_panel=V)]
TranscribeModelOpt = Annotated[Optional[str], typer.Option(
    "--transcribe-model", help="Model for a clip's sound track (default: transcribe's).",
    rich_help_panel=V)]
ChatModelOpt = Annotated[Optional[str], typer.Option(
    "--chat-model", help="Text model that merges frames and transcript (default: chat's).",
    rich_help_panel=V)]
GpuLayersOpt = Annotated[Optional[int], typer.Option(
    "--gpu-layers", help="Layers to offload to the GPU (-1 = all; default from --device).",
    rich_help_panel=P)]


def caption(
    ctx: typer.Context,
    inputs: common.InputsArg = None,
    model: common.ModelOpt = None,
    mmproj: MmprojOpt = None,
    detail: Annotated[str, typer.Option(
        "--detail", "-d", help="short (one sentence) | normal (a few) | detailed (a paragraph).")
    ] = "normal",
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", "-p", help="Your own instruction instead of a --detail preset.")] = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = 0.0,
    seed: SeedOpt = 0,
    max_side: MaxSideOpt = None,
    gpu_layers: GpuLayersOpt = None,
    fps: FpsOpt = 0.5,
    max_frames: MaxFramesOpt = 8,
    frames: FramesOpt = "auto",
    scenes: ScenesOpt = False,
    audio: AudioOpt = True,
    sheet: Annotated[bool, typer.Option(
        "--sheet", help="Also write clip.mp4.sheet.jpg: the sampled frames with their times "
        "(with --output-dir).", rich_help_panel=V)] = False,
    transcribe_model: TranscribeModelOpt = None,
    chat_model: ChatModelOpt = None,
    fmt: FormatOpt = "text",
    output: common.OutputOpt = None,
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Describe images and video clips with a vision-language model.

    mmcli caption photo.jpg; mmcli caption -d short -f jsonl photos/;
    mmcli caption photos/ --output-dir photos/ (writes photo.jpg.txt next to each photo).
    A clip (mp4, mov, mkv, webm, avi): sampled frames + its transcribed sound track, merged
    into one caption by the chat model.
    """
    from mmcli.tasks.caption import Options

    options = Options(detail=detail, prompt=prompt, max_tokens=max_tokens,
                      temperature=temperature, seed=seed, max_side=max_side,
                      gpu_layers=gpu_layers, fps=fps, max_frames=max_frames, frames=frames,
                      scenes=scenes, audio=audio, sheet=sheet, transcribe_model=transcribe_model,
                      chat_model=chat_model)
    common.run_batch(ctx, task="caption", inputs=inputs, model=model, fmt=fmt, output=output,
                     batch=batch, options=options, mmproj=mmproj)


def vqa(
    ctx: typer.Context,
    inputs: common.InputsArg = None,
    question: Annotated[Optional[list[str]], typer.Option(
        "--question", "-q", help="A question (repeatable): each is asked of every image.")
    ] = None,
    questions: Annotated[Optional[Path], typer.Option(
        "--questions", help='JSON Lines of {"image": PATH, "question": TEXT} (paths relative '
        "to the file's folder).", dir_okay=False)] = None,
    together: Annotated[bool, typer.Option(
        "--together", help="Send all images in one prompt (comparison questions).")] = False,
    model: common.ModelOpt = None,
    mmproj: MmprojOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = 0.0,
    seed: SeedOpt = 0,
    max_side: MaxSideOpt = None,
    gpu_layers: GpuLayersOpt = None,
    fps: FpsOpt = 0.5,
    max_frames: MaxFramesOpt = 8,
    frames: FramesOpt = "auto",
    scenes: ScenesOpt = False,
    audio: AudioOpt = True,
    transcribe_model: TranscribeModelOpt = None,
    chat_model: ChatModelOpt = None,
    fmt: FormatOpt = "text",
    output: common.OutputOpt = None,
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Answer questions about images: mmcli vqa photo.jpg -q "How many people?".

    Every -q is asked of every image (one record each); --questions FILE.jsonl pairs images
    with their own questions; --together asks about all images at once (one unit of work:
    --journal, --dry-run, --lock and --max-duration apply to it as to any input).
    """
    from mmcli.tasks import vqa as task

    options = task.Options(questions=list(question or []), max_tokens=max_tokens,
                           temperature=temperature, seed=seed, max_side=max_side,
                           gpu_layers=gpu_layers, together=together, fps=fps,
                           max_frames=max_frames, frames=frames, scenes=scenes, audio=audio,
                           transcribe_model=transcribe_model, chat_model=chat_model)
    inputs = task.prepare(options, inputs, questions)
    common.run_batch(ctx, task="vqa", inputs=inputs, model=model, fmt=fmt, output=output,
                     batch=batch, options=options, mmproj=mmproj)


def register(app: typer.Typer) -> None:
    """Add caption and vqa to ``app``."""
    app.command("caption")(common.batch_options(caption))
    app.command("vqa")(common.batch_options(vqa))
