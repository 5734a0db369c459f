"""models.toml: the built-in entries, layering, strict validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmcli import manifest

EXPECTED = {
    "tiny.en-bundled", "en_US-joe-medium", "smollm2-135m",
    "tiny", "tiny.en", "base", "base.en", "small", "medium", "large-v3", "distil-large-v3",
    "large-v3-turbo",
    "smolvlm-256m", "smolvlm-500m", "smolvlm2-500m-video", "qwen2.5-vl-3b", "gemma-3-4b",
    "moondream2",
    "qwen2.5-0.5b", "qwen2.5-1.5b", "llama-3.2-1b", "llama-3.2-3b", "gemma-3-1b",
    "smollm2-360m", "smollm2-1.7b",
    "en_US-lessac-medium", "en_US-amy-medium", "en_US-ryan-high", "en_GB-cori-medium",
    "mobilesam", "sam-vit-b-quant",
}

ENTRY = """
[models.{name}]
engine = "whisper"
tasks = ["transcribe"]
description = "{desc}"
license = "MIT"
size_mb = 1
path = "{path}"
files = {{ model = "model.bin" }}
"""


def test_builtin_has_every_entry_and_defaults(cli):
    r = cli("models", "list", "--json")
    assert r.exit_code == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) == EXPECTED
    assert rows["smolvlm-256m"]["default_for"] == ["caption", "vqa"]
    assert rows["tiny.en-bundled"]["default_for"] == ["transcribe"]
    assert rows["en_US-joe-medium"]["default_for"] == ["speak"]
    assert rows["smollm2-135m"]["default_for"] == ["chat"]
    assert rows["mobilesam"]["default_for"] == ["segment"]
    for row in rows.values():
        assert row["license"] and row["size_mb"] >= 0 and row["description"]
        assert row["status"] in ("bundled", "missing", "cached", "not downloaded", "local")


def test_builtin_manifest_is_inside_the_package():
    path = manifest.builtin_path()
    assert path.is_file() and path.parent.name == "mmcli"


def test_task_filter_and_text_table(cli):
    r = cli("models", "list", "--task", "speak")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "TASKS", "ENGINE"]
    assert all("speak" in line for line in lines[1:])
    assert any(line.startswith("en_US-joe-medium") for line in lines)


def test_layers_later_wins(cli, tmp_path, monkeypatch, isolated):
    user = isolated / "config" / "mmcli"
    user.mkdir(parents=True)
    (user / "models.toml").write_text(ENTRY.format(name="tiny", desc="user layer", path=tmp_path))
    env_file = tmp_path / "env.toml"
    env_file.write_text(ENTRY.format(name="base", desc="env layer", path=tmp_path))
    monkeypatch.setenv("MMCLI_MODELS", str(env_file))
    cli_file = tmp_path / "cli.toml"
    cli_file.write_text(ENTRY.format(name="base", desc="cli layer", path=tmp_path))
    rows = {r["name"]: r for r in json.loads(cli("--models", str(cli_file), "models", "list",
                                                 "--json").stdout)}
    assert rows["tiny"]["description"] == "user layer"
    assert rows["base"]["description"] == "cli layer"
    assert rows["small"]["source"].startswith("repo:")  # untouched built-in entries stay
    layers = manifest.load(cli_file).layers
    assert [p.name for p in layers] == ["models.toml", "models.toml", "env.toml", "cli.toml"]


BAD = [
    ('[models.x]\nengine = "whisper"\ntasks = ["transcribe"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\npath = "."\nfiles = { model = "m" }\ncolour = "red"\n',
     "model 'x': unknown key 'colour'"),
    ('[models.x]\nengine = "whisper"\ntasks = ["transcribe"]\nlicense = "MIT"\nsize_mb = 1\n'
     'path = "."\nfiles = { model = "m" }\n', "model 'x': missing key 'description'"),
    ('[models.x]\nengine = "tensorflow"\ntasks = ["transcribe"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\npath = "."\nfiles = { model = "m" }\n',
     "model 'x': key 'engine': unknown engine 'tensorflow'"),
    ('[models.x]\nengine = "whisper"\ntasks = ["dance"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\npath = "."\nfiles = { model = "m" }\n',
     "model 'x': key 'tasks': unknown task 'dance'"),
    ('[models.x]\nengine = "whisper"\ntasks = ["caption"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\npath = "."\nfiles = { model = "m" }\n',
     "engine 'whisper' cannot do 'caption'"),
    ('[models.x]\nengine = "whisper"\ntasks = ["transcribe"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\npath = "."\npackage = "p"\nfiles = { model = "m" }\n',
     "needs exactly one source key"),
    ('[models.x]\nengine = "sam-onnx"\ntasks = ["segment"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\nurl = { encoder = "https://e/x.onnx" }\n',
     "missing key 'sha256.encoder' (required for url)"),
    ('[models.x]\nengine = "whisper"\ntasks = ["transcribe"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\nrepo = "o/r"\nfiles = { model = "m" }\n',
     "missing key 'revision'"),
    ('[models.x]\nengine = "whisper"\ntasks = ["transcribe"]\ndescription = "d"\n'
     'license = "MIT"\nsize_mb = 1\nrepo = "o/r"\nrevision = "main"\nfiles = { model = "m" }\n'
     'sha256 = { model = "abc" }\n', "key 'sha256.model' is not a 64-hex-digit sha256"),
    ('[defaults]\ntranscribe = ["nope"]\n', "[defaults] transcribe: unknown model 'nope'"),
    ('[defaults]\nfly = ["tiny"]\n', "[defaults] key 'fly': unknown task"),
    ('[model.x]\n', "unknown top-level key 'model'"),
    ('[models.x\n', "invalid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_validation_errors_name_file_model_key(cli, tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    r = cli("--models", str(bad), "models", "list")
    assert r.exit_code == 2
    assert message in r.stderr
    if "[defaults]" not in message:
        assert str(bad) in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_missing_models_file(cli, tmp_path):
    r = cli("--models", str(tmp_path / "none.toml"), "models", "list")
    assert r.exit_code == 2
    assert "does not exist" in r.stderr


def test_relative_path_source_resolves_against_manifest(tmp_path: Path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.bin").write_bytes(b"x")
    f = tmp_path / "rel.toml"
    f.write_text(ENTRY.format(name="rel", desc="d", path="m"))
    entry = manifest.load(f).models["rel"]
    assert entry.path == tmp_path / "m"


def test_a_manifest_that_is_not_utf8_is_a_config_error_with_the_offset(cli, tmp_path):
    """Was a UnicodeDecodeError traceback (exit 1) that also broke `mmcli doctor`."""
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'# models\n[defaults]\nx = "caf\xe9"\n')
    r = cli("--models", str(bad), "models", "list")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    assert "not UTF-8" in r.stderr and "byte 0xe9 at offset 28" in r.stderr and "line 3" in r.stderr
    doctor = cli("--models", str(bad), "doctor")
    assert doctor.exit_code == 0 and "not UTF-8" in doctor.stdout + doctor.stderr


HTTP_URL = """
[models.plain-sam]
engine = "sam-onnx"
tasks = ["segment"]
description = "d"
license = "MIT"
size_mb = 1
url = {{ encoder = "{scheme}://mirror.example/sam/enc.onnx", decoder = "https://e/dec.onnx" }}
sha256 = {{ {pins} }}
"""


def test_plain_http_without_a_pin_is_refused_naming_model_file_and_fix(cli, tmp_path):
    bad = tmp_path / "http.toml"
    bad.write_text(HTTP_URL.format(scheme="http", pins=f'decoder = "{"a" * 64}"'))
    r = cli("--models", str(bad), "models", "list")
    assert r.exit_code == 2 and r.stdout == ""
    error, hint = r.stderr.splitlines()
    assert error == (f"mmcli: error: {bad}: model 'plain-sam': file enc.onnx (url.encoder) is "
                     "plain http:// and has no sha256 pin, so anyone on the way could swap it")
    assert hint == ("hint: add sha256.encoder = \"<its 64-hex sha256>\" to model 'plain-sam' "
                    "(or use an https:// URL and pin it)")


def test_plain_http_with_a_pin_is_accepted(tmp_path):
    ok = tmp_path / "http.toml"
    ok.write_text(HTTP_URL.format(scheme="http",
                                  pins=f'encoder = "{"b" * 64}", decoder = "{"a" * 64}"'))
    entry = manifest.load(ok).models["plain-sam"]
    assert entry.url["encoder"].startswith("http://") and entry.sha256["encoder"] == "b" * 64


def test_bundled_models_pin_every_file():
    models = manifest.load().models
    for name in ("tiny.en-bundled", "en_US-joe-medium", "smollm2-135m"):
        assert set(models[name].sha256) == set(models[name].files), name
