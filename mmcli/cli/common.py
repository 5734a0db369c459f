"""Pieces every task command shares: option types, settings access, the batch driver.

A task command parses its own options, builds a processor with ``mmcli.tasks.<task>``, and
hands both to ``run_inputs`` - a screenful at most.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, get_type_hints

import typer

from mmcli.errors import UsageError
from mmcli.settings import Settings

if TYPE_CHECKING:  # imported lazily: --help must not pay for hashlib/glob
    from mmcli.inputs import InputItem

# Shared option types, so every task command spells them the same way.
InputsArg = Annotated[Optional[list[str]], typer.Argument(
    help="Files, folders, globs, or - (paths on stdin, or the media itself).", show_default=False)]


def complete_model(incomplete: str) -> list[str]:
    """Shell completion for --model: manifest names (paths complete as files in the shell)."""
    from mmcli import manifest

    try:
        return [n for n in manifest.load().models if n.startswith(incomplete)]
    except Exception:  # a broken user manifest must not break the shell
        return []


ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="Manifest name or a local model path (default: the task's default).",
    autocompletion=complete_model)]
OutputOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Write all output to this file (atomically).", dir_okay=False)]
def folder_path(text: str) -> Path:
    """``--output-dir``'s parser: an empty name is an error, not the current folder."""
    if not text.strip():
        raise typer.BadParameter("is empty; name a folder, e.g. --output-dir out/")
    return Path(text)


OutputDirOpt = Annotated[Optional[Path], typer.Option(
    "--output-dir", help="Write one sidecar per input under this folder.", parser=folder_path)]
SkipExistingOpt = Annotated[bool, typer.Option(
    "--skip-existing", help="Skip inputs whose output already exists (with --output-dir).")]
ShardOpt = Annotated[Optional[str], typer.Option(
    "--shard", help="Process only shard K of N (K/N, 0-based): split a corpus across runs.")]
# Batch-job options (journal, resume, lock, time budget): see mmcli.journal.
JournalOpt = Annotated[Optional[Path], typer.Option(
    "--journal", help="Job journal (default: DIR/.mmcli-journal.jsonl with --output-dir).",
    dir_okay=False, rich_help_panel="Batch jobs")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume/--no-resume", help="Skip inputs the journal lists as done (default).",
    rich_help_panel="Batch jobs")]
RetryFailedOpt = Annotated[bool, typer.Option(
    "--retry-failed", help="Re-run inputs the journal lists as failed.",
    rich_help_panel="Batch jobs")]
LockOpt = Annotated[Optional[Path], typer.Option(
    "--lock", help="Lock file; a second run exits 75 (default: beside the journal).",
    dir_okay=False, rich_help_panel="Batch jobs")]
MaxDurationOpt = Annotated[Optional[str], typer.Option(
    "--max-duration", help="Stop taking new inputs after this long (90s, 30m, 1h30m); exit 0.",
    rich_help_panel="Batch jobs")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="List what would be processed or skipped and the model; load nothing.",
    rich_help_panel="Batch jobs")]
HashInputsOpt = Annotated[bool, typer.Option(
    "--hash-inputs", help="Key the journal by content hash instead of path+size+mtime.",
    rich_help_panel="Batch jobs")]
# Where the inputs run: here one at a time, N engine instances here, or Ray workers.
JobsOpt = Annotated[int, typer.Option(
    "--jobs", "-j", min=1, help="Engine instances running inputs in parallel (--threads is "
    "the total, split between them).", rich_help_panel="Parallel")]
RayOpt = Annotated[Optional[str], typer.Option(
    "--ray", metavar="ADDRESS", help="Run the inputs on Ray workers: auto (RAY_ADDRESS or the "
    "running cluster), local (start one here) or ray://HOST:PORT. Needs mmcli[ray].",
    rich_help_panel="Parallel")]
RayWorkersOpt = Annotated[int, typer.Option(
    "--ray-workers", min=1, help="Ray actors, each loading the model once.",
    rich_help_panel="Parallel")]
RayCpusOpt = Annotated[float, typer.Option(
    "--ray-cpus", min=0.0, help="CPUs per Ray worker (its engine threads).",
    rich_help_panel="Parallel")]
RayGpusOpt = Annotated[float, typer.Option(
    "--ray-gpus", min=0.0, help="GPUs per Ray worker.", rich_help_panel="Parallel")]


