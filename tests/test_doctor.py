"""``mmcli doctor`` reports engines, GPU offload and config honestly."""

from __future__ import annotations

import json


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
