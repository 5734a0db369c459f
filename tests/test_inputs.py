"""Input discovery, sniffing, shards; atomic writes and sidecar paths."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcli.atomic import atomic_write
from mmcli.errors import UsageError
from mmcli.inputs import discover, in_shard, mark_collisions, parse_shard, sniff
from mmcli.outputs import sidecar_path

MAGIC = {
    b"\xff\xd8\xff\xe0": "image", b"\x89PNG\r\n\x1a\n": "image", b"GIF89a": "image",
    b"RIFF\x00\x00\x00\x00WEBP": "image", b"RIFF\x00\x00\x00\x00WAVE": "audio",
    b"ID3\x04": "audio", b"fLaC": "audio", b"OggS": "audio", b"\xff\xfb\x90": "audio",
    b"\x00\x00\x00\x18ftypmp42": "video", b"\x00\x00\x00\x18ftypM4A ": "audio",
    b"\x1a\x45\xdf\xa3": "video", b"%PDF": None, b"hello": None,
}


@pytest.mark.parametrize(("head", "kind"), list(MAGIC.items()))
def test_sniff(head, kind):
    assert sniff(head) == kind


def test_renamed_file_found_by_content_and_fake_extension_kept(tmp_path):
    (tmp_path / "photo").write_bytes(b"\xff\xd8\xff" + b"x" * 10)  # no extension, real JPEG
    (tmp_path / "fake.jpg").write_text("not an image")  # extension says image: kept, will fail
    (tmp_path / "notes.txt").write_text("text")
    names = [i.path.name for i in discover([str(tmp_path)], {"image"})]
    assert names == ["fake.jpg", "photo"]


def test_dedup_and_sort(tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(b"\x89PNG\r\n\x1a\n")
    items = discover([str(a), str(tmp_path), str(tmp_path / "*.png")], {"image"})
    assert len(items) == 1


def test_unreadable_file_is_listed_and_fails_later(tmp_path):
    p = tmp_path / "locked.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n")
    os.chmod(p, 0)
    try:
        items = discover([str(p)], {"image"})
        assert len(items) == 1 and items[0].error is None
        if os.geteuid() != 0:  # root reads anything
            with pytest.raises(PermissionError):
                items[0].read_bytes()
    finally:
        os.chmod(p, 0o644)


def test_stdin_paths_vs_bytes(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    items = discover(["-"], {"audio"}, stdin=io.BytesIO(f"{a}\n".encode()), stdin_bytes=True)
    assert [i.path for i in items] == [a]
    items = discover(["-"], {"audio"}, stdin=io.BytesIO(a.read_bytes()), stdin_bytes=True)
    assert items[0].path is None and items[0].data == a.read_bytes()
    with pytest.raises(UsageError):
        discover(["-"], {"audio"}, stdin=io.BytesIO(b"\xff\xfe\x00binary"), stdin_bytes=False)


@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=60, unique=True),
       st.integers(min_value=1, max_value=7))
def test_shards_are_a_partition(keys, n):
    owners = [[k for k in range(n) if in_shard(key, (k, n))] for key in keys]
    assert all(len(o) == 1 for o in owners)


@pytest.mark.parametrize("text", ["1", "a/b", "2/2", "-1/2", "0/0"])
def test_bad_shard(text):
    with pytest.raises(UsageError):
        parse_shard(text)


def test_atomic_write_failure_leaves_old_content(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_sidecar_never_escapes(tmp_path):
    from mmcli.inputs import InputItem

    item = InputItem(display="x", path=Path("x"), rel=Path("../../etc/passwd"))
    with pytest.raises(UsageError):
        sidecar_path(tmp_path / "out", item, ".txt")
    ok = InputItem(display="x", path=Path("x"), rel=Path("sub/a.png"))
    assert sidecar_path(tmp_path / "out", ok, ".txt") == (tmp_path / "out/sub/a.png.txt").resolve()


def test_files_named_one_by_one_keep_their_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    items = discover(["a/x.png", "./b/x.png", "a/*.png"], {"image"})
    assert [str(i.rel) for i in items] == ["a/x.png", "b/x.png"]
    mark_collisions(items)
    assert all(i.error is None for i in items)


def test_output_name_collisions_are_errors_not_overwrites(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    items = discover([str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"),
                      str(tmp_path / "a"), str(tmp_path / "b")], {"image"})
    mark_collisions(items)
    assert items[0].error is None
    assert "already used by" in (items[1].error or "")
    assert len(items) == 2  # each file also came through its folder: deduplicated


def test_unreadable_folder_is_named_not_skipped(tmp_path, monkeypatch):
    """os.walk skips folders it cannot list unless asked; discover reports them (root can read
    everything here, so the refusal is simulated the way os.walk reports it)."""
    import pytest

    from mmcli import inputs
    from mmcli.errors import UsageError

    def walk(top, onerror=None):  # type: ignore[no-untyped-def]
        onerror(PermissionError(13, "Permission denied", str(top)))
        return iter(())

    monkeypatch.setattr(inputs.os, "walk", walk)
    with pytest.raises(UsageError, match=r"cannot be read: Permission denied"):
        discover([str(tmp_path)], {"audio"})
