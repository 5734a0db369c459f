"""Default fallback order and --model PATH recognition."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmcli import manifest, resolve
from mmcli.errors import ModelUnavailableError, UsageError
from mmcli.settings import Settings

TWO = """
[models.first]
engine = "piper"
tasks = ["speak"]
description = "d"
license = "MIT"
size_mb = 1
path = "{a}"
files = {{ model = "v.onnx", config = "v.onnx.json" }}

[models.second]
engine = "piper"
tasks = ["speak"]
description = "d"
license = "MIT"
size_mb = 1
repo = "rhasspy/piper-voices"
revision = "main"
files = {{ model = "x.onnx", config = "x.onnx.json" }}

[defaults]
speak = ["first", "second", "en_US-joe-medium"]
"""


def load(tmp_path: Path, a: Path) -> manifest.Manifest:
    f = tmp_path / "m.toml"
    f.write_text(TWO.format(a=a))
    return manifest.load(f)


def test_first_local_default_wins(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "v.onnx").write_bytes(b"x")
    (a / "v.onnx.json").write_text("{}")
    m = load(tmp_path, a)
    assert resolve.pick_default("speak", m, Settings(offline=True)).name == "first"


def test_skips_missing_to_next_local(tmp_path):
    m = load(tmp_path, tmp_path / "absent")
    # "second" is not downloaded; the bundled joe voice is present, so it wins over a pull
    assert resolve.pick_default("speak", m, Settings(offline=True)).name == "en_US-joe-medium"


def test_offline_nothing_local(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text(TWO.format(a=tmp_path / "absent").replace(', "en_US-joe-medium"', ""))
    with pytest.raises(ModelUnavailableError, match="no model for 'speak' is available offline"):
        resolve.pick_default("speak", manifest.load(f), Settings(offline=True))


def test_online_pulls_first_downloadable(tmp_path, monkeypatch):
    f = tmp_path / "m.toml"
    f.write_text(TWO.format(a=tmp_path / "absent").replace(', "en_US-joe-medium"', ""))
    pulled: list[str] = []

    def fake_pull(entry, settings):
        pulled.append(entry.name)
        return {"model": tmp_path / "x.onnx", "config": tmp_path / "x.onnx.json"}

    from mmcli import hub

    monkeypatch.setattr(hub, "fetch", fake_pull)
    got = resolve.pick_default("speak", manifest.load(f), Settings(offline=False))
    assert pulled == ["second"] and got.name == "second"


def test_local_paths(tmp_path):
    m = manifest.load(None)
    s = Settings(offline=True)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve.resolve(str(gguf), "chat", m, s).engine == "llama"
    with pytest.raises(UsageError, match="no mmproj"):
        resolve.resolve(str(gguf), "caption", m, s)
    proj = tmp_path / "p.gguf"
    proj.write_bytes(b"GGUF")
    vlm = resolve.resolve(str(gguf), "caption", m, s, mmproj=proj)
    assert vlm.engine == "llama-mtmd" and vlm.files["mmproj"] == proj
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"x")
    assert resolve.resolve(str(ct2), "transcribe", m, s).engine == "whisper"
    voice = tmp_path / "v.onnx"
    voice.write_bytes(b"x")
    with pytest.raises(UsageError, match="needs v.onnx.json"):
        resolve.resolve(str(voice), "speak", m, s)
    (tmp_path / "v.onnx.json").write_text("{}")
    assert resolve.resolve(str(voice), "speak", m, s).engine == "piper"
    dec = tmp_path / "d.onnx"
    dec.write_bytes(b"x")
    sam = resolve.resolve(str(voice), "segment", m, s, decoder=dec)
    assert sam.engine == "sam-onnx" and set(sam.files) == {"encoder", "decoder"}
    with pytest.raises(UsageError, match="does not exist"):
        resolve.resolve(str(tmp_path / "none.gguf"), "chat", m, s)


def test_named_model_wrong_task():
    with pytest.raises(UsageError, match="cannot do 'caption'"):
        resolve.resolve("tiny.en-bundled", "caption", manifest.load(None), Settings())


def test_offline_hint_names_the_bundled_package_only_where_one_exists(cli, tmp_path):
    img = tmp_path / "x.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n")
    r = cli("caption", str(img))
    assert r.exit_code == 3
    assert "mmcli models pull smolvlm-256m" in r.stderr and "pip install" not in r.stderr
