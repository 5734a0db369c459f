"""The one ``--device`` policy (``mmcli.devices``): every engine kind x requested device, with
and without the accelerator, on Linux and macOS. No GPU and no engine package needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmcli import devices
from mmcli.devices import Available, Device
from mmcli.errors import EngineMissingError, ExitCode, UsageError
from mmcli.settings import DEVICES

CPU = ("CPUExecutionProvider",)
ORT_CPU = ("AzureExecutionProvider", "CPUExecutionProvider")  # a CPU-only onnxruntime wheel
ORT_CUDA = ("CUDAExecutionProvider", "CPUExecutionProvider")
ORT_COREML = ("CoreMLExecutionProvider", "CPUExecutionProvider")
LINUX, MAC = "linux", "darwin"
LLAMA_CPU = Available(gpu_offload=False, platform=LINUX)
LLAMA_GPU = Available(gpu_offload=True, platform=LINUX)
LLAMA_MAC_CPU = Available(gpu_offload=False, platform=MAC)
LLAMA_MAC_GPU = Available(gpu_offload=True, platform=MAC)
CT2_CPU = Available(cuda_devices=0, platform=LINUX)
CT2_CUDA = Available(cuda_devices=2, platform=LINUX)
CT2_MAC = Available(cuda_devices=0, platform=MAC)
ONNX_CPU = Available(providers=ORT_CPU, platform=LINUX)
ONNX_CUDA = Available(providers=ORT_CUDA, platform=LINUX)
ONNX_MAC_CPU = Available(providers=CPU, platform=MAC)
ONNX_MAC_COREML = Available(providers=ORT_COREML, platform=MAC)

# (kind, what the engine reports, requested) -> Device, or (error text, hint text)
TABLE: list[tuple[str, Available, str, Device | tuple[str, str]]] = [
    # llama.cpp: GPU offload on CUDA (Linux) or Metal (macOS), else the CPU
    ("llama", LLAMA_CPU, "auto", Device("cpu")),
    ("llama", LLAMA_CPU, "cpu", Device("cpu")),
    ("llama", LLAMA_CPU, "cuda",
     ("this llama-cpp-python build has no GPU support", "-DGGML_CUDA=on")),
    ("llama", LLAMA_CPU, "metal",
     ("Metal exists only on macOS", "use --device cpu (or auto)")),
    ("llama", LLAMA_GPU, "auto", Device("cuda", n_gpu_layers=-1)),
    ("llama", LLAMA_GPU, "cpu", Device("cpu")),
    ("llama", LLAMA_GPU, "cuda", Device("cuda", n_gpu_layers=-1)),
    ("llama", LLAMA_GPU, "metal",
     ("Metal exists only on macOS", "use --device cpu (or auto)")),
    ("llama", LLAMA_MAC_CPU, "auto", Device("cpu")),
    ("llama", LLAMA_MAC_CPU, "metal",
     ("this llama-cpp-python build has no GPU support", "-DGGML_METAL=on")),
    ("llama", LLAMA_MAC_GPU, "auto", Device("metal", n_gpu_layers=-1)),
    ("llama", LLAMA_MAC_GPU, "metal", Device("metal", n_gpu_layers=-1)),
    ("llama", LLAMA_MAC_GPU, "cuda",
     ("llama.cpp offloads to Metal on macOS", "use --device cpu (or auto)")),
    # faster-whisper: CTranslate2 has CUDA (when it finds a device) and never Metal
    ("whisper", CT2_CPU, "auto", Device("cpu")),
    ("whisper", CT2_CPU, "cpu", Device("cpu")),
    ("whisper", CT2_CPU, "cuda",
     ("CTranslate2 finds no CUDA device", "pip install nvidia-cublas-cu12")),
    ("whisper", CT2_CPU, "metal",
     ("CTranslate2 has no Metal backend", "use --device cpu (or auto)")),
    ("whisper", CT2_CUDA, "auto", Device("cuda", ct2_device="cuda")),
    ("whisper", CT2_CUDA, "cpu", Device("cpu")),
    ("whisper", CT2_CUDA, "cuda", Device("cuda", ct2_device="cuda")),
    ("whisper", CT2_CUDA, "metal",
     ("CTranslate2 has no Metal backend", "use --device cpu (or auto)")),
    ("whisper", CT2_MAC, "metal",
     ("CTranslate2 has no Metal backend", "use --device cpu (or auto)")),
    # piper: onnxruntime's CUDA provider; voices never run on CoreML
    ("piper", ONNX_CPU, "auto", Device("cpu")),
    ("piper", ONNX_CPU, "cpu", Device("cpu")),
    ("piper", ONNX_CPU, "cuda",
     ("this onnxruntime has no CUDA provider (CUDAExecutionProvider); it has: "
      "AzureExecutionProvider, CPUExecutionProvider", "pip install onnxruntime-gpu")),
    ("piper", ONNX_CPU, "metal",
     ("piper voices run on the CPU or CUDA only", "use --device cpu (or auto)")),
    ("piper", ONNX_CUDA, "auto", Device("cuda", providers=ORT_CUDA)),
    ("piper", ONNX_CUDA, "cpu", Device("cpu", providers=CPU)),
    ("piper", ONNX_CUDA, "cuda", Device("cuda", providers=ORT_CUDA)),
    ("piper", ONNX_CUDA, "metal",
     ("piper voices run on the CPU or CUDA only", "use --device cpu (or auto)")),
    ("piper", ONNX_MAC_COREML, "metal",
     ("piper voices run on the CPU or CUDA only", "use --device cpu (or auto)")),
    # sam: the CPU provider under auto (documented); CUDA / CoreML only when asked for
    ("sam", ONNX_CPU, "auto", Device("cpu")),
    ("sam", ONNX_CPU, "cpu", Device("cpu")),
    ("sam", ONNX_CPU, "cuda",
     ("no CUDA provider (CUDAExecutionProvider)", "pip install onnxruntime-gpu")),
    ("sam", ONNX_CPU, "metal",
     ("CoreML exists only on macOS", "use --device cpu (or auto)")),
    ("sam", ONNX_CUDA, "auto", Device("cpu")),
    ("sam", ONNX_CUDA, "cpu", Device("cpu")),
    ("sam", ONNX_CUDA, "cuda", Device("cuda", providers=ORT_CUDA)),
    ("sam", ONNX_MAC_COREML, "auto", Device("cpu")),
    ("sam", ONNX_MAC_COREML, "metal",
     Device("coreml", providers=ORT_COREML)),
    ("sam", ONNX_MAC_CPU, "metal",
     ("this onnxruntime has no CoreML provider (CoreMLExecutionProvider); it has: "
      "CPUExecutionProvider", "use --device cpu (or auto)")),
]

LABEL = {"cuda": "CUDA", "metal": "Metal"}


def _row_id(kind: str, available: Available, requested: str) -> str:
    accel = available.gpu_offload or available.cuda_devices or \
        any(p in available.providers for p in devices.PROVIDERS.values())
    return f"{kind}-{available.platform}-{'accel' if accel else 'cpuonly'}-{requested}"


@pytest.mark.parametrize(("kind", "available", "requested", "expected"), TABLE,
                         ids=[_row_id(k, a, r) for k, a, r, _ in TABLE])
def test_device_table(kind, available, requested, expected) -> None:
    if isinstance(expected, Device):
        assert devices.resolve(requested, kind, available) == expected
        return
    why, hint = expected
    with pytest.raises(EngineMissingError) as info:
        devices.resolve(requested, kind, available)
    err = info.value
    assert err.exit_code == ExitCode.MODEL_UNAVAILABLE == 3
    assert err.message.startswith(f"--device {requested}: {devices.ENGINE_NAMES[kind]} has no "
                                  f"{LABEL[requested]} support here (")
    assert why in err.message and err.message.endswith(")")
    assert err.hint is not None and hint in err.hint and "--device cpu" in err.hint


def test_every_kind_and_device_is_covered() -> None:
    """Each kind x each requested device has a row with the accelerator absent, and each
    accelerator an engine can have here has a row where it is present."""
    covered = {(k, r, isinstance(e, Device)) for k, _, r, e in TABLE}
    for kind in devices.KINDS:
        for requested in DEVICES:
            assert any((kind, requested, ok) in covered for ok in (True, False)), (kind, requested)
        assert (kind, "cuda", False) in covered and (kind, "auto", True) in covered


@pytest.mark.parametrize("kind", devices.KINDS)
@pytest.mark.parametrize("requested", ["cuda", "metal"])
def test_explicit_accelerator_never_falls_back_to_cpu(kind, requested) -> None:
    nothing = Available(providers=ORT_CPU)
    with pytest.raises(EngineMissingError, match=f"^--device {requested}: "):
        devices.resolve(requested, kind, nothing)


@pytest.mark.parametrize("kind", devices.KINDS)
def test_auto_and_cpu_fall_back_to_cpu(kind) -> None:
    nothing = Available(providers=ORT_CPU)
    for requested in ("auto", "cpu"):
        dev = devices.resolve(requested, kind, nothing)
        assert dev.name == "cpu" and dev.n_gpu_layers == 0 and dev.ct2_device == "cpu"
        assert dev.providers == CPU


def test_llama_layers() -> None:
    gpu = Available(gpu_offload=True, platform=LINUX)
    assert devices.resolve("auto", "llama", gpu, n_gpu_layers=12) == Device("cuda", n_gpu_layers=12)
    assert devices.resolve("cuda", "llama", gpu, n_gpu_layers=12) == Device("cuda", n_gpu_layers=12)
    # --device cpu wins over a layer count; a layer count of 0 pins the model to the CPU
    assert devices.resolve("cpu", "llama", gpu, n_gpu_layers=10) == Device("cpu")
    assert devices.resolve("auto", "llama", gpu, n_gpu_layers=0) == Device("cpu")
    cpu_only = Available(gpu_offload=False, platform=LINUX)
    assert devices.resolve("cpu", "llama", cpu_only, n_gpu_layers=10) == Device("cpu")
    assert devices.resolve("auto", "llama", cpu_only, n_gpu_layers=10) == Device("cpu")


def test_unknown_device_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--device tpu: unknown device") as info:
        devices.resolve("tpu", "llama", Available())
    assert info.value.exit_code == 2 and "auto, cpu, cuda, metal" in (info.value.hint or "")


def test_doctor_words_it_like_the_error() -> None:
    available = Available(cuda_devices=0, platform=LINUX)
    table = devices.describe("whisper", available)
    assert table["auto"] == {"device": "cpu", "detail": "ctranslate2 device=cpu"}
    with pytest.raises(EngineMissingError) as info:
        devices.resolve("cuda", "whisper", available)
    assert table["cuda"] == {"error": info.value.message, "hint": info.value.hint}
    lines = devices.doctor_lines(table, indent="  ")
    assert lines[0] == "  --device auto -> cpu, cpu -> cpu"
    assert f"  {info.value.message}; {info.value.hint}" in lines
    gpu = devices.describe("llama", Available(gpu_offload=True, platform=LINUX))
    assert devices.doctor_lines(gpu, "")[0] == (
        "--device auto -> cuda (n_gpu_layers=-1), cpu -> cpu, cuda -> cuda (n_gpu_layers=-1)")


def test_imports_no_engine(subprocess_env: dict[str, str]) -> None:
    code = ("import sys, mmcli.devices, mmcli.enginetypes\n"
            "heavy = ('llama_cpp', 'ctranslate2', 'faster_whisper', 'onnxruntime', 'piper', "
            "'av', 'numpy')\n"
            "print(','.join(m for m in heavy if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stderr
