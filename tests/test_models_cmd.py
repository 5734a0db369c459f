"""``mmcli models``: each source kind, pull/path/verify/rm, offline behaviour."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmcli import hub_download

BUNDLED = {
    "tiny.en-bundled": {"model", "config", "tokenizer", "vocabulary"},
    "en_US-joe-medium": {"model", "config"},
    "smollm2-135m": {"model"},
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_path_resolves_bundled_packages_offline(cli, name):
    r = cli("--offline", "models", "path", name)
    assert r.exit_code == 0, r.stderr
    roles = dict(line.split("\t") for line in r.stdout.splitlines())
    assert set(roles) == BUNDLED[name]
    for p in roles.values():
        assert Path(p).is_file() and "site-packages" in p


def test_bundled_status_and_verify(cli):
    rows = {r["name"]: r for r in json.loads(cli("models", "list", "--json").stdout)}
    for name in BUNDLED:
        assert rows[name]["status"] == "bundled"
    r = cli("models", "verify", "en_US-joe-medium")
    assert r.exit_code == 0
    assert all(line.split("\t")[2] == "no-hash" for line in r.stdout.splitlines())


def test_pull_hub_model_offline_exits_3_with_hint(cli):
    r = cli("models", "pull", "small")
    assert r.exit_code == 3
    assert "offline" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.stderr


def test_path_of_not_downloaded_model(cli):
    r = cli("models", "path", "smolvlm-256m")
    assert r.exit_code == 3
    assert "mmcli models pull smolvlm-256m" in r.stderr


def test_rm_refuses_package_models(cli):
    r = cli("models", "rm", "en_US-joe-medium")
    assert r.exit_code == 2
    assert "only removes its own cache copies" in r.stderr


def test_unknown_name(cli):
    r = cli("models", "path", "smolvlm-265m")
    assert r.exit_code == 2
    assert "did you mean smolvlm-256m" in r.stderr


# ------------------------------------------------------------------ url source over HTTP
PAYLOAD = b"onnx-bytes" * 5000


class Handler(http.server.BaseHTTPRequestHandler):
    truncate = False

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        body = PAYLOAD[: len(PAYLOAD) // 2] if Handler.truncate else PAYLOAD
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    Handler.truncate = False
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def url_manifest(tmp_path: Path, base: str, digest: str) -> Path:
    f = tmp_path / "url.toml"
    f.write_text(f"""
[models.urlsam]
engine = "sam-onnx"
tasks = ["segment"]
description = "served locally"
license = "MIT"
size_mb = 0.1
url = {{ encoder = "{base}/enc.onnx", decoder = "{base}/dec.onnx" }}
sha256 = {{ encoder = "{digest}", decoder = "{digest}" }}
""")
    return f


def cache_files(isolated: Path) -> list[Path]:
    return [p for p in (isolated / "cache").rglob("*") if p.is_file()]


def test_url_pull_good_hash(cli, tmp_path, server, monkeypatch, isolated):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    m = url_manifest(tmp_path, server, hashlib.sha256(PAYLOAD).hexdigest())
    r = cli("--models", str(m), "models", "pull", "urlsam")
    assert r.exit_code == 0, r.stderr
    paths = [Path(line.split("\t")[2]) for line in r.stdout.splitlines()]
    assert [p.read_bytes() == PAYLOAD for p in paths] == [True, True]
    assert "cached" in cli("--models", str(m), "models", "list", "--task", "segment").stdout
    assert all(line.split("\t")[2] == "ok" for line in
               cli("--models", str(m), "models", "verify", "urlsam").stdout.splitlines())
    # a re-run finishes instantly: nothing is fetched again
    Handler.truncate = True
    assert cli("--models", str(m), "models", "pull", "urlsam").exit_code == 0
    r = cli("--models", str(m), "models", "rm", "urlsam")
    assert r.exit_code == 0 and cache_files(isolated) == []


def test_url_pull_bad_hash_leaves_nothing(cli, tmp_path, server, monkeypatch, isolated):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    m = url_manifest(tmp_path, server, "0" * 64)
    r = cli("--models", str(m), "models", "pull", "urlsam")
    assert r.exit_code == 3
    assert "checksum mismatch" in r.stderr
    assert cache_files(isolated) == []


def test_url_pull_truncated_leaves_nothing(cli, tmp_path, server, monkeypatch, isolated):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    Handler.truncate = True
    m = url_manifest(tmp_path, server, hashlib.sha256(PAYLOAD).hexdigest())
    r = cli("--models", str(m), "models", "pull", "urlsam")
    assert r.exit_code == 3
    assert "download of" in r.stderr and "failed" in r.stderr
    assert cache_files(isolated) == []


def test_url_pull_interrupted_leaves_nothing(cli, tmp_path, server, monkeypatch, isolated):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    m = url_manifest(tmp_path, server, hashlib.sha256(PAYLOAD).hexdigest())

    class Boom:
        def __init__(self) -> None:
            self.n = 0

        def update(self, block: bytes) -> None:
            raise KeyboardInterrupt

        def hexdigest(self) -> str:
            return ""

    monkeypatch.setattr(hub_download.hashlib, "sha256", Boom)
    r = cli("--models", str(m), "models", "pull", "urlsam")
    assert r.exit_code == 130
    assert cache_files(isolated) == []


def test_url_pull_offline(cli, tmp_path, server, isolated):
    m = url_manifest(tmp_path, server, hashlib.sha256(PAYLOAD).hexdigest())
    r = cli("--models", str(m), "models", "pull", "urlsam")
    assert r.exit_code == 3 and "offline" in r.stderr


# ------------------------------------------------------------------ repo source in the HF cache
def fake_hub_snapshot(isolated: Path, repo: str, files: dict[str, bytes]) -> Path:
    """Lay out a repo the way huggingface-hub caches it (blobs named by sha256, refs/main)."""
    from tests.test_hub import hf_snapshot

    return hf_snapshot(isolated, repo, files, commit="a" * 40)


def test_repo_source_cached_path_verify_rm(cli, isolated):
    data = {"model.bin": b"whisper", "config.json": b"{}", "tokenizer.json": b"{}",
            "vocabulary.txt": b"a"}
    snap = fake_hub_snapshot(isolated, "Systran/faster-whisper-tiny", data)
    rows = {r["name"]: r for r in json.loads(cli("models", "list", "--json").stdout)}
    assert rows["tiny"]["status"] == "cached"
    r = cli("models", "path", "tiny")
    assert r.exit_code == 0
    assert f"vocabulary\t{snap / 'vocabulary.txt'}" in r.stdout  # the glob role resolved
    r = cli("models", "verify", "tiny")
    assert r.exit_code == 0 and r.stdout.count("\tok\t") == 4
    (snap / "model.bin").resolve().write_bytes(b"tampered")
    r = cli("models", "verify", "tiny")
    assert r.exit_code == 3 and "mismatch" in r.stdout
    r = cli("models", "rm", "tiny")
    assert r.exit_code == 0
    assert not snap.exists()
    assert cli("models", "path", "tiny").exit_code == 3
