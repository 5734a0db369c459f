"""``mmcli doctor``: which engines import, what each ``--device`` gives them, the config."""

import json
from typing import Annotated

import typer

from mmcli.cli.common import settings_of


def doctor(ctx: typer.Context,
           as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
           ) -> None:
    """Python and engine versions, each engine's --device choices, manifest layers, cache."""
    from mmcli import diagnose  # imports engines on purpose; only this command pays for it

    report = diagnose.report(settings_of(ctx))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for line in diagnose.lines(report):
        typer.echo(line)
