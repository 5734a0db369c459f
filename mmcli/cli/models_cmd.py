"""``mmcli models list | pull | path | verify | rm``."""

import json
from typing import Annotated, Optional

import typer

from mmcli.cli.common import settings_of
from mmcli.errors import MmcliError, ModelUnavailableError, UsageError

# Imported inside each command: `mmcli --help` must not pay for the manifest machinery.
app = typer.Typer(help="List, download, locate, verify and remove models.", no_args_is_help=True,
                  rich_markup_mode=None)


@app.command("list")
def list_models(
    ctx: typer.Context,
    task: Annotated[Optional[str], typer.Option("--task", help="Only this task.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Every model of the manifest: tasks, engine, size, source, license, status, defaults."""
    settings = settings_of(ctx)
    from mmcli import manifest as manifest_mod
    from mmcli import modelstore

    manifest = manifest_mod.load(settings.models_file)
    if task is not None and task not in modelstore.TASKS:
        raise UsageError(f"unknown task '{task}'", hint=f"tasks: {', '.join(modelstore.TASKS)}")
    rows = modelstore.rows(manifest, task)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for line in modelstore.table(rows):
        typer.echo(line)


@app.command("pull")
def pull(ctx: typer.Context,
         names: Annotated[list[str], typer.Argument(help="Model names.")]) -> None:
    """Download models (hub or URL) into the cache and verify their sha256."""
    settings = settings_of(ctx)
    from mmcli import manifest as manifest_mod
    from mmcli import modelstore
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    entries = [find_entry(n, manifest) for n in names]
    failed: list[MmcliError] = []
    for entry in entries:
        try:
            files = modelstore.pull(entry, settings)
        except ModelUnavailableError as exc:
            if len(entries) == 1:
                raise
            failed.append(exc)
            from mmcli import console

            console.error(exc.message, exc.hint)
            continue
        for role, path in files.items():
            typer.echo(f"{entry.name}\t{role}\t{path}")
    if failed:
        raise ModelUnavailableError(f"{len(failed)} of {len(entries)} models failed to download")


@app.command("path")
def path(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Print the local file of each role (``role<TAB>path``), for scripts."""
    settings = settings_of(ctx)
    from mmcli import manifest as manifest_mod
    from mmcli import modelstore
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    files = modelstore.local_or_fail(find_entry(name, manifest))
    for role, p in files.items():
        typer.echo(f"{role}\t{p}")


@app.command("verify")
def verify(ctx: typer.Context,
           names: Annotated[Optional[list[str]], typer.Argument(
               help="Model names (default: every local model).")] = None) -> None:
    """Re-hash local model files against the manifest's sha256 (or the hub's LFS hash)."""
    settings = settings_of(ctx)
    from mmcli import manifest as manifest_mod
    from mmcli import modelstore
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    entries = [find_entry(n, manifest) for n in names] if names else \
        [e for _, e in sorted(manifest.models.items()) if modelstore.is_local(e)]
    bad = 0
    for entry in entries:
        for role, state, p in modelstore.verify(entry):
            typer.echo(f"{entry.name}\t{role}\t{state}\t{p}")
            bad += state not in ("ok", "no-hash")
    if bad:
        raise ModelUnavailableError(f"{bad} file(s) failed verification",
                                    hint="re-download with `mmcli models rm NAME` then "
                                         "`mmcli models pull NAME`")


@app.command("rm")
def rm(ctx: typer.Context,
       names: Annotated[list[str], typer.Argument(help="Model names.")]) -> None:
    """Remove cached downloads (never package or user-path models)."""
    settings = settings_of(ctx)
    from mmcli import manifest as manifest_mod
    from mmcli import modelstore
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    for name in names:
        for removed in modelstore.remove(find_entry(name, manifest)):
            typer.echo(f"removed {removed}")
