"""Writer's ``files`` hook: binary and multiple sidecars per record, each written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmcli.inputs import InputItem
from mmcli.outputs import Writer
from mmcli.records import ErrorInfo, Record, internal


@dataclass
class Rec(Record):
    payload: bytes = internal(b"")


def _files(record: Record, fmt: str) -> list[tuple[str, bytes | str]]:
    assert isinstance(record, Rec)
    return [(".wav", record.payload), (".json", record.to_json())]


def test_files_hook_writes_every_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "out"
    item = InputItem(display="a/b.txt", path=tmp_path / "b.txt", rel=Path("sub/b.txt"))
    w = Writer("json", output_dir=out, files=_files)
    w.write(Rec(input="a/b.txt", task="speak", payload=b"RIFF\x00\x01"), item)
    w.write(Rec(input="a/b.txt", task="speak", error=ErrorInfo("X", "bad")), item)
    w.close()
    assert (out / "sub" / "b.txt.wav").read_bytes() == b"RIFF\x00\x01"
    doc = (out / "sub" / "b.txt.json").read_text()
    assert '"task": "speak"' in doc and "payload" not in doc
    assert [p.name for p in w.written] == ["b.txt.wav", "b.txt.json"]
    assert sorted(p.name for p in (out / "sub").iterdir()) == ["b.txt.json", "b.txt.wav"]


def test_default_is_one_text_sidecar(tmp_path: Path) -> None:
    item = InputItem(display="x", path=tmp_path / "x", rel=Path("x"))
    w = Writer("text", output_dir=tmp_path / "o", suffix=".txt")
    w.write(Rec(input="x", task="caption"), item)
    assert (tmp_path / "o" / "x.txt").read_text() == "\n"


def test_atomic_write_follows_the_umask(tmp_path: Path) -> None:
    import os

    from mmcli.atomic import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_stale_temps_of_dead_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    import os

    from mmcli.atomic import clean_stale_temps

    dead = _dead_pid()
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / f".a.txt.{dead}.abcd1234.tmp"
    live = tmp_path / "sub" / f".b.txt.{os.getpid()}.abcd1234.tmp"
    other = tmp_path / "sub" / ".notes.tmp"  # not one of ours: left alone
    for p in (stale, live, other):
        p.write_text("x")
    assert clean_stale_temps(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
