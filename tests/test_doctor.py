"""``mmcli doctor`` reports engines, GPU offload and config honestly."""

from __future__ import annotations

import json

from tests.vision_fixtures import tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401


def test_doctor_json(cli):
    r = cli("--offline", "doctor", "--json")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    assert set(rep["engines"]) == {"llama", "whisper", "piper", "sam-onnx"}
    assert all(e["ok"] for e in rep["engines"].values()), rep["engines"]
    assert rep["engines"]["llama"]["gpu_offload"] in (True, False)
    assert "CPUExecutionProvider" in rep["engines"]["sam-onnx"]["providers"]
    assert isinstance(rep["engines"]["whisper"]["cuda_devices"], int)
    assert rep["offline"] is True
    assert rep["manifest_layers"][0].endswith("models.toml")


def test_doctor_text(cli):
    r = cli("doctor")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0].startswith("python")
    assert any(line.startswith("gpu") for line in r.stdout.splitlines())


def test_doctor_reports_broken_manifest_without_failing(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.x]\n")
    r = cli("--models", str(bad), "doctor")
    assert r.exit_code == 0
    assert "manifest    ERROR" in r.stdout


def test_doctor_device_lines_match_the_engine_errors(cli):
    """doctor words a missing accelerator exactly as ``--device`` does (``mmcli.devices``)."""
    rep = json.loads(cli("doctor", "--json").stdout)
    for probe in rep["engines"].values():
        assert set(probe["devices"]) == {"auto", "cpu", "cuda", "metal"}
        assert probe["devices"]["cpu"]["device"] == "cpu"
    piper_cuda = rep["engines"]["piper"]["devices"]["cuda"]
    if "error" not in piper_cuda:
        return  # this onnxruntime has CUDA
    text = cli("doctor").stdout
    assert f"{piper_cuda['error']}; {piper_cuda['hint']}" in text
    speak = cli("--device", "cuda", "speak", "hi", "--raw")
    assert speak.exit_code == 3
    assert f"error: {piper_cuda['error']}\nhint: {piper_cuda['hint']}" in speak.stderr


def test_doctor_says_which_tasks_run_offline_now_and_with_what(cli):
    rep = json.loads(cli("--offline", "doctor", "--json").stdout)
    now = rep["tasks_offline"]
    assert {t: v["model"] for t, v in now.items()} == {
        "caption": None, "vqa": None, "transcribe": "tiny.en-bundled",
        "speak": "en_US-joe-medium", "segment": None, "chat": "smollm2-135m"}
    assert now["caption"]["fix"] == "mmcli models pull smolvlm-256m"
    assert now["segment"]["fix"] == "mmcli models pull mobilesam"
    assert now["segment"]["skipped"] == [{"model": "mobilesam", "reason": "not downloaded"},
                                         {"model": "sam-vit-b-quant", "reason": "not downloaded"}]
    assert now["chat"] == {"model": "smollm2-135m", "engine": "llama", "fix": None, "skipped": []}
    lines = cli("--offline", "doctor").stdout.splitlines()
    at = lines.index("runs now    caption     none — `mmcli models pull smolvlm-256m`")
    assert lines[at + 1:at + 6] == [
        "            vqa         none — `mmcli models pull smolvlm-256m`",
        "            transcribe  tiny.en-bundled",
        "            speak       en_US-joe-medium",
        "            segment     none — `mmcli models pull mobilesam`",
        "            chat        smollm2-135m"]


def test_doctor_skips_a_local_default_whose_engine_is_missing(cli, tmp_path):
    from mmcli import engines

    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / "v.onnx").write_bytes(b"onnx")
    m = tmp_path / "m.toml"
    m.write_text("""
[models.ghost-voice]
engine = "ghost"
tasks = ["speak"]
description = "a local voice for an engine that is not installed"
license = "MIT"
size_mb = 1
path = "voice"
files = { model = "v.onnx" }

[defaults]
speak = ["ghost-voice", "en_US-lessac-medium"]
""")
    engines.register(engines.EngineSpec("ghost", "ghost_engine:Ghost", frozenset({"speak"}),
                                        ("ghost_engine_pkg",), "pip install ghost-engine"))
    try:
        speak = json.loads(cli("--models", str(m), "doctor", "--json").stdout)["tasks_offline"]
    finally:
        engines.unregister("ghost")
    assert speak["speak"]["model"] is None
    assert speak["speak"]["skipped"][0] == {
        "model": "ghost-voice", "reason": "engine 'ghost' needs ghost_engine_pkg"}
    assert speak["speak"]["fix"] == "pip install ghost-engine"  # a download would not help


def _vlm_copy(src, dst, mmproj_bytes: bytes):
    """A copy of the tiny VLM's manifest and text model with a different mmproj file."""
    dst.mkdir()
    (dst / "tiny-vlm.gguf").write_bytes((src / "tiny-vlm.gguf").read_bytes())
    (dst / "tiny-vlm-mmproj.gguf").write_bytes(mmproj_bytes)
    manifest = dst / "m.toml"
    manifest.write_text((src / "tiny-vlm.toml").read_text().replace(str(src), str(dst)))
    return manifest


def test_doctor_shows_each_local_vlm_projector_and_what_loads(cli, tiny_vlm_manifest,  # noqa: F811
                                                              tmp_path):
    src = tiny_vlm_manifest.parent
    rep = json.loads(cli("--models", str(tiny_vlm_manifest), "doctor", "--json").stdout)
    assert 0 < rep["vlms"]["tiny-vlm"].pop("load_s") < 5
    assert rep["vlms"] == {"tiny-vlm": {  # tiny-text has no mmproj; smolvlm is not downloaded
        "mmproj": str(src / "tiny-vlm-mmproj.gguf"), "projector": {"vision": "mlp", "audio": None},
        "loads": {"vision": True, "audio": False}, "error": None}}
    text = cli("--models", str(tiny_vlm_manifest), "doctor").stdout.splitlines()
    assert "vision      tiny-vlm: projector mlp; vision loads; no audio" in text
    # a projector type this llama.cpp does not know: named, and the loader's reason
    good = (src / "tiny-vlm-mmproj.gguf").read_bytes()
    mlp = b"\x03\x00\x00\x00\x00\x00\x00\x00mlp"  # the length-prefixed value of the key
    assert good.count(mlp) == 1
    odd = _vlm_copy(src, tmp_path / "odd", good.replace(mlp, mlp[:-3] + b"xyz"))
    result = cli("--models", str(odd), "doctor")
    assert result.exit_code == 0
    line = next(x for x in result.stdout.splitlines() if x.startswith("vision"))
    assert line.startswith("vision      tiny-vlm: projector xyz; vision DOES NOT LOAD; no audio; ")
    assert "unknown projector type: xyz" in line
    cut = _vlm_copy(src, tmp_path / "cut", good[:200])  # the header ends mid-way
    vlm = json.loads(cli("--models", str(cut), "doctor", "--json").stdout)["vlms"]["tiny-vlm"]
    assert vlm["projector"] is None and vlm["loads"] == {"vision": False, "audio": False}
    assert "is not a valid GGUF file" in vlm["error"]
