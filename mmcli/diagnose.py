"""Facts for ``mmcli doctor``: each probe imports one engine and reports, never raises.

Each engine's ``--device`` lines come from ``mmcli.devices`` (the policy the backends use), so
doctor words a missing GPU exactly as the error of ``--device cuda`` would. Which task runs
right now, offline, with which model, comes from ``mmcli.inventory`` (the same default order
as ``mmcli.resolve``). Each vision model that is local (cached or bundled) gets its projector
type from the mmproj's GGUF header (``mmcli.ggufmeta``, no engine) and whether libmtmd loads
its vision and audio sides (``mmcli.backends.llama.mmproj_loads``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys
import time
from typing import Any

from mmcli import devices, engines, ggufmeta, hub, inventory, manifest
from mmcli.errors import MmcliError
from mmcli.settings import Settings, cache_dir, config_dir, hf_hub_cache

PACKAGES = ("llama-cpp-python", "faster-whisper", "ctranslate2", "piper-tts", "onnxruntime",
            "huggingface-hub", "av", "numpy", "pillow", "typer", "rich")


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
    table = devices.describe("llama", devices.Available(gpu_offload=gpu))
    return {"gpu_offload": gpu, "metal": "device" in table["metal"],
            "cuda": "device" in table["cuda"], "devices": table}


def _ctranslate2() -> dict[str, Any]:
    import ctranslate2

    cuda = ctranslate2.get_cuda_device_count()
    return {"cuda_devices": cuda,
            "compute_types_cpu": sorted(ctranslate2.get_supported_compute_types("cpu")),
            "devices": devices.describe("whisper", devices.Available(cuda_devices=cuda))}


def _onnxruntime(kind: devices.Kind) -> dict[str, Any]:
    import onnxruntime

    if kind == "piper":
        importlib.import_module("piper")
    providers = onnxruntime.get_available_providers()
    return {"providers": providers,
            "devices": devices.describe(kind, devices.Available(providers=tuple(providers)))}


def _vlm(files: dict[str, Any], llama_ok: bool) -> dict[str, Any]:
    """Projector types (header) and which sides load (libmtmd) of one local vision model."""
    out: dict[str, Any] = {"mmproj": str(files["mmproj"]), "projector": None,
                           "loads": {"vision": False, "audio": False}, "error": None}
    try:
        meta = ggufmeta.read_metadata(files["mmproj"])
    except MmcliError as exc:
        return {**out, "error": exc.message}
    main = meta.get("clip.projector_type")
    out["projector"] = {side: meta.get(f"clip.{side}.projector_type", main)
                        if meta.get(f"clip.has_{side}_encoder") else None
                        for side in ("vision", "audio")}
    if not llama_ok:
        return {**out, "error": "llama-cpp-python does not import (see the llama line)"}
    from mmcli.backends.llama import mmproj_loads

    start = time.perf_counter()
    out["loads"], out["error"] = mmproj_loads(files["model"], files["mmproj"])
    out["load_s"] = round(time.perf_counter() - start, 3)  # reading the mmproj, mostly
    return out


def vlms(loaded: manifest.Manifest, llama_ok: bool) -> dict[str, dict[str, Any]]:
    """Every local model with an mmproj: its projector type and whether its sides load."""
    out = {}
    for name, entry in sorted(loaded.models.items()):
        if "mmproj" not in entry.roles:
            continue
        files = hub.local_files(entry)
        if files is not None:
            out[name] = _vlm(files, llama_ok)
    return out


def report(settings: Settings) -> dict[str, Any]:
    """Everything doctor prints, as one JSON-ready dict."""
    llama = _probe(_llama)
    try:
        loaded = manifest.load(settings.models_file)
        layers, manifest_error = [str(p) for p in loaded.layers], None
        runnable = inventory.runnable_now(loaded)
        local_vlms = vlms(loaded, llama["ok"])
    except MmcliError as exc:
        layers, manifest_error, runnable, local_vlms = [], exc.message, {}, {}
    return {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "packages": {d: _version(d) for d in PACKAGES},
        "engines": {
            "llama": llama,
            "whisper": _probe(_ctranslate2),
            "piper": _probe(lambda: _onnxruntime("piper")),
            "sam-onnx": _probe(lambda: _onnxruntime("sam")),
        },
        "registered_engines": engines.names(),
        "manifest_layers": layers,
        "manifest_error": manifest_error,
        "tasks_offline": runnable,
        "vlms": local_vlms,
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
    gpus: list[str] = []
    for name, probe in r["engines"].items():
        if not probe["ok"]:
            out.append(f"{name:<11} NOT USABLE: {probe['error']}")
            continue
        detail = {k: v for k, v in probe.items() if k not in ("ok", "devices")}
        extra = ", ".join(f"{k}={v}" for k, v in detail.items())
        out.append(f"{name:<11} ok{(' (' + extra + ')') if extra else ''}")
        out += devices.doctor_lines(probe["devices"], indent=" " * 12)
        gpus += [f"{name} ({probe['devices'][accel]['device']})" for accel in devices.ACCELERATORS
                 if "device" in probe["devices"][accel]]
    usable = "usable by " + ", ".join(gpus) if gpus else "none usable (CPU only)"
    out.append(f"gpu         {usable}")
    pk = ", ".join(f"{k} {v}" for k, v in r["packages"].items() if v)
    out.append(f"packages    {pk}")
    for i, layer in enumerate(r["manifest_layers"]):
        out.append(f"{'manifest' if i == 0 else '':<11} {layer}")
    if r["manifest_error"]:
        out.append(f"manifest    ERROR: {r['manifest_error']}")
    out += [f"hf cache    {r['hf_cache']}", f"mmcli cache {r['mmcli_cache']}",
            f"offline     {r['offline']}"]
    for i, (task, now) in enumerate(r["tasks_offline"].items()):
        what = now["model"] or f"none — `{now['fix']}`"
        out.append(f"{'runs now' if i == 0 else '':<11} {task:<11} {what}")
    for i, (name, vlm) in enumerate(r["vlms"].items()):
        out.append(f"{'vision' if i == 0 else '':<11} {name}: {vlm_line(vlm)}")
    return out


def vlm_line(vlm: dict[str, Any]) -> str:
    """``projector mlp; vision loads; no audio`` (or what does not load, and why)."""
    kinds = vlm["projector"] or {}
    types = sorted({t for t in kinds.values() if t})
    parts = [f"projector {'/'.join(types) if types else 'unknown'}"]
    for side in ("vision", "audio"):
        if vlm["loads"][side]:
            parts.append(f"{side} loads")
        elif kinds.get(side):
            parts.append(f"{side} DOES NOT LOAD")
        else:
            parts.append(f"no {side}")
    if vlm["error"]:
        parts.append(vlm["error"])
    return "; ".join(parts)
