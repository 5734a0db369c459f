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
