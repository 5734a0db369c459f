"""mmcli.hub, the one model store: each source kind, offline rules, verify, remove, no cycles."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mmcli import hub, hub_download, manifest, pins
from mmcli.errors import ModelUnavailableError, UsageError
from mmcli.manifest import ModelEntry
from mmcli.settings import Settings

OFFLINE = Settings(offline=True)
ONLINE = Settings(offline=False, quiet=True)
VOICE = {"model": "v.onnx", "config": "v.onnx.json"}
COMMIT = "c" * 40


def entry(tmp_path: Path, name: str = "m", **source: Any) -> ModelEntry:
    """A piper entry with the given source keys (validated like a manifest table)."""
    table = {"engine": "piper", "tasks": ["speak"], "description": "d", "license": "MIT",
             "size_mb": 1, **source}
    if "url" not in source:
        table.setdefault("files", dict(VOICE))
    return manifest.parse_entry(tmp_path / "models.toml", name, table)


def voice_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "v.onnx").write_bytes(b"onnx")
    (folder / "v.onnx.json").write_text("{}")


def hf_snapshot(isolated: Path, repo: str, files: dict[str, bytes],
                commit: str = COMMIT) -> Path:
    """A repo laid out like huggingface-hub's cache: blobs by sha256, snapshot symlinks, refs."""
    root = isolated / "hf" / "hub" / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    (root / "blobs").mkdir(exist_ok=True)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / name).symlink_to(blob)
    return snap


def url_entry(tmp_path: Path, data: bytes = b"onnx") -> ModelEntry:
    digest = hashlib.sha256(data).hexdigest()
    return manifest.parse_entry(tmp_path / "models.toml", "u", {
        "engine": "sam-onnx", "tasks": ["segment"], "description": "d", "license": "MIT",
        "size_mb": 1, "url": {"encoder": "https://example.invalid/enc.onnx",
                              "decoder": "https://example.invalid/dec.onnx"},
        "sha256": {"encoder": digest, "decoder": digest}})


