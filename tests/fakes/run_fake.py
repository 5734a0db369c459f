"""Run the app with the fake engine installed, in a subprocess (for kill/lock tests).

Usage: python -m tests.fakes.run_fake [mmcli args...]; FAKE_SLEEP=seconds per input.
"""

from __future__ import annotations

import sys

from tests.fakes.fixtures import install

if __name__ == "__main__":
    install()
    from mmcli.cli import app as app_module

    app_module._PROCESS = True  # a whole process, like the console script
    app_module.app(args=sys.argv[1:], prog_name="mmcli")
