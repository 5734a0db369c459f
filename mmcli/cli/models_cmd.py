"""``mmcli models list | pull | path | verify | rm``: each a thin call into ``mmcli.hub``."""

import json
from typing import Annotated, Any, Optional

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
    from mmcli.engines import TASKS

    manifest = manifest_mod.load(settings.models_file)
    if task is not None and task not in TASKS:
        raise UsageError(f"unknown task '{task}'", hint=f"tasks: {', '.join(TASKS)}")
    rows = _rows(manifest, task)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for line in _table(rows):
        typer.echo(line)


def _rows(manifest: Any, task: Optional[str]) -> list[dict[str, Any]]:
    """One dict per model (the ``--json`` shape), sorted by name."""
    from mmcli import hub

    out = []
    for name, entry in sorted(manifest.models.items()):
        if task is not None and task not in entry.tasks:
            continue
        default_for = [t for t, names in manifest.defaults.items() if names and name in names]
        out.append({
            "name": name, "tasks": list(entry.tasks), "engine": entry.engine,
            "size_mb": entry.size_mb, "source": entry.source_label, "revision": entry.revision,
            "license": entry.license, "status": hub.status(entry), "description": entry.description,
            "default_for": sorted(default_for),
            "default_rank": {t: manifest.defaults[t].index(name) for t in default_for},
        })
    return out


def _table(items: list[dict[str, Any]]) -> list[str]:
    """Plain aligned columns (no Rich: ``models list`` must start fast and pipe cleanly)."""
    head = ("NAME", "TASKS", "ENGINE", "SIZE", "STATUS", "LICENSE", "DEFAULT", "SOURCE")
    body = []
    for r in items:
        default = ",".join(f"{t}#{r['default_rank'][t] + 1}" for t in r["default_for"])
        body.append((r["name"], ",".join(r["tasks"]), r["engine"], f"{r['size_mb']:.0f} MB",
                     r["status"], r["license"], default or "-", r["source"]))
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
            for row in [head, *body]]


@app.command("pull")
def pull(ctx: typer.Context,
         names: Annotated[list[str], typer.Argument(help="Model names.")]) -> None:
    """Download models (hub or URL) into the cache and verify their sha256."""
    settings = settings_of(ctx)
    from mmcli import console, hub
    from mmcli import manifest as manifest_mod
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    entries = [find_entry(n, manifest) for n in names]
    failed: list[MmcliError] = []
    for entry in entries:
        try:
            files = hub.ensure_local(entry, settings)
        except ModelUnavailableError as exc:
            if len(entries) == 1:
                raise
            failed.append(exc)
            console.error(exc.message, exc.hint)
            continue
        for role, path in files.items():
            typer.echo(f"{entry.name}\t{role}\t{path}")
    if failed:
        raise ModelUnavailableError(f"{len(failed)} of {len(entries)} models failed to download")


@app.command("path")
def path(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Print the local file of each role (``role<TAB>path``), for scripts. Never downloads."""
    settings = settings_of(ctx)
    from mmcli import hub
    from mmcli import manifest as manifest_mod
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    files = hub.ensure_local(find_entry(name, manifest), settings, download=False)
    for role, p in files.items():
        typer.echo(f"{role}\t{p}")


@app.command("verify")
def verify(ctx: typer.Context,
           names: Annotated[Optional[list[str]], typer.Argument(
               help="Model names (default: every local model).")] = None) -> None:
    """Re-hash local model files against the manifest's sha256 (or the hub's LFS hash)."""
    settings = settings_of(ctx)
    from mmcli import hub
    from mmcli import manifest as manifest_mod
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    entries = [find_entry(n, manifest) for n in names] if names else \
        [e for _, e in sorted(manifest.models.items()) if hub.is_local(e)]
    bad = 0
    for entry in entries:
        for role, state, p in hub.verify(entry):
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
    from mmcli import hub
    from mmcli import manifest as manifest_mod
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    for name in names:
        for removed in hub.remove(find_entry(name, manifest)):
            typer.echo(f"removed {removed}")
