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
