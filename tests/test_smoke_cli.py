"""The CLI answers ``--version`` (``mmcli <version>``) and ``--help`` (lists every command)."""

from mmcli import __version__


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"mmcli {__version__}"


def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.exit_code == 0
    for name in ("caption", "vqa", "transcribe", "speak", "segment", "chat", "models", "doctor"):
        assert name in r.stdout
