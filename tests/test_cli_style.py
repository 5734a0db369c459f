"""One CLI style: global options after the command, Click's usage errors in mmcli's error
format, and the models verbs suggested when typed without ``models``."""

from __future__ import annotations

import pytest

from mmcli.cli.app import app, hoist_globals


@pytest.mark.parametrize("argv,after", [
    (["transcribe", "--offline", "a.mp3"], ["--offline", "transcribe", "a.mp3"]),
    (["transcribe", "a.mp3", "--threads", "2", "-v"], ["--threads", "2", "-v", "transcribe",
                                                        "a.mp3"]),
    (["models", "list", "--models=x.toml"], ["--models=x.toml", "models", "list"]),
    (["vqa", "-q", "Who?", "x.png"], ["vqa", "-q", "Who?", "x.png"]),  # vqa's own -q stays
    (["transcribe", "--", "--offline"], ["transcribe", "--", "--offline"]),
    (["--offline", "speak", "hi"], ["--offline", "speak", "hi"]),
])
def test_global_options_after_the_command_move_before_it(argv, after) -> None:
    import typer

    group = typer.main.get_command(app)
    with group.make_context("mmcli", ["--help"], resilient_parsing=True) as ctx:
        assert hoist_globals(group, ctx, argv) == after


def test_global_option_after_the_command_takes_effect(cli, tmp_path) -> None:
    manifest = tmp_path / "m.toml"
    manifest.write_text('[models.mine]\nengine = "whisper"\ntasks = ["transcribe"]\n'
                        'license = "MIT"\nsize_mb = 1\npath = "/nonexistent"\ndescription = "d"\n'
                        'files = { model = "model.bin" }\n')
    r = cli("models", "list", "--models", str(manifest))
    assert r.exit_code == 0 and "mine" in r.stdout  # the global --models was honoured


@pytest.mark.parametrize("argv,message,hint", [
    (["pull", "smolvlm-256m"], "unknown command 'pull'", "`mmcli models pull`"),
    (["list"], "unknown command 'list'", "`mmcli models list`"),
    (["transcribe", "--threads", "-1", "a.mp3"], "--threads", "--help"),
    (["transcribe", "--no-such-flag"], "no such option: --no-such-flag",
     "`mmcli transcribe --help`"),
    (["--device", "gpu", "doctor"], "must be one of auto, cpu, cuda, metal", "--help"),
])
def test_every_usage_error_has_one_style(cli, argv, message, hint) -> None:
    r = cli(*argv)
    assert r.exit_code == 2
    first, second = r.stderr.splitlines()[:2]
    assert first.startswith("mmcli: error: ") and message in first
    assert second.startswith("hint: ") and hint in second
    assert "Usage:" not in r.stderr and r.stdout == ""


def _short_flags() -> dict[str, set[frozenset[str]]]:
    """short flag -> the long names of each option that has it, across every command."""
    import typer

    group = typer.main.get_command(app)
    found: dict[str, set[frozenset[str]]] = {}

    def walk(command, ctx) -> None:  # type: ignore[no-untyped-def]
        for param in getattr(command, "params", []):
            opts = list(getattr(param, "opts", []))
            longs = {o for o in opts if o.startswith("--")}
            for short in (o for o in opts if o.startswith("-") and not o.startswith("--")):
                found.setdefault(short, set()).add(frozenset(longs))
        for name in getattr(command, "list_commands", lambda c: [])(ctx):
            walk(command.get_command(ctx, name), ctx)

    with group.make_context("mmcli", ["--help"], resilient_parsing=True) as ctx:
        walk(group, ctx)
    return found


def test_each_short_flag_means_one_thing() -> None:
    """-p was --prompt in caption and --point in segment. The one exception: -q is the global
    --quiet and vqa's --question (a command's own option wins after the command name)."""
    flags = _short_flags()
    flags["-q"].discard(frozenset({"--question"}))
    clashes = {short: options for short, options in flags.items()
               if any(not a & b for a in options for b in options)}  # two unrelated options
    assert clashes == {}


@pytest.mark.parametrize("option,value", [("--pred-iou-thresh", "7"), ("--nms-thresh", "-1"),
                                          ("--stability-thresh", "1.5"),
                                          ("--points-per-side", "0")])
def test_segment_value_ranges(cli, option, value) -> None:
    r = cli("segment", "x.png", "--auto", option, value)
    assert r.exit_code == 2 and option in r.stderr and r.stderr.startswith("mmcli: error:")
