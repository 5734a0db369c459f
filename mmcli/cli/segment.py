"""``mmcli segment``: Segment-Anything masks (thin: parse options, hand off to run_batch)."""

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from mmcli.cli import common
from mmcli.errors import UsageError

PANEL = "Automatic masks (--auto)"


def parse_numbers(text: str, count: int, flag: str, form: str) -> tuple[float, ...]:
    """``"320,240"`` -> ``(320.0, 240.0)``; anything else is a usage error showing ``form``."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise UsageError(f"{flag} {text!r} is not {form}",
                         hint=f"e.g. {flag} {'320,240' if count == 2 else '100,80,420,360'}")
    return values


def segment(
    ctx: typer.Context,
    inputs: common.InputsArg = None,
    point: Annotated[Optional[list[str]], typer.Option(
        "--point", metavar="X,Y",
        help="Positive click X,Y in pixels (repeatable: one object).")] = None,
    neg_point: Annotated[Optional[list[str]], typer.Option(
        "--neg-point", metavar="X,Y",
        help="Negative click X,Y: exclude this area (repeatable).")] = None,
    box: Annotated[Optional[list[str]], typer.Option(
        "--box", metavar="X1,Y1,X2,Y2",
        help="Box X1,Y1,X2,Y2 in pixels; several boxes = several objects.")] = None,
    multimask: Annotated[bool, typer.Option(
        "--multimask", help="Return every candidate mask with its score, best first.")] = False,
    auto: Annotated[bool, typer.Option(
        "--auto", help="Masks for everything (point grid, filtering, NMS).",
        rich_help_panel=PANEL)] = False,
    points_per_side: Annotated[int, typer.Option(
        "--points-per-side", min=1, max=128, help="Grid size for --auto (n x n points).",
        rich_help_panel=PANEL)] = 16,
    pred_iou_thresh: Annotated[float, typer.Option(
        "--pred-iou-thresh", min=0.0, max=1.0,
        help="Drop --auto masks below this predicted IoU (0-1).",
        rich_help_panel=PANEL)] = 0.88,
    stability_thresh: Annotated[float, typer.Option(
        "--stability-thresh", min=0.0, max=1.0,
        help="Drop --auto masks below this stability score (0-1).",
        rich_help_panel=PANEL)] = 0.95,
    nms_thresh: Annotated[float, typer.Option(
        "--nms-thresh", min=0.0, max=1.0,
        help="Box IoU above which --auto keeps only the better mask (0-1).",
        rich_help_panel=PANEL)] = 0.7,
    min_area: Annotated[int, typer.Option(
        "--min-area", min=0, help="Drop --auto masks smaller than this many pixels.",
        rich_help_panel=PANEL)] = 0,
    label: Annotated[bool, typer.Option(
        "--label", help="Name every mask with a vision model (short noun phrase: JSON "
        "`label`, drawn on the overlay).")] = False,
    label_model: Annotated[Optional[str], typer.Option(
        "--label-model", help="Vision model for --label (default: caption's).")] = None,
    overlay: Annotated[bool, typer.Option(
        "--overlay", help="Also write NAME.overlay.png (needs --output-dir).")] = False,
    embeddings_cache: Annotated[Optional[Path], typer.Option(
        "--embeddings-cache", help="Keep image embeddings here: new prompts skip the encoder.",
        file_okay=False)] = None,
    model: common.ModelOpt = None,
    decoder: Annotated[Optional[Path], typer.Option(
        "--decoder", help="Mask decoder .onnx when --model is an encoder .onnx path.",
        dir_okay=False)] = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="text | json | jsonl | png (mask PNGs) | polygon.")] = "text",
    output: common.OutputOpt = None,
    batch: common.BatchArgs = common.BatchArgs(),
) -> None:
    """Segment images with Segment Anything: click points, boxes, or --auto for everything.

    Coordinates are pixels of the original image. Masks come out as COCO RLE in JSON, as
    8-bit PNGs (--format png --output-dir DIR), as polygons, and as an --overlay picture.
    """
    from mmcli.tasks.segment import BOX_FORM, POINT_FORM, Options

    options = Options(
        points=[parse_numbers(p, 2, "--point", POINT_FORM) for p in point or []],  # type: ignore[misc]
        neg_points=[parse_numbers(p, 2, "--neg-point", POINT_FORM)  # type: ignore[misc]
                    for p in neg_point or []],
        boxes=[parse_numbers(b, 4, "--box", BOX_FORM) for b in box or []],  # type: ignore[misc]
        multimask=multimask, auto=auto, points_per_side=points_per_side,
        pred_iou_thresh=pred_iou_thresh, stability_thresh=stability_thresh,
        nms_thresh=nms_thresh, min_area=min_area, overlay=overlay, polygons=fmt == "polygon",
        label=label, label_model=label_model,
        embeddings_cache=str(embeddings_cache) if embeddings_cache else None)
    common.run_batch(ctx, task="segment", inputs=inputs, model=model, fmt=fmt, output=output,
                     batch=batch, options=options, decoder=decoder)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("segment")(common.batch_options(segment))
