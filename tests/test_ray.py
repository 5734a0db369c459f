"""``--ray``: the same outputs as a local run, on a local Ray instance (2 CPUs, one per session).

The reference runs are subprocesses with one engine thread and ``OMP_NUM_THREADS=1`` (what a
Ray worker with one CPU gets): whisper's transcript can change with the thread count of numpy's
BLAS, so "byte-identical" compares like with like. Workers are killed with a real SIGKILL by a
fake engine on a marked input (once), which is deterministic where a timed kill is not.
"""
# ruff: noqa: F811  (pytest fixtures imported from other test modules are used as arguments)

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fakes.engine import FakeEngine
from tests.speech_helpers import speech_dir  # noqa: F401 - pytest fixture
from tests.vision_fixtures import (  # noqa: F401 - pytest fixtures
    make_image,
    tiny_vlm_dir,
    tiny_vlm_manifest,
)

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RAY = ("--ray", "local", "--ray-workers", "2", "--ray-cpus", "1")


def _ray_or_skip() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI installs '.[dev,bundled,ray]' but ray is not importable")
        pytest.skip("ray is not installed (pip install -e '.[dev,bundled,ray]')")


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local Ray instance (2 CPUs) for the session; ``--ray local`` runs reuse it."""
    _ray_or_skip()
    import ray

    home = tmp_path_factory.mktemp("ray-home")
    env = {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(home),
           "XDG_CONFIG_HOME": str(home), "HF_HOME": str(home / "hf")}
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sigterm = signal.getsignal(signal.SIGTERM)  # ray.init installs its own: other tests' stays
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, runtime_env={"env_vars": env})
    signal.signal(signal.SIGTERM, sigterm)
    yield ray
    ray.shutdown()


def local_run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m mmcli --offline --threads 1 ARGS`` with one BLAS/OpenMP thread."""
    run = subprocess.run([sys.executable, "-m", "mmcli", "--offline", "--threads", "1", *args],
                         env={**env, **ONE_THREAD}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return run


def tree(folder: Path) -> dict[str, bytes]:
    """Every output file's bytes (the journal and lock aside), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".mmcli")}


def journal(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in
            (folder / ".mmcli-journal.jsonl").read_text().splitlines()]


def test_transcribe_same_as_local_then_rerun_skips(cli, ray_session, speech_dir, tmp_path,
                                                   subprocess_env):
    local, out = tmp_path / "local", tmp_path / "ray"
    local_run(["transcribe", str(speech_dir), "--format", "srt", "--output-dir", str(local)],
              subprocess_env)
    r = cli("--offline", "transcribe", str(speech_dir), "--format", "srt",
            "--output-dir", str(out), *RAY)
    assert r.exit_code == 0, r.stderr
    assert tree(out) == tree(local) and len(tree(out)) == 3
    assert r.stdout == "".join(f"{out / f's{i}.wav.srt'}\n" for i in range(3))
    assert r.stderr == "3 done, 0 failed, 0 skipped in " + r.stderr.split(" in ")[1]
    again = cli("--offline", "transcribe", str(speech_dir), "--format", "srt",
                "--output-dir", str(out), *RAY)
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr.startswith("0 done, 0 failed, 3 skipped")
    assert [e["status"] for e in journal(out)] == ["done"] * 3


def test_speak_same_wavs_as_local(cli, ray_session, tmp_path, subprocess_env):
    lines = tmp_path / "lines.txt"
    lines.write_text("Ray runs this line.\nAnd this one too.\nA third line, shorter.\n")
    local, out = tmp_path / "local", tmp_path / "ray"
    local_run(["speak", "--input-file", str(lines), "--lines", "--output-dir", str(local)],
              subprocess_env)
    r = cli("--offline", "speak", "--input-file", str(lines), "--lines",
            "--output-dir", str(out), *RAY)
    assert r.exit_code == 0, r.stderr
    wavs = tree(out)
    assert len(wavs) == 3 and all(k.endswith(".wav") for k in wavs)
    assert wavs == tree(local)


def test_caption_tiny_vlm_same_as_local(cli, ray_session, tiny_vlm_manifest, tmp_path,
                                        subprocess_env):
    images = tmp_path / "images"
    for i in range(3):
        make_image(images / f"im{i}.png", seed=i)
    local, out = tmp_path / "local", tmp_path / "ray"
    local_run(["--models", str(tiny_vlm_manifest), "caption", str(images),
               "--output-dir", str(local)], subprocess_env)
    r = cli("--offline", "--models", str(tiny_vlm_manifest), "caption", str(images),
            "--output-dir", str(out), *RAY)
    assert r.exit_code == 0, r.stderr
    assert tree(out) == tree(local) and len(tree(out)) == 3


class DyingEngine(FakeEngine):
    """The fake engine, except that an input reading ``die:MARKER`` SIGKILLs its worker
    process the first time (the marker file records that it happened)."""

    def describe(self, data: bytes, upper: bool = False) -> str:
        if data.startswith(b"slow"):
            time.sleep(0.5)
        if data == b"die-always":
            os.kill(os.getpid(), signal.SIGKILL)
        if data.startswith(b"die:"):
            marker = Path(data[4:].decode())
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return super().describe(data, upper)


def _die_inputs(folder: Path, marker: Path, n: int = 8, dying: int = 3) -> Path:
    folder.mkdir()
    for i in range(n):
        text = f"die:{marker}" if i == dying else f"input {i}"
        (folder / f"in{i}.txt").write_text(text)
    return folder


def test_killed_worker_is_restarted_every_output_once(cli, ray_session, fake_engine,
                                                      tmp_path):
    from mmcli import engines

    engines.register(engines.EngineSpec("fake", "tests.test_ray:DyingEngine",
                                        frozenset({"caption"})))
    marker = tmp_path / "killed"
    inputs = _die_inputs(tmp_path / "in", marker)
    out = tmp_path / "out"
    r = cli("--models", str(fake_engine), "fake-caption", str(inputs), "--output-dir", str(out),
            *RAY)
    assert r.exit_code == 0, r.stderr
    assert marker.exists(), "the worker was never killed: the test tests nothing"
    assert int(marker.read_text()) != os.getpid()  # a worker died, not this driver
    assert sorted(tree(out)) == [f"in{i}.txt.txt" for i in range(8)]
    assert r.stdout.splitlines() == [str(out / f"in{i}.txt.txt") for i in range(8)]
    entries = journal(out)
    assert [e["input"] for e in entries] == [str(inputs / f"in{i}.txt") for i in range(8)]
    assert {e["status"] for e in entries} == {"done"}
    # a rerun skips everything: nothing is written twice
    again = cli("--models", str(fake_engine), "fake-caption", str(inputs),
                "--output-dir", str(out), *RAY)
    assert again.exit_code == 0 and again.stdout == "" and len(journal(out)) == 8


def test_an_input_that_always_kills_its_worker_fails_alone(cli, ray_session, fake_engine,
                                                          tmp_path):
    from mmcli import engines

    engines.register(engines.EngineSpec("fake", "tests.test_ray:DyingEngine",
                                        frozenset({"caption"})))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        (inputs / f"in{i}.txt").write_text("die-always" if i == 1 else f"input {i}")
    out = tmp_path / "out"
    r = cli("--models", str(fake_engine), "fake-caption", str(inputs), "--output-dir", str(out),
            *RAY)
    assert r.exit_code == 1, r.stderr
    assert "in1.txt: the Ray worker died 4 times on this input" in r.stderr
    assert sorted(tree(out)) == ["in0.txt.txt", "in2.txt.txt", "in3.txt.txt"]
    assert [e["status"] for e in journal(out)] == ["done", "failed", "done", "done"]


def test_sigterm_stops_the_driver_and_a_rerun_resumes(cli, ray_session, fake_engine, tmp_path):
    from mmcli import engines

    engines.register(engines.EngineSpec("fake", "tests.test_ray:DyingEngine",
                                        frozenset({"caption"})))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(8):
        (inputs / f"in{i}.txt").write_text(f"slow {i}")
    out = tmp_path / "out"

    def terminate_after_first_output() -> None:
        deadline = time.monotonic() + 120
        while not (out / "in0.txt.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # to this driver, while Ray's get() waits

    killer = threading.Thread(target=terminate_after_first_output)
    killer.start()
    args = ("--models", str(fake_engine), "fake-caption", str(inputs), "--output-dir", str(out),
            *RAY)
    r = cli(*args)
    killer.join()
    assert r.exit_code == 143, r.stderr
    assert "stopped: " in r.stderr and "left" in r.stderr and "Traceback" not in r.stderr
    first = len(journal(out))
    assert 1 <= first < 8
    again = cli(*args)
    assert again.exit_code == 0, again.stderr
    assert again.stderr.startswith(f"{8 - first} done, 0 failed, {first} skipped")
    entries = journal(out)
    assert sorted(e["input"] for e in entries) == [str(inputs / f"in{i}.txt") for i in range(8)]
    assert sorted(tree(out)) == [f"in{i}.txt.txt" for i in range(8)]


def test_a_worker_bigger_than_the_cluster_is_a_usage_error(cli, ray_session, fake_engine,
                                                           tmp_path):
    (tmp_path / "a.txt").write_text("a")
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "a.txt"),
            "--ray", "local", "--ray-cpus", "3")
    assert r.exit_code == 2
    assert "--ray-cpus 3 per worker: the Ray cluster has 2 CPUs" in r.stderr


def test_inputs_only_the_driver_sees_are_shipped(cli, ray_session, fake_engine, tmp_path,
                                                 monkeypatch):
    # /proc/self/cwd/... names this process's working folder: a Ray worker (another process,
    # another cwd) finds no such file there, as a node without the driver's disk would.
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.txt").write_text("x" * (i + 1))
    monkeypatch.chdir(tmp_path)
    assert Path("/proc/self/cwd/mine/f0.txt").is_file()
    seen = ray_session.remote(lambda: Path("/proc/self/cwd/mine/f0.txt").exists())  # type: ignore[attr-defined]
    assert ray_session.get(seen.remote()) is False  # type: ignore[attr-defined]
    local = cli("--models", str(fake_engine), "fake-caption", "/proc/self/cwd/mine")
    r = cli("--models", str(fake_engine), "fake-caption", "/proc/self/cwd/mine", *RAY)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == local.stdout and r.stdout.count("bytes sha256:") == 3


def test_missing_model_on_worker_fails_fast_with_hostname(fake_engine, tmp_path):
    import socket

    from mmcli import manifest, resolve
    from mmcli.rayrun import Stop, Worker
    from mmcli.settings import Settings
    from mmcli.work import Work

    settings = Settings(models_file=fake_engine)
    model = resolve.resolve(None, "caption", manifest.load(fake_engine), settings)
    (tmp_path / "fake-model" / "weights.bin").unlink()  # as on a node without the model
    answer = Worker(Work.of("caption", model, settings, None), 1).ready()
    assert isinstance(answer, Stop)
    assert f"missing on Ray worker {socket.gethostname()}" in answer.error.message
    assert "mmcli models pull fake-echo" in (answer.error.hint or "")


def test_without_ray_installed_the_hint_names_the_extra(cli, fake_engine, tmp_path,
                                                        monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.delitem(sys.modules, "mmcli.ray", raising=False)
    (tmp_path / "a.txt").write_text("a")
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "a.txt"), *RAY)
    assert r.exit_code == 2
    assert "--ray needs Ray" in r.stderr and "pip install 'mmcli[ray]'" in r.stderr
    with pytest.raises(ImportError, match=r"pip install 'mmcli\[ray\]'"):
        import mmcli.ray  # noqa: F401


def test_ray_data_map_batches_gives_the_json_records(ray_session, speech_dir, tmp_path,
                                                     subprocess_env):
    import ray

    from mmcli.ray import Mmcli

    ray.data.DataContext.get_current().enable_progress_bars = False
    local = local_run(["transcribe", str(speech_dir), "--format", "jsonl"], subprocess_env)
    expected = [json.loads(line) for line in local.stdout.splitlines()]
    rows = [{"path": str(speech_dir / f"s{i}.wav")} for i in range(3)]
    rows.append({"path": str(tmp_path / "missing.wav")})
    out = ray.data.from_items(rows).map_batches(
        Mmcli, fn_constructor_kwargs={"task": "transcribe"}, concurrency=1, num_cpus=1,
        batch_size=2).take_all()
    got = {r["input"]: r for r in out}  # Ray Data keeps no row order unless told to
    assert sorted(got) == sorted(r["path"] for r in rows) and len(out) == 4
    for want in expected:
        row = got[want["input"]]
        assert row["text"] == want["text"] and row["error"] is None
        assert row["model"] == want["model"] and row["language"] == want["language"]
    assert "no such file" in got[rows[3]["path"]]["error"]["message"]
