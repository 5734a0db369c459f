"""A light GGUF header reader (plain Python): the metadata key/values, never the tensors.

For ``mmcli doctor``, which must stay fast and must not load an engine to say which projector
an mmproj file carries (``clip.projector_type``). The format is GGUF v2/v3, little-endian:
magic ``GGUF``, version, tensor count, key/value count, then each key (a length-prefixed
UTF-8 string), its value type and value. Arrays are skipped (their values are not returned).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import IO, Any

from mmcli.errors import InputError

# GGUF value types -> struct format of a scalar (8 = string, 9 = array)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
MAX_KEYS = 100_000  # a sane bound: a corrupt count must not spin


def read_metadata(path: Path) -> dict[str, Any]:
    """The scalar and string metadata of a GGUF file (arrays are left out).

    Raises:
        InputError: the file cannot be read or is not a GGUF v2/v3 file.
    """
    try:
        with path.open("rb") as f:
            return _read(f, path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except (struct.error, UnicodeDecodeError, ValueError):
        raise InputError(f"{path} is not a valid GGUF file (its header is damaged or cut)",
                         hint="download it again (`mmcli models pull`)") from None


def _read(f: IO[bytes], path: Path) -> dict[str, Any]:
    magic, version = f.read(4), _unpack(f, "<I")
    if magic != b"GGUF" or version not in (2, 3):
        raise InputError(f"{path} is not a GGUF v2/v3 file",
                         hint="mmproj files come from llama.cpp's convert scripts")
    _unpack(f, "<Q")  # tensor count
    n_kv = _unpack(f, "<Q")
    if n_kv > MAX_KEYS:
        raise ValueError("too many keys")
    out: dict[str, Any] = {}
    for _ in range(n_kv):
        key = _string(f)
        kind = _unpack(f, "<I")
        if kind == ARRAY:
            _skip_array(f)
        else:
            out[key] = _value(f, kind)
    return out


def _unpack(f: IO[bytes], fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("file ends inside the header")
    return struct.unpack(fmt, data)[0]


def _string(f: IO[bytes]) -> str:
    n = _unpack(f, "<Q")
    data = f.read(n)
    if len(data) != n:
        raise ValueError("file ends inside a string")
    return data.decode("utf-8")


def _value(f: IO[bytes], kind: int) -> Any:
    if kind == STRING:
        return _string(f)
    if kind not in _SCALARS:
        raise ValueError(f"unknown value type {kind}")
    return _unpack(f, _SCALARS[kind])


def _skip_array(f: IO[bytes]) -> None:
    kind, count = _unpack(f, "<I"), _unpack(f, "<Q")
    if kind == STRING:
        for _ in range(count):
            f.seek(_unpack(f, "<Q"), 1)
    elif kind in _SCALARS:
        f.seek(struct.calcsize(_SCALARS[kind]) * count, 1)
    else:
        raise ValueError(f"unsupported array type {kind}")
