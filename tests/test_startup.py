"""Start-up of one task command: only its own command module is imported and built."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmcli.cli.app import command_of


@pytest.mark.parametrize(("args", "name"), [
    (["speak", "hi"], "speak"), (["--offline", "transcribe", "a.mp3"], "transcribe"),
    (["--models", "m.toml", "-q", "caption", "x"], "caption"), (["--models=m.toml", "vqa"], "vqa"),
    (["--threads", "2", "models", "list"], "models"), (["--help"], None), (["--version"], None),
    ([], None), (["--offline"], None)])
def test_command_of_skips_global_options(args, name):
    assert command_of(args) == name


PROBE = """
import sys
from mmcli.cli.app import run
sys.argv = ["mmcli", *{args!r}]
try:
    run()
except SystemExit:
    pass
sys.stderr.write("MODULES=" + ",".join(sorted(m for m in sys.modules if m.startswith("mmcli"))))
"""


def _imported(args: list[str], env: dict[str, str]) -> tuple[set[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                          text=True, env=env, timeout=60)
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES=")]
    assert line, proc.stderr
    return set(line[0].split("=", 1)[1].split(",")), proc.stdout


def test_a_task_command_builds_only_its_module(subprocess_env):
    modules, out = _imported(["--offline", "speak", "--help"], subprocess_env)
    assert "mmcli.cli.speech" in modules and "--lines" in out
    others = {"mmcli.cli.vision", "mmcli.cli.segment", "mmcli.cli.chat", "mmcli.cli.doctor",
              "mmcli.cli.models_cmd"}
    assert not modules & others
    assert "mmcli.batch" not in modules  # --help exits before any batch code is needed
    modules, out = _imported(["--help"], subprocess_env)  # the full app for everything else
    assert others <= modules
    assert all(name in out for name in ("caption", "speak", "segment", "chat", "models"))
