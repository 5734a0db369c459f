"""The README's quickstart and .ci/run must not drift apart (CI runs the README's command)."""

from __future__ import annotations

import re

from tests.conftest import REPO


def quickstart() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- quickstart -->\n```bash\n(.*?)```", text, re.S)
    assert block, "README.md must open with a ```bash quickstart block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_install_run_and_test_commands():
    lines = quickstart()
    assert len(lines) == 2
    run, test = lines
    assert "pip install -e '.[bundled]'" in run and "mmcli --offline" in run
    assert test.endswith("python -m pytest -q") and "python3 -m venv .venv" in test


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert quickstart()[1] in ci
