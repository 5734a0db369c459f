"""``mmcli caption`` and ``mmcli vqa``: thin commands over mmcli.tasks.caption / vqa."""

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mmcli.cli import common
from mmcli.cli.segment import parse_numbers

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
R = "Regions (SAM + VLM)"
PointOpt = Annotated[Optional[list[str]], typer.Option(
    "--point", metavar="X,Y", help="A region: the object at pixel X,Y, segmented by the "
    "segment model (repeatable: one output per region).", rich_help_panel=R)]
NegPointOpt = Annotated[Optional[list[str]], typer.Option(
    "--neg-point", metavar="X,Y", help="Exclude the area at X,Y from every region "
    "(repeatable).", rich_help_panel=R)]
BoxOpt = Annotated[Optional[list[str]], typer.Option(
    "--box", metavar="X1,Y1,X2,Y2", help="A region: the object in this box (repeatable).",
    rich_help_panel=R)]
SegmentModelOpt = Annotated[Optional[str], typer.Option(
    "--segment-model", help="Segment model for the regions (default: segment's).",
    rich_help_panel=R)]
RegionStyleOpt = Annotated[str, typer.Option(
    "--region-style", help="How the VLM sees the region in its crop: outline (red outline) | "
    "dim (background dimmed).", rich_help_panel=R)]
GpuLayersOpt = Annotated[Optional[int], typer.Option(
    "--gpu-layers", help="Layers to offload to the GPU (-1 = all; default from --device).",
    rich_help_panel=P)]


@dataclass
class VisionArgs:
    """The options caption and vqa share: generation, images, clips and regions
    (``vision_options`` adds them to a command)."""

    max_tokens: MaxTokensOpt = None
    temperature: TemperatureOpt = 0.0
    seed: SeedOpt = 0
    max_side: MaxSideOpt = None
    gpu_layers: GpuLayersOpt = None
    fps: FpsOpt = 0.5
    max_frames: MaxFramesOpt = 8
    frames: FramesOpt = "auto"
    scenes: ScenesOpt = False
    audio: AudioOpt = True
    transcribe_model: TranscribeModelOpt = None
    chat_model: ChatModelOpt = None
    point: PointOpt = None
    neg_point: NegPointOpt = None
    box: BoxOpt = None
    segment_model: SegmentModelOpt = None
    region_style: RegionStyleOpt = "outline"

    def options(self, cls: Any, **own: Any) -> Any:
        """The task's ``Options`` from these values plus the command's own (regions parsed)."""
        from mmcli.tasks.segment import BOX_FORM, POINT_FORM

        shared = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name not in ("point", "neg_point", "box")}
        options = cls(**shared, **own)
        options.points = [parse_numbers(p, 2, "--point", POINT_FORM) for p in self.point or []]
        options.neg_points = [parse_numbers(p, 2, "--neg-point", POINT_FORM)
                              for p in self.neg_point or []]
        options.boxes = [parse_numbers(b, 4, "--box", BOX_FORM) for b in self.box or []]
        return options


vision_options = common.grouped_options(VisionArgs, "vision")


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
    sheet: Annotated[bool, typer.Option(
        "--sheet", help="Also write clip.mp4.sheet.jpg: the sampled frames with their times "
        "(with --output-dir).", rich_help_panel=V)] = False,
    fmt: FormatOpt = "text",
    output: common.OutputOpt = None,
    vision: VisionArgs = VisionArgs(),
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Describe images and video clips with a vision-language model.

    mmcli caption photo.jpg; mmcli caption -d short -f jsonl photos/;
    mmcli caption photos/ --output-dir photos/ (writes photo.jpg.txt next to each photo).
    A clip (mp4, mov, mkv, webm, avi): sampled frames + its transcribed sound track, merged
    into one caption by the chat model. --point X,Y / --box: caption that region (segmented,
    cropped with context, marked); photo.jpg.r1.txt per region.
    """
    from mmcli.tasks.caption import Options

    options = vision.options(Options, detail=detail, prompt=prompt, sheet=sheet)
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
    fmt: FormatOpt = "text",
    output: common.OutputOpt = None,
    vision: VisionArgs = VisionArgs(),
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Answer questions about images: mmcli vqa photo.jpg -q "How many people?".

    Every -q is asked of every image (one record each); --questions FILE.jsonl pairs images
    with their own questions; --together asks about all images at once (one unit of work:
    --journal, --dry-run, --lock and --max-duration apply to it as to any input).
    --point X,Y / --box: ask about that region (photo.jpg.r1.q1.txt per region and question).
    """
    from mmcli.tasks import vqa as task

    options = vision.options(task.Options, questions=list(question or []), together=together)
    inputs = task.prepare(options, inputs, questions)
    common.run_batch(ctx, task="vqa", inputs=inputs, model=model, fmt=fmt, output=output,
                     batch=batch, options=options, mmproj=mmproj)


def register(app: typer.Typer) -> None:
    """Add caption and vqa to ``app``."""
    app.command("caption")(common.batch_options(vision_options(caption)))
    app.command("vqa")(common.batch_options(vision_options(vqa)))