def put_url_blobs(e: ModelEntry, data: bytes = b"onnx") -> dict[str, Path]:
    paths = {}
    for role, name in e.roles.items():
        p = hub.url_blob_path(e.sha256[role], name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths[role] = p
    return paths


@pytest.fixture
def no_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any download attempt fails the test (there is no network here anyway)."""
    def refuse(e: ModelEntry, settings: Settings) -> dict[str, Path]:
        raise AssertionError(f"tried to download {e.name}")

    monkeypatch.setattr(hub, "fetch", refuse)


# ------------------------------------------------------------------ package
def test_package_present(tmp_path, monkeypatch, no_fetch):
    voice_files(tmp_path / "site" / "fake_voice_pkg")
    (tmp_path / "site" / "fake_voice_pkg" / "__init__.py").write_text("raise ImportError\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    e = entry(tmp_path, package="fake-voice-pkg")
    files = hub.ensure_local(e, OFFLINE)
    assert files == {"model": tmp_path / "site" / "fake_voice_pkg" / "v.onnx",
                     "config": tmp_path / "site" / "fake_voice_pkg" / "v.onnx.json"}
    assert hub.status(e) == "bundled" and hub.is_local(e)  # found without importing it


def test_package_missing(tmp_path, no_fetch):
    e = entry(tmp_path, package="no-such-voice-pkg")
    assert hub.status(e) == "missing"
    for settings in (OFFLINE, ONLINE):  # online or not, nothing is downloaded for a package
        with pytest.raises(ModelUnavailableError, match="package 'no-such-voice-pkg'") as err:
            hub.ensure_local(e, settings)
        assert err.value.hint is not None and "pip install no-such-voice-pkg" in err.value.hint


# ------------------------------------------------------------------ path
def test_path_present(tmp_path, no_fetch):
    voice_files(tmp_path / "voice")
    e = entry(tmp_path, path="voice")  # relative to the manifest file
    assert hub.ensure_local(e, OFFLINE)["model"] == tmp_path / "voice" / "v.onnx"
    assert hub.status(e) == "local"


def test_path_missing_names_the_file(tmp_path, no_fetch):
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / "v.onnx").write_bytes(b"onnx")
    e = entry(tmp_path, path="voice")
    assert hub.status(e) == "missing"
    with pytest.raises(ModelUnavailableError, match=r"v\.onnx\.json not found under") as err:
        hub.ensure_local(e, ONLINE)
    assert err.value.hint == f"fix 'path' in {tmp_path / 'models.toml'}"
    gone = entry(tmp_path, path="gone")
    with pytest.raises(ModelUnavailableError, match="gone does not exist"):
        hub.ensure_local(gone, OFFLINE)


# ------------------------------------------------------------------ repo (HF cache)
def test_repo_cached_by_ref_and_by_commit(tmp_path, isolated, no_fetch):
    snap = hf_snapshot(isolated, "org/voices", {"v.onnx": b"onnx", "v.onnx.json": b"{}"})
    by_ref = entry(tmp_path, repo="org/voices", revision="main")
    assert hub.ensure_local(by_ref, OFFLINE) == {"model": snap / "v.onnx",
                                                  "config": snap / "v.onnx.json"}
    assert hub.status(by_ref) == "cached"
    assert hub.base_dir(entry(tmp_path, repo="org/voices", revision=COMMIT)) == snap
    assert hub.hf_snapshot_dir("org/voices", "v2") is None  # no such ref


def test_repo_not_downloaded(tmp_path, no_fetch):
    e = entry(tmp_path, repo="org/absent", revision="main")
    assert hub.status(e) == "not downloaded"
    with pytest.raises(ModelUnavailableError, match="not downloaded and mmcli is offline") as err:
        hub.ensure_local(e, OFFLINE)
    assert err.value.hint is not None and "mmcli models pull m" in err.value.hint
    with pytest.raises(ModelUnavailableError, match="'m' is not downloaded$"):
        hub.ensure_local(e, ONLINE, download=False)  # `mmcli models path`


def test_repo_online_fetches_and_checks_the_pin(tmp_path, isolated, monkeypatch):
    from mmcli import hub_download

    monkeypatch.setattr(hub_download, "unreachable", lambda url: None)
    calls: list[tuple[str, str, list[str]]] = []

    def fake_pull(name: str, repo: str, revision: str, patterns: list[str],
                  settings: Settings) -> None:
        calls.append((repo, revision, patterns))
        hf_snapshot(isolated, repo, {"v.onnx": b"onnx", "v.onnx.json": b"{}"})

    monkeypatch.setattr(hub_download, "pull_repo", fake_pull)
    good = hashlib.sha256(b"onnx").hexdigest()
    e = entry(tmp_path, repo="org/voices", revision="main", sha256={"model": good})
    assert hub.ensure_local(e, ONLINE)["model"].read_bytes() == b"onnx"
    assert calls == [("org/voices", "main", ["v.onnx", "v.onnx.json"])]
    hub.remove(e)
    bad = entry(tmp_path, repo="org/voices", revision="main", sha256={"model": "0" * 64})
    with pytest.raises(ModelUnavailableError, match="checksum mismatch for 'm' file v.onnx"):
        hub.ensure_local(bad, ONLINE)


# ------------------------------------------------------------------ url (mmcli's blob cache)
def test_url_blob_present(tmp_path, no_fetch):
    e = url_entry(tmp_path)
    paths = put_url_blobs(e)
    assert hub.ensure_local(e, OFFLINE) == paths
    assert hub.status(e) == "cached"


def test_url_offline_missing(tmp_path, no_fetch):
    e = url_entry(tmp_path)
    with pytest.raises(ModelUnavailableError, match="'u' is not downloaded and mmcli is offline"):
        hub.ensure_local(e, OFFLINE)


# ------------------------------------------------------------------ verify
def test_verify_url_ok_and_mismatch(tmp_path):
    e = url_entry(tmp_path)
    paths = put_url_blobs(e)
    assert [s for _, s, _ in hub.verify(e)] == ["ok", "ok"]
    paths["decoder"].write_bytes(b"tampered")
    assert dict((r, s) for r, s, _ in hub.verify(e)) == {"encoder": "ok", "decoder": "mismatch"}


def test_verify_repo_uses_lfs_blob_names(tmp_path, isolated):
    snap = hf_snapshot(isolated, "org/voices", {"v.onnx": b"onnx", "v.onnx.json": b"{}"})
    e = entry(tmp_path, repo="org/voices", revision="main")
    assert [s for _, s, _ in hub.verify(e)] == ["ok", "ok"]
    (snap / "v.onnx").resolve().write_bytes(b"tampered")
    assert [s for _, s, _ in hub.verify(e)] == ["mismatch", "ok"]


def test_verify_missing_and_no_hash(tmp_path):
    voice_files(tmp_path / "voice")
    assert [s for _, s, _ in hub.verify(entry(tmp_path, path="voice"))] == ["no-hash"] * 2
    assert hub.verify(entry(tmp_path, path="gone")) == [("model", "missing", "-"),
                                                        ("config", "missing", "-")]


# ------------------------------------------------------------------ pins: a changed cache is caught
@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file mmcli hashes, in order."""
    seen: list[Path] = []
    real = pins.sha256_file

    def spy(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(pins, "sha256_file", spy)
    return seen


def test_pinned_cache_file_is_hashed_once_then_trusted_while_unchanged(tmp_path, hashed,
                                                                      no_fetch):
    e = url_entry(tmp_path)
    paths = put_url_blobs(e)
    assert hub.ensure_local(e, OFFLINE) == paths
    assert sorted(hashed) == sorted(paths.values())  # the first use hashes each file once
    hashed.clear()
    hub.ensure_local(e, OFFLINE)
    hub.from_entry(e, paths)
    assert hashed == []  # unchanged since: the record is enough
    record = json.loads(pins.record_path().read_text())
    st = paths["encoder"].stat()
    assert record["files"][str(paths["encoder"])] == [
        st.st_size, st.st_mtime_ns, hashlib.sha256(b"onnx").hexdigest()]
    assert [p.name for p in pins.record_path().parent.iterdir() if p.is_file()] == \
        ["verified.json"]  # written atomically: no temp file left beside it


@pytest.mark.parametrize("tamper", ["content", "same size, new mtime"])
def test_a_tampered_cache_is_caught_before_the_model_loads(tmp_path, no_fetch, tamper):
    e = url_entry(tmp_path)
    paths = put_url_blobs(e)
    hub.ensure_local(e, OFFLINE)  # verified and recorded
    before = paths["decoder"].stat()
    paths["decoder"].write_bytes(b"evil weights" if tamper == "content" else b"evil")
    os.utime(paths["decoder"], ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    for load in (lambda: hub.ensure_local(e, OFFLINE), lambda: hub.from_entry(e, paths)):
        with pytest.raises(ModelUnavailableError,
                           match="model 'u': cached file dec.onnx no longer matches") as err:
            load()
        assert err.value.exit_code == 3
        assert err.value.hint == "run `mmcli models rm u` then `mmcli models pull u`"


def test_a_tampered_hub_blob_is_caught_and_unpinned_files_cost_nothing(tmp_path, isolated,
                                                                      hashed, no_fetch):
    snap = hf_snapshot(isolated, "org/voices", {"v.onnx": b"onnx", "v.onnx.json": b"{}"})
    pinned = entry(tmp_path, repo="org/voices", revision="main",
                   sha256={"model": hashlib.sha256(b"onnx").hexdigest()})
    hub.ensure_local(pinned, OFFLINE)
    assert hashed == [snap / "v.onnx"]  # only the pinned role
    hashed.clear()
    hub.ensure_local(entry(tmp_path, repo="org/voices", revision="main"), OFFLINE)
    assert hashed == []
    (snap / "v.onnx").resolve().write_bytes(b"0nnx")
    with pytest.raises(ModelUnavailableError, match="cached file v.onnx no longer matches"):
        hub.ensure_local(pinned, OFFLINE)


def test_package_files_are_not_hashed_at_load_but_verify_checks_their_pins(tmp_path, monkeypatch,
                                                                          hashed, no_fetch):
    voice_files(tmp_path / "site" / "pinned_voice_pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    good = hashlib.sha256(b"onnx").hexdigest()
    e = entry(tmp_path, package="pinned-voice-pkg", sha256={"model": good})
    hub.ensure_local(e, OFFLINE)
    assert hashed == []  # pip owns these files; `models verify` checks them
    assert [s for _, s, _ in hub.verify(e)] == ["ok", "no-hash"]
    bad = entry(tmp_path, package="pinned-voice-pkg", sha256={"model": "1" * 64})
    assert [s for _, s, _ in hub.verify(bad)] == ["mismatch", "no-hash"]


def test_a_damaged_record_only_costs_a_rehash(tmp_path, hashed, no_fetch):
    e = url_entry(tmp_path)
    paths = put_url_blobs(e)
    pins.record_path().parent.mkdir(parents=True, exist_ok=True)
    pins.record_path().write_text("{not json")
    assert hub.ensure_local(e, OFFLINE) == paths
    assert len(hashed) == 2
    assert json.loads(pins.record_path().read_text())["version"] == pins.VERSION


def test_known_state_never_hashes(tmp_path, hashed):
    e = url_entry(tmp_path)
    paths = put_url_blobs(e)
    digest = hashlib.sha256(b"onnx").hexdigest()
    assert pins.known_state(paths["encoder"], digest) == "not verified"
    pins.check(paths, {"encoder": digest, "decoder": "2" * 64})
    hashed.clear()
    assert pins.known_state(paths["encoder"], digest) == "ok"
    assert pins.known_state(paths["decoder"], "2" * 64) == "mismatch"
    assert pins.known_state(paths["encoder"], None) == "not verified"
    assert hashed == []


# ------------------------------------------------------------------ an unreachable network
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_answers_in_a_moment():
    start = time.perf_counter()
    why = hub_download.unreachable(f"http://127.0.0.1:{closed_port()}/org/model")
    assert why is not None and "refused" in why.lower()
    assert time.perf_counter() - start < 2
    assert hub_download.host("https://example.invalid:8443/a/b") == "example.invalid:8443"


def test_unreachable_hub_fails_before_any_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setattr(hub_download, "pull_repo", lambda *a: pytest.fail("tried to download"))
    e = entry(tmp_path, repo="org/absent", revision="main")
    with pytest.raises(ModelUnavailableError, match=r"'m' is not downloaded and 127\.0\.0\.1:\d+ "
                                                    "cannot be reached") as err:
        hub.ensure_local(e, ONLINE)
    assert err.value.hint is not None and "mmcli models pull m" in err.value.hint


@pytest.mark.parametrize("verbose", [False, True])
def test_hub_logs_only_with_verbose(verbose):
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    with hub_download._hub_logs(verbose):
        assert logger.level == (level if verbose else logging.ERROR)
    assert logger.level == level


# ------------------------------------------------------------------ remove
def test_remove_refuses_package_and_path_and_touches_nothing(tmp_path):
    voice_files(tmp_path / "voice")
    for e in (entry(tmp_path, path="voice"), entry(tmp_path, package="mmcli")):
        with pytest.raises(UsageError, match="only removes its own cache copies"):
            hub.remove(e)
    assert sorted(p.name for p in (tmp_path / "voice").iterdir()) == ["v.onnx", "v.onnx.json"]


def test_remove_repo_keeps_blobs_of_other_revisions(tmp_path, isolated):
    files = {"v.onnx": b"onnx", "v.onnx.json": b"{}"}
    old = hf_snapshot(isolated, "org/voices", files, commit="b" * 40)
    new = hf_snapshot(isolated, "org/voices", {**files, "v.onnx": b"onnx2"})
    e = entry(tmp_path, repo="org/voices", revision="main")
    removed = hub.remove(e)
    assert new in removed and not new.exists()
    assert hub.local_files(entry(tmp_path, repo="org/voices", revision="b" * 40)) is not None
    assert (old / "v.onnx").read_bytes() == b"onnx" and (old / "v.onnx.json").exists()
    assert not (new.parent.parent / "refs" / "main").exists()
    with pytest.raises(UsageError, match="not in the cache"):
        hub.remove(e)


def test_remove_url_blobs(tmp_path):
    e = url_entry(tmp_path)
    paths = put_url_blobs(e)
    assert set(hub.remove(e)) == {p.parent for p in paths.values()}  # one folder per digest
    assert hub.status(e) == "not downloaded"


# ------------------------------------------------------------------ the import graph
MMCLI = Path(__file__).resolve().parents[1] / "mmcli"


def _mmcli_imports(path: Path) -> set[str]:
    """mmcli modules imported anywhere in ``path`` (lazy ones too), except TYPE_CHECKING bodies."""
    name = ".".join(path.relative_to(MMCLI.parent).with_suffix("").parts)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    walk(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parts + ([child.module] if child.module else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            walk(child)

    walk(ast.parse(path.read_text()))
    return {m for m in found if m.startswith("mmcli.")}


def _graph() -> dict[str, set[str]]:
    mods = {".".join(p.relative_to(MMCLI.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in MMCLI.rglob("*.py")}
    graph = {}
    for mod, path in mods.items():
        deps = set()
        for imp in _mmcli_imports(path):
            while imp and imp not in mods:
                imp = imp.rpartition(".")[0]
            if imp and imp != mod:
                deps.add(imp)
        graph[mod] = deps
    return graph


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo.extend(graph.get(mod, ()))
    return seen


def test_model_store_is_in_no_import_cycle():
    graph = _graph()
    for mod in ("mmcli.hub", "mmcli.hub_download", "mmcli.resolve", "mmcli.localmodel"):
        assert mod not in _reaches(graph, mod), f"{mod} is part of an import cycle"
    assert graph["mmcli.hub"] <= {"mmcli", "mmcli.manifest", "mmcli.settings", "mmcli.console",
                                  "mmcli.errors", "mmcli.records", "mmcli.hub_download",
                                  "mmcli.pins"}
    assert graph["mmcli.pins"] <= {"mmcli", "mmcli.atomic", "mmcli.settings"}
    assert "mmcli.hub" not in _reaches(graph, "mmcli.hub_download")
    assert not {"mmcli.modelstore", "mmcli.download"} & set(graph)
