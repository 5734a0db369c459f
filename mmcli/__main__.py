"""``python -m mmcli``."""

from mmcli.cli.app import run

run()
