"""The shared batch machinery, driven through the CLI with the fake engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.engine import FakeEngine


def make_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "a": root / "a.png",
        "b": root / "sub" / "b.jpg",
        "empty": root / "empty.wav",
    }
    files["a"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"a" * 10)
    files["b"].parent.mkdir(exist_ok=True)
    files["b"].write_bytes(b"\xff\xd8\xff" + b"b" * 20)
    files["empty"].write_bytes(b"")
    (root / "notes.pdf").write_bytes(b"%PDF-1.4 not a kind this task takes")
    (root / ".hidden.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return files


def test_single_input_text(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "18 bytes sha256:" + r.stdout.split("sha256:")[1]
    assert "\n" == r.stdout[-1] and r.stdout.count("\n") == 1


def test_folder_jsonl_partial_failure(cli, fake_engine, tmp_path):
    make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "in"), "--format", "jsonl")
    assert r.exit_code == 1
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [Path(x["input"]).name for x in lines] == ["a.png", "empty.wav", "b.jpg"]
    ok = [x for x in lines if x["error"] is None]
    bad = [x for x in lines if x["error"] is not None]
    assert len(ok) == 2 and len(bad) == 1
    assert bad[0]["error"] == {"type": "InputError", "message": "file is empty"}
    for rec in lines:  # the common record fields, always
        assert set(rec) >= {"input", "task", "model", "device", "timings", "error"}
        assert rec["model"]["name"] == "fake-echo"
        assert set(rec["timings"]) >= {"load_s", "run_s"}
    assert "empty.wav: file is empty" in r.stderr
    assert "2 done, 1 failed" in r.stderr
    assert FakeEngine.loads == 1  # one model load for the whole batch


def test_missing_file_is_a_per_input_error(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]),
            str(tmp_path / "nope.png"), "-f", "json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert isinstance(doc, list) and len(doc) == 2
    assert doc[1]["error"]["message"].endswith("no such file or directory")
    assert "Traceback" not in r.stderr


def test_json_single_object(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]), "-f", "json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["summary"].startswith("18 bytes")


def test_text_multiple_inputs_prefix(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]), str(files["b"]))
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0].startswith(f"{files['a']}: 18 bytes")


def test_glob_stdin_paths_and_bytes(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "in" / "**" / "*.jpg"))
    assert r.exit_code == 0 and r.stdout.startswith("23 bytes")
    r = cli("--models", str(fake_engine), "fake-caption", "-",
            input=f"{files['a']}\n\n{files['b']}\n")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2
    r = cli("--models", str(fake_engine), "fake-caption", "-", input=files["b"].read_bytes())
    assert r.exit_code == 0 and r.stdout.startswith("23 bytes")


def test_nothing_to_do_is_a_usage_error_that_says_what_was_searched(cli, fake_engine,
                                                                   tmp_path):
    """An unmatched glob, an empty folder, an empty stdin and an unreadable folder: exit 2
    with what was searched (was exit 0 with no message for folders and stdin)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.bin").write_bytes(b"\x00")  # not a kind the task takes
    base = ["--models", str(fake_engine), "fake-caption"]
    for args, stdin, said in [([str(tmp_path / "*.nothing")], None, "no files match"),
                              ([str(empty)], None, "a folder with no"),
                              (["-"], "", "standard input (it is empty)"),
                              (["-"], "\n\n", "standard input (it is empty)")]:
        r = cli(*base, *args, input=stdin)
        assert r.exit_code == 2, (args, r.stderr)
        assert r.stderr.startswith("mmcli: error: no input found: searched")
        assert said in r.stderr and "image" in r.stderr and r.stdout == ""
    files = make_files(tmp_path / "in")
    r = cli(*base, str(files["a"]), str(tmp_path / "*.nothing"))  # one empty among others
    assert r.exit_code == 0 and "no input in" in r.stderr and "no files match" in r.stderr


def test_unreadable_folder_is_reported(cli, fake_engine, tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        r = cli("--models", str(fake_engine), "fake-caption", str(locked))
    finally:
        locked.chmod(0o755)
    assert r.exit_code == 2 and "cannot be read" in r.stderr


def test_output_file_is_atomic_and_complete(cli, fake_engine, tmp_path):
    make_files(tmp_path / "in")
    out = tmp_path / "out" / "all.jsonl"
    out.parent.mkdir()  # -o creates no folder (a missing one is a usage error)
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "in"), "-f", "jsonl",
            "-o", str(out))
    assert r.exit_code == 1
    assert r.stdout == ""
    assert len(out.read_text().splitlines()) == 3
    assert [p.name for p in out.parent.iterdir()] == ["all.jsonl"]


