"""The one ``--device`` policy: ``auto|cpu|cuda|metal`` -> what runs, per engine kind.

Every backend resolves its device here, and ``mmcli doctor`` describes the same table, so an
engine never words a missing GPU its own way:

* ``cpu`` always runs on the CPU.
* ``cuda`` / ``metal`` run there when the engine has that accelerator here; otherwise it is an
  ``EngineMissingError`` (exit 3), ``--device cuda: <engine> has no CUDA support here (<why>)``
  with a hint naming the install that adds it, or ``--device cpu``. Never a silent CPU run.
* ``auto`` takes the engine's accelerator when it has one, else the CPU. Exception: ``sam``
  stays on the CPU under ``auto`` (the README's "CPU provider by default").

Nothing here imports an engine package: backends pass in what their engine reports
(``Available``), so the policy is unit-tested without a GPU.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal

from mmcli.errors import EngineMissingError, UsageError
from mmcli.settings import DEVICES

Kind = Literal["llama", "whisper", "piper", "sam"]
KINDS: tuple[Kind, ...] = ("llama", "whisper", "piper", "sam")
ACCELERATORS = ("cuda", "metal")

ENGINE_NAMES: dict[Kind, str] = {"llama": "llama.cpp", "whisper": "faster-whisper",
                                 "piper": "piper", "sam": "SAM (onnxruntime)"}
LABELS = {"cuda": "CUDA", "metal": "Metal"}
# Kinds that ``auto`` keeps on the CPU: segment runs "the CPU provider by default" (README);
# its CUDA / CoreML providers are used only when asked for.
CPU_UNDER_AUTO: frozenset[Kind] = frozenset({"sam"})
CPU_PROVIDER = "CPUExecutionProvider"
PROVIDERS = {"cuda": "CUDAExecutionProvider", "metal": "CoreMLExecutionProvider"}
# The device name a record reports for the onnxruntime provider that actually ran.
PROVIDER_DEVICES = {CPU_PROVIDER: "cpu", "CUDAExecutionProvider": "cuda",
                    "CoreMLExecutionProvider": "coreml"}

_LLAMA_CUDA = 'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir ' \
              "llama-cpp-python"
_LLAMA_METAL = 'CMAKE_ARGS="-DGGML_METAL=on" pip install --force-reinstall --no-cache-dir ' \
               "llama-cpp-python"
_ORT_GPU = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
_CT2_CUDA = "pip install nvidia-cublas-cu12 nvidia-cudnn-cu12==9.*"


@dataclass(frozen=True)
class Available:
    """What an engine reports about this machine (only the fields of its kind matter).

    Attributes:
        gpu_offload: llama: ``llama_cpp.llama_supports_gpu_offload()``.
        cuda_devices: whisper: ``ctranslate2.get_cuda_device_count()``.
        providers: piper, sam: ``onnxruntime.get_available_providers()``.
        platform: ``sys.platform`` (Metal and CoreML exist only on ``darwin``).
    """

    gpu_offload: bool = False
    cuda_devices: int = 0
    providers: tuple[str, ...] = ()
    platform: str = field(default_factory=lambda: sys.platform)


@dataclass(frozen=True)
class Device:
    """The resolved device: what actually runs, and the engine's own parameter for it.

    Attributes:
        name: what runs, as records report it: ``cpu``, ``cuda``, ``metal`` (llama) or
            ``coreml`` (sam's onnxruntime CoreML provider).
        n_gpu_layers: llama: layers to offload (0 on the CPU, -1 = all).
        ct2_device: whisper: CTranslate2's ``device`` argument.
        providers: piper, sam: onnxruntime providers, in order of preference.
    """

    name: str
    n_gpu_layers: int = 0
    ct2_device: str = "cpu"
    providers: tuple[str, ...] = (CPU_PROVIDER,)


@dataclass(frozen=True)
class Missing:
    """Why an accelerator is absent for an engine, and the step that would add it."""

    why: str
    fix: str | None = None  # an install command; None when only another device helps
    needs: str = ""  # what the install command cannot bring (a driver, a toolkit)


def accelerators(kind: Kind, available: Available) -> dict[str, Missing | None]:
    """``{"cuda": None | Missing, "metal": None | Missing}``: None = usable here."""
    darwin = available.platform == "darwin"
    if kind == "llama":
        # llama.cpp offloads to Metal on macOS and to CUDA elsewhere (what wheels build for).
        gpu, other = ("metal", "cuda") if darwin else ("cuda", "metal")
        return {gpu: None if available.gpu_offload else
                Missing("this llama-cpp-python build has no GPU support",
                        _LLAMA_METAL if darwin else _LLAMA_CUDA,
                        "" if darwin else "the CUDA toolkit to build"),
                other: Missing("llama.cpp offloads to Metal on macOS" if darwin
                               else "Metal exists only on macOS")}
    if kind == "whisper":
        cuda = None if available.cuda_devices > 0 else \
            Missing("CTranslate2 finds no CUDA device", None if darwin else _CT2_CUDA,
                    "an NVIDIA GPU and its driver")
        return {"cuda": cuda, "metal": Missing("CTranslate2 has no Metal backend")}
    cuda = _provider("cuda", "CUDA", available, None if darwin else _ORT_GPU)
    metal: Missing | None
    if kind == "piper":
        metal = Missing("piper voices run on the CPU or CUDA only")
    elif not darwin:
        metal = Missing("CoreML exists only on macOS")
    else:
        metal = _provider("metal", "CoreML", available, None)
    return {"cuda": cuda, "metal": metal}


def _provider(accel: str, label: str, available: Available, fix: str | None) -> Missing | None:
    wanted = PROVIDERS[accel]
    if wanted in available.providers:
        return None
    return Missing(f"this onnxruntime has no {label} provider ({wanted}); it has: "
                   f"{', '.join(available.providers) or 'none'}", fix,
                   "an NVIDIA GPU with the CUDA 12 runtime" if fix else "")


def resolve(requested: str, kind: Kind, available: Available, *,
            n_gpu_layers: int | None = None) -> Device:
    """The device ``--device requested`` means for an engine of ``kind`` on this machine.

    Args:
        requested: one of ``mmcli.settings.DEVICES``.
        kind: the engine family.
        available: what the engine reports (see ``Available``).
        n_gpu_layers: llama only: the manifest's / ``--gpu-layers`` layer count (None =
            all layers on a GPU); 0 keeps the model on the CPU.
    Returns:
        The ``Device`` to run on.
    Raises:
        EngineMissingError: ``cuda``/``metal`` asked for but absent for this engine (exit 3).
        UsageError: ``requested`` is not a known device.
    """
    if requested not in DEVICES:
        raise UsageError(f"--device {requested}: unknown device",
                         hint=f"use one of {', '.join(DEVICES)}")
    accel = accelerators(kind, available)
    if requested == "auto":
        usable = [a for a in ACCELERATORS if accel[a] is None]
        target = usable[0] if usable and kind not in CPU_UNDER_AUTO else "cpu"
    else:
        target = requested
    missing = accel.get(target)
    if missing is not None:
        raise missing_error(target, kind, missing)
    return _device(kind, target, n_gpu_layers)


def missing_error(requested: str, kind: Kind, missing: Missing) -> EngineMissingError:
    """The one error for an absent accelerator (also ``mmcli doctor``'s wording)."""
    needs = f" (needs {missing.needs})" if missing.needs else ""
    step = f"`{missing.fix}`{needs}, or use --device cpu" if missing.fix else \
        "use --device cpu (or auto)"
    return EngineMissingError(f"--device {requested}: {ENGINE_NAMES[kind]} has no "
                              f"{LABELS[requested]} support here ({missing.why})", hint=step)


def _device(kind: Kind, target: str, n_gpu_layers: int | None) -> Device:
    if kind == "llama":
        layers = 0 if target == "cpu" else (-1 if n_gpu_layers is None else int(n_gpu_layers))
        # n_gpu_layers = 0 (manifest or --gpu-layers 0) pins the model to the CPU.
        return Device(target if layers else "cpu", n_gpu_layers=layers)
    if kind == "whisper":
        return Device(target, ct2_device=target)
    if target == "cpu":
        return Device("cpu")
    provider = PROVIDERS[target]
    return Device(PROVIDER_DEVICES[provider], providers=(provider, CPU_PROVIDER))


def describe(kind: Kind, available: Available) -> dict[str, dict[str, str]]:
    """Every ``--device`` choice for ``kind``: ``{"device": ..., "detail": ...}`` or
    ``{"error": message, "hint": hint}`` (what ``mmcli doctor`` prints)."""
    out: dict[str, dict[str, str]] = {}
    for requested in DEVICES:
        try:
            dev = resolve(requested, kind, available)
        except EngineMissingError as exc:
            out[requested] = {"error": exc.message, "hint": exc.hint or ""}
            continue
        out[requested] = {"device": dev.name, "detail": _detail(kind, dev)}
    return out


def _detail(kind: Kind, dev: Device) -> str:
    if kind == "llama":
        return f"n_gpu_layers={dev.n_gpu_layers}"
    if kind == "whisper":
        return f"ctranslate2 device={dev.ct2_device}"
    return "providers=" + ",".join(dev.providers)


def doctor_lines(table: dict[str, dict[str, str]], indent: str) -> list[str]:
    """``mmcli doctor``'s lines for one engine's ``describe`` table."""
    runs = [f"{req} -> {row['device']}" + (f" ({row['detail']})" if row["device"] != "cpu" else "")
            for req, row in table.items() if "device" in row]
    lines = [f"{indent}--device {', '.join(runs)}"]
    lines += [f"{indent}{row['error']}; {row['hint']}" for row in table.values() if "error" in row]
    return lines
