"""``--model PATH``: recognise a local model file or folder and pick its engine."""

from __future__ import annotations

from pathlib import Path

from mmcli import engines
from mmcli.errors import UsageError
from mmcli.records import ModelInfo, ResolvedModel


def from_path(path: Path, task: str, *, mmproj: Path | None = None,
              decoder: Path | None = None) -> ResolvedModel:
    """Build a ResolvedModel from a local path.

    Recognised: ``.gguf`` (+ ``--mmproj``), a CTranslate2 folder with ``model.bin``, a piper
    ``.onnx`` with its ``.onnx.json``, a SAM encoder ``.onnx`` + ``--decoder``.

    Raises:
        UsageError: the path does not exist or is not a model mmcli knows.
    """
    if not path.exists():
        raise UsageError(f"model path {path} does not exist",
                         hint="give a manifest name (see `mmcli models list`) or an existing file")
    for extra, flag in ((mmproj, "--mmproj"), (decoder, "--decoder")):
        if extra is not None and not extra.is_file():
            raise UsageError(f"{flag} file {extra} does not exist")
    files: dict[str, Path]
    if path.is_dir() and (path / "model.bin").is_file():
        engine, files = "whisper", {"model": path / "model.bin"}
    elif path.suffix == ".gguf":
        files = {"model": path}
        engine = "llama"
        if mmproj is not None:
            engine, files["mmproj"] = "llama-mtmd", mmproj
    elif path.suffix == ".onnx" and decoder is not None:
        engine, files = "sam-onnx", {"encoder": path, "decoder": decoder}
    elif path.suffix == ".onnx" and Path(str(path) + ".json").is_file():
        engine, files = "piper", {"model": path, "config": Path(str(path) + ".json")}
    elif path.suffix == ".onnx":
        raise UsageError(f"{path}: an .onnx model needs {path.name}.json beside it (piper voice) "
                         "or --decoder DEC.onnx (Segment Anything)")
    else:
        raise UsageError(f"{path}: not a model mmcli recognises",
                         hint="use a .gguf, a piper .onnx, a SAM encoder .onnx with --decoder, "
                              "or a CTranslate2 folder with model.bin")
    tasks = tuple(sorted(engines.spec(engine).tasks))
    if task not in tasks:
        what = "no mmproj (pass --mmproj FILE)" if engine == "llama" else f"a {engine} model"
        raise UsageError(f"model {path} cannot do '{task}': {what}")
    name = path.name
    return ResolvedModel(name=name, engine=engine, tasks=tasks, files=files,
                         info=ModelInfo(name=name, source=f"path:{path}"))