@dataclass
class BatchArgs:
    """The options every batch command shares: sidecars, shard, and the batch-job options
    (journal, resume, lock, time budget, dry run). ``batch_options`` adds them to a command."""

    output_dir: OutputDirOpt = None
    skip_existing: SkipExistingOpt = False
    shard: ShardOpt = None
    journal: JournalOpt = None
    resume: ResumeOpt = True
    retry_failed: RetryFailedOpt = False
    lock: LockOpt = None
    max_duration: MaxDurationOpt = None
    dry_run: DryRunOpt = False
    hash_inputs: HashInputsOpt = False
    jobs: JobsOpt = 1
    ray: RayOpt = None
    ray_workers: RayWorkersOpt = 2
    ray_cpus: RayCpusOpt = 1.0
    ray_gpus: RayGpusOpt = 0.0

    @property
    def budget_s(self) -> float | None:
        """``--max-duration`` in seconds (a bad value is a usage error)."""
        from mmcli.journal import parse_duration

        return parse_duration(self.max_duration) if self.max_duration else None


def grouped_options(group: type, name: str) -> Callable[[Callable[..., None]],
                                                        Callable[..., None]]:
    """A decorator that gives a command the options of the dataclass ``group`` (fields
    annotated with ``typer.Option``) without listing them again.

    The command declares ``NAME: Group``; Typer sees the group's fields as options instead
    (through ``__signature__``), and each call gets them back as one ``group`` instance.
    """
    hints = get_type_hints(group, include_extras=True)  # the Annotated typer.Option(...)
    names = [f.name for f in fields(group)]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.name != name]
        shared = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                    annotation=hints[f.name]) for f in fields(group)]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            values = group(**{n: kwargs.pop(n) for n in names})
            command(*args, **{name: values}, **kwargs)

        wrapper.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
        return wrapper

    return decorate


# The sidecar/shard/journal/lock options, for every batch command.
batch_options = grouped_options(BatchArgs, "batch")


def settings_of(ctx: typer.Context) -> Settings:
    """The global settings the root callback stored (a default Settings in library use)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings.from_env()


# -o's extension -> the format it implies when --format is not given.
FORMAT_OF_SUFFIX = {".txt": "text", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
                    ".srt": "srt", ".vtt": "vtt", ".tsv": "tsv"}


def format_for(ctx: typer.Context, fmt: str, output: Path | None,
               allowed: tuple[str, ...]) -> str:
    """``--format`` as given, else what ``-o``'s extension says (``-o talk.srt`` writes SRT)."""
    source = ctx.get_parameter_source("fmt")
    if output is None or source is None or source.name != "DEFAULT":
        return fmt
    implied = FORMAT_OF_SUFFIX.get(output.suffix.lower())
    return implied if implied in allowed else fmt


def check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    """Validate ``--format`` against the task's formats (usage error, exit 2)."""
    if fmt not in allowed:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(allowed)}")
    return fmt


def stdin_stream() -> object:
    """The binary stdin (a test runner may give a text wrapper without .buffer)."""
    return getattr(sys.stdin, "buffer", sys.stdin)