def test_output_dir_sidecars_and_skip_existing(cli, fake_engine, tmp_path):
    make_files(tmp_path / "in")
    out = tmp_path / "side"
    args = ["--models", str(fake_engine), "fake-caption", str(tmp_path / "in"),
            "--output-dir", str(out)]
    r = cli(*args)
    assert r.exit_code == 1
    assert (out / "a.png.txt").read_text().startswith("18 bytes")
    assert (out / "sub" / "b.jpg.txt").is_file()
    assert not (out / "empty.wav.txt").exists()  # failures leave no sidecar: a rerun retries
    (out / "a.png.txt").write_text("kept")
    r = cli(*args, "--skip-existing", "--no-resume")  # without the journal's help
    assert (out / "a.png.txt").read_text() == "kept"
    assert "2 skipped" in r.stderr and "1 failed" in r.stderr
    assert not list(out.rglob(".*.tmp"))
    assert sorted(p.name for p in out.iterdir()) == [
        ".mmcli-journal.jsonl", ".mmcli.lock", "a.png.txt", "sub"]


def test_shards_partition_the_inputs(cli, fake_engine, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(12):
        (root / f"{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]) * (i + 1))
    seen: list[str] = []
    for k in range(3):
        r = cli("--models", str(fake_engine), "fake-caption", str(root), "--shard", f"{k}/3",
                "-f", "jsonl")
        assert r.exit_code == 0
        seen += [json.loads(x)["input"] for x in r.stdout.splitlines()]
    assert sorted(seen) == sorted(str(p) for p in root.iterdir())


def test_bad_shard_is_usage_error(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]), "--shard", "3/3")
    assert r.exit_code == 2
    assert "K must be between 0 and N-1" in r.stderr


def test_unknown_model_suggests(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]), "--model", "fake-ech")
    assert r.exit_code == 2
    assert "unknown model 'fake-ech'" in r.stderr and "did you mean fake-echo" in r.stderr


def test_no_inputs_is_usage_error(cli, fake_engine):
    r = cli("--models", str(fake_engine), "fake-caption")
    assert r.exit_code == 2 and "no inputs" in r.stderr


def test_keyboard_interrupt_exits_130(cli, fake_engine, tmp_path, monkeypatch):
    files = make_files(tmp_path / "in")

    def boom(self, data, upper=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeEngine, "describe", boom)
    r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]))
    assert r.exit_code == 130
    assert "interrupted" in r.stderr


def test_engine_closed_at_exit(cli, fake_engine, tmp_path):
    files = make_files(tmp_path / "in")
    closed: list[bool] = []
    orig = FakeEngine.close
    FakeEngine.close = lambda self: closed.append(True) or orig(self)  # type: ignore[method-assign]
    try:
        r = cli("--models", str(fake_engine), "fake-caption", str(files["a"]))
    finally:
        FakeEngine.close = orig  # type: ignore[method-assign]
    assert r.exit_code == 0 and closed == [True]


def test_same_named_inputs_never_overwrite_each_other(cli, fake_engine, tmp_path):
    for d, body in (("a", b"A" * 5), ("b", b"B" * 9)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    out = tmp_path / "out"
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "a" / "x.png"),
            str(tmp_path / "b" / "x.png"), "--output-dir", str(out))
    assert r.exit_code == 1
    assert (out / "x.png.txt").read_text().startswith("13 bytes")  # the first one, kept
    assert f"{tmp_path / 'b' / 'x.png'}: its output name x.png is already used by" in r.stderr


@pytest.mark.parametrize("name,starts", [("all.jsonl", '{"input"'), ("all.json", "[\n"),
                                         ("all.txt", "23 bytes")])
def test_format_follows_the_output_extension(cli, fake_engine, tmp_path, name, starts):
    make_files(tmp_path / "in")
    out = tmp_path / name
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "in"), "-o", str(out))
    assert out.read_text().startswith(starts) or starts in out.read_text(), r.stderr
    explicit = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "in"),
                   "-o", str(out), "-f", "text")  # --format given: it wins
    assert "bytes" in out.read_text() and explicit.stdout == ""


def test_output_dir_with_jsonl_prints_records_naming_their_sidecars(cli, fake_engine, tmp_path):
    make_files(tmp_path / "in")
    out = tmp_path / "out"
    r = cli("--models", str(fake_engine), "fake-caption", str(tmp_path / "in"), "-f", "jsonl",
            "--output-dir", str(out))
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 3 and all(rec["input"] for rec in lines)
    ok = [rec for rec in lines if rec["error"] is None]
    assert ok and all(len(rec["outputs"]) == 1 and rec["outputs"][0].endswith(".json")
                      for rec in ok)
    failed = [rec for rec in lines if rec["error"] is not None]
    assert all(rec["outputs"] == [] for rec in failed)
