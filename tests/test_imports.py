"""Startup stays light: these commands must not import any engine package."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("llama_cpp", "ctranslate2", "faster_whisper", "onnxruntime", "piper", "av", "numpy")

PROBE = """
import sys
from mmcli.cli.app import app
try:
    app(args={args!r}, prog_name="mmcli")
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


@pytest.mark.parametrize("args", [["--help"], ["models", "list"], ["doctor", "--help"],
                                  ["models", "list", "--json"], ["transcribe", "--help"],
                                  ["caption", "--help"], ["segment", "--help"], ["chat", "--help"],
                                  ["speak", "--help"], ["vqa", "--help"]])
def test_no_engine_imported(args, subprocess_env):
    code = PROBE.format(args=args, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env, timeout=60)
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")]
    assert line == ["HEAVY="], proc.stderr


def test_importtime_has_no_engine(subprocess_env):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mmcli", "--help"],
                          capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert not imported & set(HEAVY)