def run_batch(ctx: typer.Context, *, task: str, inputs: list[str] | None, model: str | None,
              fmt: str, output: Path | None, batch: BatchArgs, options: object,
              mmproj: Path | None = None, decoder: Path | None = None,
              items: list[InputItem] | None = None) -> None:
    """The whole life of a batch command: resolve the model, discover inputs, stream records.

    Exits with the batch's exit code (0 all ok, 1 some failed). Errors that concern the whole
    run (model unavailable, usage, lock held) propagate as MmcliError to the app's error path.
    """
    from mmcli import batch as batch_mod
    from mmcli import inputs as inputs_mod
    from mmcli import manifest, resolve, runners, tasks
    from mmcli.journal import JOURNAL_NAME, LOCK_NAME, JobLock, Journal, options_hash
    from mmcli.outputs import Writer
    from mmcli.work import Work

    settings = settings_of(ctx)
    output_dir = batch.output_dir
    spec = tasks.get(task)
    fmt = format_for(ctx, fmt, output, spec.formats)
    check_format(fmt, spec.formats)
    spec.check(fmt, options, output_dir=output_dir is not None)
    if not inputs and not items:
        raise UsageError(f"no inputs given to 'mmcli {task}'",
                         hint=f"pass files, folders, globs or - ; see `mmcli {task} --help`")
    if batch.skip_existing and output_dir is None:
        raise UsageError("--skip-existing needs --output-dir")
    budget = batch.budget_s
    shard = inputs_mod.parse_shard(batch.shard)
    if items is None:
        items = inputs_mod.discover(inputs or [], set(spec.kinds), stdin=stdin_stream(),  # type: ignore[arg-type]
                                    stdin_bytes=spec.stdin_bytes, shard=shard)
    else:  # pre-built by the command (speak's texts and lines): same shard rule
        items = [i for i in items if inputs_mod.in_shard(i.display, shard)]
    if not items:  # every input belongs to other shards: this shard has nothing to do
        from mmcli import console

        console.info(f"shard {batch.shard} holds none of the inputs: nothing to do",
                     quiet=settings.quiet)
    many = len(items) > 1 or len(inputs or []) > 1
    items = spec.group(items, options)
    if output_dir is not None:
        inputs_mod.mark_collisions(items)  # one sidecar per input: never overwrite another's
    journal_path = batch.journal or (output_dir / JOURNAL_NAME if output_dir else None)
    lock_path = batch.lock or (journal_path.parent / LOCK_NAME if journal_path else None)
    check_destinations(output, output_dir, batch.journal, batch.lock)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)  # the named folder itself, nothing else
    loaded = manifest.load(settings.models_file)
    opt_hash = options_hash(options, fmt)
    with JobLock(lock_path) if lock_path else _nolock():
        journal = Journal.open(journal_path) if journal_path else None
        if journal is not None and not batch.resume:
            journal.state.clear()  # --no-resume: redo everything, keep appending
        if batch.dry_run:
            _dry_run(items, resolve.plan(model, task, loaded), journal, batch, opt_hash)
            raise typer.Exit(0)
        # Before the model: a refused destination (WAV to a terminal) costs no load.
        writer = Writer(fmt, spec.render, output=output, output_dir=output_dir,
                        suffix=spec.skip_suffix(fmt, options), many=many,
                        files=spec.files, audio=spec.audio(options))
        resolved = resolve.resolve(model, task, loaded, settings, mmproj=mmproj, decoder=decoder)
        mid = resolve.model_id(resolved.info)
        key = (lambda item: item_key(item, mid, opt_hash, batch.hash_inputs))  # noqa: E731
        runner = runners.choose(Work.of(task, resolved, settings, options), batch)
        # SIGTERM raises Terminated here (installed by the app for the whole command).
        summary = batch_mod.run(
            items, runner, writer, settings, skip_existing=batch.skip_existing,
            title=f"{task} {resolved.name}",
            job=batch_mod.Job(journal=journal, key=key if journal else None,
                              budget_s=budget, retry_failed=batch.retry_failed))
    raise typer.Exit(int(summary.exit_code))


def check_destinations(output: Path | None, output_dir: Path | None, journal: Path | None,
                       lock: Path | None) -> None:
    """Before any work: every place mmcli will write can exist. ``-o``, ``--journal`` and
    ``--lock`` need an existing parent folder (mmcli creates no folders you did not name);
    ``--output-dir`` must not be a file. All are usage errors (exit 2)."""
    if output_dir is not None:
        if output_dir.exists() and not output_dir.is_dir():
            raise UsageError(f"--output-dir {output_dir} is a file, not a folder")
    for flag, path in (("-o", output), ("--journal", journal), ("--lock", lock)):
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"{flag} {path} is a folder; it takes a file name")
        parent = path.parent
        if not parent.is_dir():
            what = "is a file, not a folder" if parent.exists() else "does not exist"
            raise UsageError(f"{flag} {path}: the folder {parent} {what}",
                             hint=f"create it first (mkdir -p {parent}) or pick another path")


def _dry_run(items: list, planned: tuple, journal: object, job: BatchArgs,
             opt_hash: str) -> None:
    """Print what a run would do, without loading (or downloading) any model."""
    from mmcli.resolve import model_id

    info, state, size_mb = planned
    extra = f" (download ~{size_mb:.0f} MB)" if state == "not downloaded" else ""
    typer.echo(f"model\t{info.name}\t{state}{extra}")
    for item in items:
        verdict = "process"
        if item.error is not None:
            verdict = "error"
        elif journal is not None:
            status = journal.status(item_key(item, model_id(info), opt_hash,  # type: ignore[attr-defined]
                                             job.hash_inputs))
            if status == "done" or (status == "failed" and not job.retry_failed):
                verdict = f"skip ({status})"
        typer.echo(f"{verdict}\t{item.display}")


def item_key(item: InputItem, model_id: str, opt_hash: str, hash_inputs: bool) -> str:
    """The journal key of an item. Content without a path (stdin bytes, speak's lines) also
    keys on its output name, so two equal lines are still two outputs."""
    from mmcli.journal import input_key

    mid = model_id if item.path is not None else f"{model_id}|{item.rel}"
    return input_key(item, mid, opt_hash, hash_inputs)


class _nolock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
