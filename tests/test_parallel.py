"""``--jobs N`` (mmcli.parallel): worker processes give the same outputs as one process, in input
order, with every batch-job guarantee; dead workers, whole-run errors and signals are handled.

Uses the fake engine (tests/fakes) through the real registry; ``ProbeEngine`` below replaces it
where a test needs a worker to crash, fail to load, print noise or report its thread share.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmcli import engines
from mmcli.errors import ModelUnavailableError
from mmcli.records import ResolvedModel
from mmcli.settings import Settings
from tests.conftest import REPO
from tests.fakes.engine import FakeEngine
from tests.fakes.fixtures import write_manifest


class ProbeEngine(FakeEngine):
    """The fake engine, plus: ``CRASH <marker>`` kills the worker (once when the marker file
    does not exist yet, always when it is ``always``), ``threads`` reports the worker's share,
    PROBE_LOAD_FAIL=1 fails the load for the whole run, PROBE_NOISE=1 prints on fds 1 and 2."""

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> ProbeEngine:
        if os.environ.get("PROBE_LOAD_FAIL"):
            raise ModelUnavailableError("model 'fake-echo' cannot load here",
                                        hint="run `mmcli models verify fake-echo`")
        if os.environ.get("PROBE_NOISE"):
            print("print() noise from the engine")
            sys.stdout.flush()
            os.write(1, b"fd 1 noise from the engine\n")
            os.write(2, b"fd 2 log line from the engine\n")
        engine = cls(model)
        engine.threads = settings.threads  # type: ignore[attr-defined]
        return engine

    def describe(self, data: bytes, upper: bool = False) -> str:
        text = data.decode("utf-8", "replace")
        if text.startswith("CRASH "):
            marker = Path(text.split(" ", 1)[1].strip())
            if marker.name == "always" or not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        if text == "threads":
            return f"threads={self.threads} omp={os.environ.get('OMP_NUM_THREADS')}"  # type: ignore[attr-defined]
        return super().describe(data, upper)


@pytest.fixture
def probe(fake_engine: Path) -> Path:
    """The fake manifest, with engine ``fake`` served by ``ProbeEngine``."""
    engines.register(engines.EngineSpec("fake", "tests.test_parallel:ProbeEngine",
                                        frozenset({"caption"})))
    return fake_engine


def _inputs(folder: Path, n: int = 9) -> Path:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"{i:02d}.png").write_bytes(b"\x89PNG" + bytes([i]) * (i * 7 + 1))
    (folder / "05.png").write_bytes(b"")  # fails: an error record in the middle
    return folder


def test_jobs_2_same_output_and_order_as_one_process(cli, fake_engine, tmp_path):
    src = _inputs(tmp_path / "in")
    one = cli("--models", str(fake_engine), "fake-caption", str(src), "-f", "jsonl")
    two = cli("--models", str(fake_engine), "fake-caption", str(src), "-f", "jsonl",
              "--jobs", "2")
    assert one.exit_code == two.exit_code == 1
    rows = [json.loads(line) for line in two.stdout.splitlines()]
    assert [r["input"] for r in rows] == sorted(str(p) for p in src.iterdir())
    strip = [{k: v for k, v in r.items() if k != "timings"} for r in rows]
    assert strip == [{k: v for k, v in json.loads(x).items() if k != "timings"}
                     for x in one.stdout.splitlines()]
    assert rows[5]["error"]["message"] == "file is empty"
    assert one.stderr == two.stderr.replace(two.stderr.split("skipped in ")[1],
                                            one.stderr.split("skipped in ")[1])


def test_jobs_2_journal_resume_retry_and_sidecars(cli, fake_engine, tmp_path):
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    args = ["--models", str(fake_engine), "fake-caption", str(src), "--output-dir", str(out),
            "--jobs", "2"]
    first = cli(*args)
    assert first.exit_code == 1
    sidecars = sorted(p.name for p in out.glob("*.txt"))
    assert sidecars == [f"{i:02d}.png.txt" for i in range(9) if i != 5]
    lines = [json.loads(x) for x in (out / ".mmcli-journal.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines] == ["done"] * 5 + ["failed"] + ["done"] * 3
    again = cli(*args)
    assert again.exit_code == 0 and "0 done, 0 failed, 9 skipped" in again.stderr
    (src / "05.png").write_bytes(b"fixed")
    retry = cli(*args, "--retry-failed")
    assert retry.exit_code == 0 and "1 done, 0 failed, 8 skipped" in retry.stderr
    dry = cli(*args, "--dry-run")
    assert dry.exit_code == 0 and "process" not in dry.stdout.replace("model", "")


def test_jobs_2_time_budget_stops_taking_inputs(cli, fake_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "0.3")
    src = tmp_path / "in"
    src.mkdir()
    for i in range(12):
        (src / f"{i:02d}.png").write_bytes(bytes([i + 1]) * 4)
    out = tmp_path / "out"
    result = cli("--models", str(fake_engine), "fake-caption", str(src), "--output-dir",
                 str(out), "--jobs", "2", "--max-duration", "1s")
    assert result.exit_code == 0, result.stderr
    assert "time budget reached" in result.stderr
    journal = (out / ".mmcli-journal.jsonl").read_text().splitlines()
    assert 0 < len(journal) < 12
    assert len(list(out.glob("*.txt"))) == len(journal)  # journaled == written, in order
    assert [json.loads(x)["input"] for x in journal] == \
        [str(src / f"{i:02d}.png") for i in range(len(journal))]


def test_jobs_stdin_bytes_reach_the_worker(cli, fake_engine):
    data = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    one = cli("--models", str(fake_engine), "fake-caption", "-", input=data)
    two = cli("--models", str(fake_engine), "fake-caption", "-", "--jobs", "2", input=data)
    assert one.exit_code == two.exit_code == 0
    assert two.stdout == one.stdout and "108 bytes" in two.stdout


def test_threads_are_split_between_workers(cli, probe, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (tmp_path / "threads.png").write_bytes(b"threads")
    result = cli("--models", str(probe), "--threads", "5", "fake-caption",
                 str(tmp_path / "threads.png"), "--jobs", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "threads=2 omp=2"  # 5 // 2, OpenMP pools too


def test_worker_output_never_reaches_stdout(cli, probe, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_NOISE", "1")
    src = _inputs(tmp_path / "in", 4)
    result = cli("--models", str(probe), "fake-caption", str(src), "--jobs", "2")
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == \
        [str(src / f"{i:02d}.png") for i in range(4)]
    assert "fd 2 log line from the engine" in result.stderr  # relayed, not lost
    assert "fd 1 noise from the engine" in result.stderr


def test_a_killed_worker_is_replaced_and_its_input_retried_once(cli, probe, tmp_path):
    src = _inputs(tmp_path / "in", 6)
    (src / "02.png").write_bytes(f"CRASH {tmp_path / 'once'}".encode())
    (src / "04.png").write_bytes(f"CRASH {tmp_path / 'always'}".encode())
    result = cli("--models", str(probe), "fake-caption", str(src), "--jobs", "2",
                 "-f", "jsonl")
    assert result.exit_code == 1
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["input"] for r in rows] == [str(src / f"{i:02d}.png") for i in range(6)]
    assert rows[2]["error"] is None  # died once, done on the fresh worker
    assert "died 2 times (killed by SIGKILL)" in rows[4]["error"]["message"]
    assert rows[5]["error"]["message"] == "file is empty"
    assert [r["error"] is None for r in rows] == [True, True, True, True, False, False]


def test_whole_run_error_in_a_worker_stops_like_one_process(cli, probe, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_LOAD_FAIL", "1")
    src = _inputs(tmp_path / "in", 4)
    one = cli("--models", str(probe), "fake-caption", str(src))
    two = cli("--models", str(probe), "fake-caption", str(src), "--jobs", "2")
    assert one.exit_code == two.exit_code == 3
    assert two.stdout == one.stdout == ""
    assert two.stderr == one.stderr
    assert "mmcli: error: model 'fake-echo' cannot load here" in two.stderr


def test_events_and_error_records_of_every_task_pickle():
    """What a worker sends back: every task's error record, and every event type."""
    from mmcli import tasks
    from mmcli.events import AudioChunk, Done, Measured, SegmentDone, TextDelta
    from mmcli.inputs import InputItem
    from mmcli.records import ErrorInfo, ModelInfo

    model = ResolvedModel("m", "e", ("caption",), {}, ModelInfo("m", "path:/m"))
    item = InputItem("a.wav", Path("a.wav"), Path("a.wav"))
    events = [TextDelta("t"), SegmentDone(0.0, 1.0, "x"), Measured(2.0),
              AudioChunk(b"\x00\x01" * 4, 22050)]
    for name in tasks.NAMES:
        task = tasks.get(name)
        events.append(Done(task.error_record(item, ErrorInfo("InputError", "bad"), model)))
        pickle.loads(pickle.dumps(task.options_type()))
    assert pickle.loads(pickle.dumps(events)) == events


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _start(tmp_path: Path, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen, Path]:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        (src / f"{i:02d}.png").write_bytes(bytes([i + 1]) * 8)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "tests.fakes.run_fake", "--models",
            str(write_manifest(tmp_path)), "fake-caption", str(src), "--output-dir", str(out),
            "--jobs", "2", *extra]
    proc = subprocess.Popen(argv, cwd=REPO, env=dict(env, FAKE_SLEEP="0.1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    journal = out / ".mmcli-journal.jsonl"
    end = time.time() + 60
    while time.time() < end and not (journal.is_file() and journal.read_text().count("\n") >= 3):
        time.sleep(0.05)
    return proc, out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGINT to the group", "SIGTERM", "SIGKILL"])
def test_signals_stop_the_workers_cleanly(tmp_path, subprocess_env, how):
    proc, out = _start(tmp_path, subprocess_env)
    workers = [p for p in _children(proc.pid)
               if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(workers) == 2
    if how == "SIGINT to the group":  # Ctrl-C in a terminal reaches every process
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(getattr(signal, how))
    stdout, stderr = proc.communicate(timeout=30)
    time.sleep(0.5)  # the kernel's parent-death signal (SIGKILL case) is asynchronous
    assert [p for p in workers if Path(f"/proc/{p}").exists() and
            "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()] == []
    assert proc.returncode == {"SIGINT to the group": 130, "SIGTERM": 143, "SIGKILL": -9}[how]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    if how != "SIGKILL":
        assert stderr.splitlines()[-1] in ("mmcli: error: interrupted",
                                           "mmcli: error: terminated")
    journal = [json.loads(x) for x in (out / ".mmcli-journal.jsonl").read_text().splitlines()
               if x.endswith("}")]
    assert [x["input"] for x in journal] == \
        [str(tmp_path / "in" / f"{i:02d}.png") for i in range(len(journal))]
    assert {p.stem for p in out.glob("*.txt")} == {Path(x["input"]).name for x in journal}


RUN_PROBE = """
import sys
from mmcli import engines
from tests.fakes.fixtures import install
install()
engines.register(engines.EngineSpec("fake", "tests.test_parallel:ProbeEngine",
                                    frozenset({"caption"})))
from mmcli.cli import app as app_module
app_module._PROCESS = True
app_module.app(args=sys.argv[1:], prog_name="mmcli")
"""


def test_worker_logs_print_above_the_bar_on_a_terminal(tmp_path, subprocess_env):
    """stdout and stderr on one pty: data lines and the workers' log lines stay whole above
    the single bar (read back through a terminal emulator)."""
    pexpect = pytest.importorskip("pexpect")
    pyte = pytest.importorskip("pyte")
    src = _inputs(tmp_path / "in", 6)
    (src / "05.png").write_bytes(b"five")
    child = pexpect.spawn(sys.executable, ["-c", RUN_PROBE, "--models",
                                           str(write_manifest(tmp_path)), "fake-caption",
                                           str(src), "--jobs", "2"],
                          cwd=str(REPO), env=dict(subprocess_env, PROBE_NOISE="1",
                                                  FAKE_SLEEP="0.1"),
                          timeout=120, dimensions=(40, 120))
    child.expect(pexpect.EOF)
    child.close()
    screen = pyte.Screen(120, 40)
    pyte.ByteStream(screen).feed(child.before)
    text = [line.rstrip() for line in screen.display if line.strip()]
    assert child.exitstatus == 0, text
    assert sum(1 for line in text if line.startswith("caption fake-echo")) == 1, text
    assert text.count("fd 2 log line from the engine") == 2, text  # one per worker, whole
    data = [line for line in text if line.startswith(str(src))]
    assert [line.split(":")[0] for line in data] == [str(src / f"{i:02d}.png") for i in range(6)]
