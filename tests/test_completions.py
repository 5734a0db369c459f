"""The checked-in shell completions match what the app generates."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_completions_are_fresh(subprocess_env):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_completions.py"), "--check"],
                          capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bash_completion_answers(subprocess_env):
    env = dict(subprocess_env, _MMCLI_COMPLETE="complete_bash", COMP_WORDS="mmcli mod",
               COMP_CWORD="1")
    proc = subprocess.run([sys.executable, "-m", "mmcli"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert "models" in proc.stdout.split()
