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


# Options named in mmcli's messages that belong to other programs (or to click itself).
FOREIGN_OPTIONS = {"--help": "click", "--force-reinstall": "pip", "--no-cache-dir": "pip",
                   "--use-preprocess": "samexporter (how to export a SAM model)",
                   "--head": "ray start (how to start a Ray cluster)"}


def test_every_option_a_message_names_exists() -> None:
    """Hints must be true: segment's error once suggested --points-per-batch, which no command
    has. Every `--option` in a string of mmcli's code is an option of some command."""
    import ast
    import re

    import typer

    from tests.conftest import REPO

    group = typer.main.get_command(app)
    defined: set[str] = set()

    def walk(command, ctx) -> None:  # type: ignore[no-untyped-def]
        for param in getattr(command, "params", []):
            defined.update(getattr(param, "opts", []) + getattr(param, "secondary_opts", []))
        for name in getattr(command, "list_commands", lambda c: [])(ctx):
            walk(command.get_command(ctx, name), ctx)

    with group.make_context("mmcli", ["--help"], resilient_parsing=True) as ctx:
        walk(group, ctx)
    named: dict[str, str] = {}
    for path in (REPO / "mmcli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", node.value):
                    named.setdefault(option, str(path.relative_to(REPO)))
    missing = {o: where for o, where in named.items()
               if o not in defined and o not in FOREIGN_OPTIONS}
    assert missing == {}


def test_a_model_for_another_task_suggests_installed_models_first(cli) -> None:
    r = cli("--offline", "transcribe", "--model", "smollm2-135m", "x.wav")
    assert r.exit_code == 2
    hint = r.stderr.splitlines()[1]
    assert hint.startswith("hint: models for transcribe: tiny.en-bundled (installed)")


def test_an_unknown_language_is_named_as_such(cli, tmp_path) -> None:
    from tests.speech_helpers import require_models, synthesize

    require_models()
    clip = tmp_path / "a.wav"
    clip.write_bytes(synthesize("Hello."))
    r = cli("--offline", "transcribe", str(clip), "--language", "xx")
    assert r.exit_code == 2 and "not a language Whisper knows" in r.stderr
    assert "English-only" not in r.stderr
