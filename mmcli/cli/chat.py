"""``mmcli chat``: one-shot, scripted or interactive chat with image, audio and text attachments."""

from typing import Annotated, Optional

import typer

from mmcli.cli.common import ModelOpt, check_format, settings_of

FORMATS = ("text", "json", "jsonl")


def chat(
    ctx: typer.Context,
    prompt: Annotated[Optional[str], typer.Argument(
        help="The message. Without it: piped stdin is the message, else a REPL on a terminal.",
        show_default=False)] = None,
    attach: Annotated[Optional[list[str]], typer.Option(
        "--attach", "-a", help="Attach a file (image, audio, text); repeatable.")] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s",
                                                  help="System prompt.")] = None,
    script: Annotated[Optional[str], typer.Option(
        "--script", metavar="FILE",
        help="Run FILE as a conversation: one message or /command per line (- = stdin).",
        show_default=False)] = None,
    model: ModelOpt = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1,
                                            help="Reply length cap (tokens).")] = 512,
    temperature: Annotated[float, typer.Option("--temperature", "-t", min=0.0,
                                               help="0 = deterministic.")] = 0.0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Sampling seed.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json | jsonl.")] = "text",
    caption_model: Annotated[Optional[str], typer.Option(
        "--caption-model", help="Describes images for a chat model that cannot see them.")
    ] = None,
    transcribe_model: Annotated[Optional[str], typer.Option(
        "--transcribe-model", help="Transcribes audio attachments.")] = None,
    max_text_kb: Annotated[int, typer.Option(
        "--max-text-kb", min=1, help="Size cap of one text attachment (KB).")] = 256,
    max_frames: Annotated[int, typer.Option(
        "--max-frames", min=0, help="Most frames of a video attachment a model that sees "
        "images gets as images (one per second; 0 = timed captions instead).")] = 4,
    segment_model: Annotated[Optional[str], typer.Option(
        "--segment-model", help="Segments the regions of /attach IMG --point X,Y (default: "
        "segment's).")] = None,
) -> None:
    """Chat with a local model; attach photos, voice memos and text files.

    `mmcli chat "question" -a photo.jpg`, `cat notes.md | mmcli chat "summarize"` (piped text is
    a document), `cat question.txt | mmcli chat` (all of stdin is one message; its /lines are
    text, never commands), `mmcli chat --script turns.txt` (one message or /command per line),
    or just `mmcli chat` for a REPL (/help inside). In the REPL or a script,
    `/attach photo.jpg --point X,Y` (or `--box X0,Y0,X1,Y1`, `--neg-point X,Y`) attaches that
    region of the image: segmented, cropped and marked as `caption --point` does.
    """
    from mmcli.chatkit.entry import run_chat
    from mmcli.chatkit.records import Options

    check_format(fmt, FORMATS)
    options = Options(prompt=prompt or "", system=system, max_tokens=max_tokens,
                      temperature=temperature, seed=seed, caption_model=caption_model,
                      transcribe_model=transcribe_model, max_text_kb=max_text_kb,
                      max_frames=max_frames, segment_model=segment_model)
    code = run_chat(settings_of(ctx), model, options, prompt, attach or [], fmt, script=script)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``chat`` to ``app``."""
    app.command("chat")(chat)
