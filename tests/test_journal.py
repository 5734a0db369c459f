"""Batch jobs: journal, resume, retry, lock, time budget, dry run, signals (fake engine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmcli.errors import UsageError
from mmcli.journal import Journal, parse_duration
from tests.conftest import REPO
from tests.fakes.engine import FakeEngine
from tests.fakes.fixtures import write_manifest


def corpus(root: Path, n: int = 6, empty: int | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        data = b"" if i == empty else b"\x89PNG\r\n\x1a\n" + bytes([i]) * (i + 1)
        (root / f"{i:02d}.png").write_bytes(data)
    return root


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_resume_skips_done_and_failed_retry_reruns(cli, fake_engine, tmp_path):
    src, out = corpus(tmp_path / "in", empty=2), tmp_path / "out"
    base = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out)]
    r = cli(*base)
    assert r.exit_code == 1
    lines = journal_lines(out / ".mmcli-journal.jsonl")
    assert [x["status"] for x in lines].count("done") == 5
    assert [x["status"] for x in lines].count("failed") == 1
    assert all(Path(p).is_file() for x in lines for p in x["outputs"])
    loads = FakeEngine.loads
    r = cli(*base)
    assert r.exit_code == 0 and "0 done, 0 failed, 6 skipped" in r.stderr
    (src / "02.png").write_bytes(b"\x89PNG\r\n\x1a\nfixed")  # fixed input: new key, re-run
    r = cli(*base)
    assert "1 done, 0 failed, 5 skipped" in r.stderr
    assert FakeEngine.loads == loads + 1 or FakeEngine.loads == loads  # once per process at most
    r = cli(*base, "--retry-failed")
    assert "0 done" in r.stderr  # nothing failed with the current keys any more


def test_retry_failed(cli, fake_engine, tmp_path):
    src, out = corpus(tmp_path / "in", empty=1), tmp_path / "out"
    base = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out)]
    cli(*base)
    r = cli(*base, "--retry-failed")
    assert r.exit_code == 1 and "0 done, 1 failed, 5 skipped" in r.stderr


def test_changed_option_reprocesses(cli, fake_engine, tmp_path):
    src, out = corpus(tmp_path / "in", n=3), tmp_path / "out"
    base = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out)]
    cli(*base)
    r = cli(*base, "--upper")
    assert "3 done, 0 failed, 0 skipped" in r.stderr
    assert (out / "00.png.txt").read_text().startswith("9 BYTES")


def test_deleted_output_is_redone(cli, fake_engine, tmp_path):
    src, out = corpus(tmp_path / "in", n=3), tmp_path / "out"
    base = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out)]
    cli(*base)
    (out / "01.png.txt").unlink()
    r = cli(*base)
    assert "1 done, 0 failed, 2 skipped" in r.stderr
    assert (out / "01.png.txt").is_file()


def test_torn_last_line_is_ignored(cli, fake_engine, tmp_path):
    src, out = corpus(tmp_path / "in", n=3), tmp_path / "out"
    base = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out)]
    cli(*base)
    jpath = out / ".mmcli-journal.jsonl"
    text = jpath.read_text().splitlines()
    jpath.write_text("\n".join(text[:2]) + "\n" + text[2][: len(text[2]) // 2])
    assert len(Journal.open(jpath).state) == 2
    r = cli(*base)
    assert "1 done, 0 failed, 2 skipped" in r.stderr


def test_explicit_journal_with_stdout_jsonl(cli, fake_engine, tmp_path):
    src = corpus(tmp_path / "in", n=4)
    j = tmp_path / "job.jsonl"
    base = ["--models", str(fake_engine), "fake-caption", str(src), "-f", "jsonl", "--journal",
            str(j)]
    r = cli(*base, "--max-duration", "0s")
    assert r.exit_code == 0 and r.stdout == "" and "4 left" in r.stderr
    r = cli(*base)
    assert len(r.stdout.splitlines()) == 4
    r = cli(*base)
    assert r.stdout == "" and "4 skipped" in r.stderr
    assert len(journal_lines(j)) == 4


def test_dry_run_loads_nothing(cli, fake_engine, tmp_path):
    src, out = corpus(tmp_path / "in", n=3), tmp_path / "out"
    base = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out)]
    cli(*base)
    (src / "09.png").write_bytes(b"\x89PNG\r\n\x1a\nnew")
    loads = FakeEngine.loads
    r = cli(*base, "--dry-run")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "model\tfake-echo\tlocal"
    assert lines[1:] == [f"skip (done)\t{src / n}" for n in ("00.png", "01.png", "02.png")] + \
        [f"process\t{src / '09.png'}"]
    assert FakeEngine.loads == loads


def test_dry_run_names_download_size(cli, tmp_path, fake_engine):
    src = corpus(tmp_path / "in", n=1)
    r = cli("--models", str(fake_engine), "fake-caption", str(src), "--model", "smolvlm-256m",
            "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0] == "model\tsmolvlm-256m\tnot downloaded (download ~279 MB)"


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800),
                                               ("1h30m", 5400), ("2h", 7200)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "1d"])
def test_parse_duration_bad(text):
    with pytest.raises(UsageError):
        parse_duration(text)


# ------------------------------------------------------------ subprocess: lock and signals
def run_fake(tmp_path: Path, args: list[str], env: dict[str, str], sleep: float = 0.0,
             ) -> subprocess.Popen:
    e = dict(env, FAKE_SLEEP=str(sleep))
    return subprocess.Popen([sys.executable, "-m", "tests.fakes.run_fake",
                             "--models", str(write_manifest(tmp_path)), *args],
                            cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_lines(path: Path, n: int, timeout: float = 20) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines")


def test_second_concurrent_run_exits_75(tmp_path, subprocess_env):
    src, out = corpus(tmp_path / "in", n=8), tmp_path / "out"
    args = ["fake-caption", str(src), "--output-dir", str(out)]
    first = run_fake(tmp_path, args, subprocess_env, sleep=0.3)
    wait_for_lines(out / ".mmcli-journal.jsonl", 1)
    start = time.time()
    second = run_fake(tmp_path, args, subprocess_env)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 75
    assert time.time() - start < 10
    assert f"PID {first.pid}" in err
    assert first.wait(timeout=60) == 0
    assert len(list(out.glob("*.txt"))) == 8


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_and_rerun_completes(tmp_path, subprocess_env, sig, code):
    src, out = corpus(tmp_path / "in", n=10), tmp_path / "out"
    args = ["fake-caption", str(src), "--output-dir", str(out)]
    proc = run_fake(tmp_path, args, subprocess_env, sleep=0.2)
    wait_for_lines(out / ".mmcli-journal.jsonl", 3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "stopped:" in err and "left" in err and "Traceback" not in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    done = {Path(x["input"]).name for x in journal_lines(out / ".mmcli-journal.jsonl")}
    assert {p.name[:-4] for p in out.glob("*.txt")} >= done
    rerun = run_fake(tmp_path, args, subprocess_env)
    rerun.communicate(timeout=60)
    assert rerun.returncode == 0
    lines = journal_lines(out / ".mmcli-journal.jsonl")
    assert sorted(Path(x["input"]).name for x in lines) == sorted(p.name for p in src.iterdir())
    assert len(list(out.glob("*.txt"))) == 10


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_output_dir_then_fixed(tmp_path, cli, fake_engine):
    src, out = corpus(tmp_path / "in", n=3), tmp_path / "out"
    out.mkdir()
    (out / ".mmcli-journal.jsonl").write_text("")
    os.chmod(out, 0o555)
    try:
        r = cli("--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out))
    finally:
        os.chmod(out, 0o755)
    assert r.exit_code == 1 and "cannot write" in r.stderr
    r = cli("--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out))
    assert r.exit_code == 0 and len(list(out.glob("*.txt"))) == 3


def test_disk_full_mid_batch_then_rerun(tmp_path, cli, fake_engine, monkeypatch):
    """ENOSPC on the 3rd rename: clean error, journal lists exactly the finished ones."""
    from mmcli import atomic

    src, out = corpus(tmp_path / "in", n=6), tmp_path / "out"
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(a, b):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_replace(a, b)

    monkeypatch.setattr(atomic.os, "replace", flaky_replace)
    base = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out)]
    r = cli(*base)
    assert r.exit_code == 1
    assert "cannot write" in r.stderr and "No space left on device" in r.stderr
    assert "Traceback" not in r.stderr
    lines = journal_lines(out / ".mmcli-journal.jsonl")
    assert [x["status"] for x in lines] == ["done", "done"]
    assert len(list(out.glob("*.txt"))) == 2 and not list(out.glob(".*.tmp"))
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    r = cli(*base)
    assert r.exit_code == 0 and "4 done, 0 failed, 2 skipped" in r.stderr
    assert len(journal_lines(out / ".mmcli-journal.jsonl")) == 6


def test_options_marked_not_in_key_do_not_change_the_hash():
    from dataclasses import dataclass

    from mmcli.journal import not_in_key, options_hash

    @dataclass
    class Opts:
        size: int = 1
        cache: str | None = not_in_key()

    assert options_hash(Opts(cache="/a"), "json") == options_hash(Opts(cache="/b"), "json")
    assert options_hash(Opts(size=2), "json") != options_hash(Opts(), "json")


def test_journal_append_on_a_full_disk_is_a_clean_output_error(tmp_path, monkeypatch):
    from mmcli import journal as journal_mod
    from mmcli.errors import OutputError
    from mmcli.inputs import InputItem

    j = journal_mod.Journal.open(tmp_path / "j.jsonl")

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_mod.os, "write", full)
    item = InputItem(display="a.wav", path=tmp_path / "a.wav", rel=Path("a.wav"))
    with pytest.raises(OutputError, match="No space left on device"):
        j.append("k", item, "done", [])
    assert j.status("k") is None  # not recorded as done: the next run redoes it


def test_journal_and_lock_symlinks_are_never_followed(tmp_path, cli, fake_engine):
    """A journal (or lock) that is a symbolic link stops the run with exit 2 naming it; the
    link's target is untouched (it used to get a line appended)."""
    src, out = corpus(tmp_path / "in", n=2), tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / ".mmcli-journal.jsonl").symlink_to(victim)
    r = cli("--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out))
    assert r.exit_code == 2 and "symbolic link" in r.stderr and ".mmcli-journal.jsonl" in r.stderr
    assert victim.read_text() == "precious\n" and r.stdout == ""
    lock = tmp_path / "job.lock"
    lock.symlink_to(victim)
    r = cli("--models", str(fake_engine), "fake-caption", str(src), "--lock", str(lock))
    assert r.exit_code == 2 and "symbolic link" in r.stderr
    assert victim.read_text() == "precious\n"


def test_no_folder_is_created_that_the_user_did_not_name(tmp_path, cli, fake_engine):
    src = corpus(tmp_path / "in", n=1)
    base = ["--models", str(fake_engine), "fake-caption", str(src)]
    afile = tmp_path / "afile"
    afile.write_text("x")
    for flag, path in [("-o", tmp_path / "nodir" / "x.txt"), ("--journal", tmp_path / "nd" / "j"),
                       ("--lock", tmp_path / "nl" / "l"), ("-o", afile / "x.txt")]:
        r = cli(*base, flag, str(path))
        assert r.exit_code == 2, (flag, r.stderr)
        assert "the folder" in r.stderr and r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "fake-model", "fake.toml", "in"]
    r = cli(*base, "--output-dir", "")
    assert r.exit_code == 2 and "is empty" in r.stderr
    r = cli(*base, "--output-dir", str(afile))
    assert r.exit_code == 2


def test_a_lock_that_cannot_be_created_is_a_usage_error(tmp_path, cli, fake_engine):
    src = corpus(tmp_path / "in", n=1)
    r = cli("--models", str(fake_engine), "fake-caption", str(src), "--lock", "/proc/mmcli.lock")
    assert r.exit_code == 2 and "cannot create the lock file" in r.stderr  # was 75, "held"
