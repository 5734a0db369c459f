"""Facts for ``mmcli doctor``: each probe imports one engine and reports, never raises."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys
from typing import Any

from mmcli import engines, manifest
from mmcli.errors import MmcliError
from mmcli.settings import Settings, cache_dir, config_dir, hf_hub_cache

PACKAGES = ("llama-cpp-python", "faster-whisper", "ctranslate2", "piper-tts", "onnxruntime",
            "huggingface-hub", "av", "numpy", "pillow", "typer", "rich")


# onnxruntime lists "AzureExecutionProvider" on CPU-only builds: count only real accelerators.
GPU_PROVIDERS = {"CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider",
                 "CoreMLExecutionProvider", "DmlExecutionProvider", "MIGraphXExecutionProvider"}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _probe(fn: Any) -> dict[str, Any]:
    try:
        return {"ok": True, **fn()}
    except Exception as exc:  # a broken engine install is exactly what doctor reports
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _llama() -> dict[str, Any]:
    import llama_cpp

    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    return {"gpu_offload": gpu, "metal": gpu and sys.platform == "darwin",
            "cuda": gpu and sys.platform != "darwin"}


def _ctranslate2() -> dict[str, Any]:
    import ctranslate2

    return {"cuda_devices": ctranslate2.get_cuda_device_count(),
            "compute_types_cpu": sorted(ctranslate2.get_supported_compute_types("cpu"))}


def _onnxruntime() -> dict[str, Any]:
    import onnxruntime

    return {"providers": onnxruntime.get_available_providers()}


def _piper() -> dict[str, Any]:
    importlib.import_module("piper")
    return {}


def report(settings: Settings) -> dict[str, Any]:
    """Everything doctor prints, as one JSON-ready dict."""
    try:
        layers = [str(p) for p in manifest.load(settings.models_file).layers]
        manifest_error = None
    except MmcliError as exc:
        layers, manifest_error = [], exc.message
    return {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": {d: _version(d) for d in PACKAGES},
        "engines": {
            "llama": _probe(_llama),
            "whisper": _probe(_ctranslate2),
            "piper": _probe(_piper),
            "sam-onnx": _probe(_onnxruntime),
        },
        "registered_engines": engines.names(),
        "manifest_layers": layers,
        "manifest_error": manifest_error,
        "hf_cache": str(hf_hub_cache()),
        "mmcli_cache": str(cache_dir()),
        "config_dir": str(config_dir()),
        "offline": settings.offline,
        "hf_endpoint": os.environ.get("HF_ENDPOINT"),
        "device": settings.device,
    }


def lines(r: dict[str, Any]) -> list[str]:
    """Human-readable lines of ``report``."""
    out = [f"python      {r['python']} ({r['platform']})"]
    for name, probe in r["engines"].items():
        if not probe["ok"]:
            out.append(f"{name:<11} NOT USABLE: {probe['error']}")
            continue
        detail = {k: v for k, v in probe.items() if k != "ok"}
        extra = ", ".join(f"{k}={v}" for k, v in detail.items())
        out.append(f"{name:<11} ok{(' (' + extra + ')') if extra else ''}")
    gpu = r["engines"]["llama"].get("gpu_offload") or \
        r["engines"]["whisper"].get("cuda_devices", 0) > 0 or \
        bool(GPU_PROVIDERS & set(r["engines"]["sam-onnx"].get("providers", [])))
    out.append(f"gpu         {'available' if gpu else 'none usable (CPU only)'}")
    pk = ", ".join(f"{k} {v}" for k, v in r["packages"].items() if v)
    out.append(f"packages    {pk}")
    for i, layer in enumerate(r["manifest_layers"]):
        out.append(f"{'manifest' if i == 0 else '':<11} {layer}")
    if r["manifest_error"]:
        out.append(f"manifest    ERROR: {r['manifest_error']}")
    out += [f"hf cache    {r['hf_cache']}", f"mmcli cache {r['mmcli_cache']}",
            f"offline     {r['offline']}"]
    return out
