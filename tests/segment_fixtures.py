"""Fixtures for segment tests: the generated tiny SAM pair, a manifest for it, test pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.samgen import write_pair

MANIFEST = """
[models.tiny-sam]
engine = "sam-onnx"
tasks = ["segment"]
description = "generated tiny SAM pair, encoder [1,3,1024,1024]"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ encoder = "encoder-nchw.onnx", decoder = "decoder.onnx" }}
options = {{ preprocess = "nchw" }}

[models.tiny-sam-hwc]
engine = "sam-onnx"
tasks = ["segment"]
description = "generated tiny SAM pair, encoder [H,W,3] 0-255"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ encoder = "encoder-hwc.onnx", decoder = "decoder.onnx" }}

[models.tiny-sam-nobatch]
engine = "sam-onnx"
tasks = ["segment"]
description = "generated tiny SAM pair whose decoder takes one prompt per call"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ encoder = "encoder-nchw.onnx", decoder = "decoder-nobatch.onnx" }}

[models.tiny-sam-broken]
engine = "sam-onnx"
tasks = ["segment"]
description = "decoder file missing"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ encoder = "encoder-nchw.onnx", decoder = "no-such-decoder.onnx" }}

[models.tiny-sam-single]
engine = "sam-onnx"
tasks = ["segment"]
description = "one mask per prompt (like MobileSAM's decoder)"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ encoder = "encoder-nchw.onnx", decoder = "decoder1.onnx" }}

[models.tiny-sam-four]
engine = "sam-onnx"
tasks = ["segment"]
description = "four outputs, index 0 the single-mask token (SAM multimask exports)"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ encoder = "encoder-nchw.onnx", decoder = "decoder4.onnx" }}

[defaults]
segment = ["tiny-sam"]
"""

BACKGROUND = (30, 90, 200)
SHAPES = ((240, 200, 40), (200, 30, 30))


def scene(width: int, height: int, disc: tuple[int, int, int],
          rect: tuple[int, ...]) -> Image.Image:
    """A blue picture with a yellow disc (centre x, y, radius) and a red rectangle."""
    im = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(im)
    x, y, r = disc
    draw.ellipse((x - r, y - r, x + r, y + r), fill=SHAPES[0])
    draw.rectangle(rect, fill=SHAPES[1])
    return im


@pytest.fixture(scope="session")
def sam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated models (both encoder conventions, batched and single-prompt decoders)."""
    out = tmp_path_factory.mktemp("sam-models")
    write_pair(out, "nchw")
    write_pair(out, "hwc")
    write_pair(out, "nchw", batch=False)
    write_pair(out, "nchw", input_name="x")
    write_pair(out, "nchw", n_masks=1)
    write_pair(out, "nchw", n_masks=4)
    return out


@pytest.fixture
def sam_manifest(sam_dir: Path, tmp_path: Path) -> Path:
    """A manifest with tiny-sam (default), tiny-sam-hwc, tiny-sam-nobatch, tiny-sam-broken."""
    path = tmp_path / "sam.toml"
    path.write_text(MANIFEST.format(dir=sam_dir))
    return path


@pytest.fixture(scope="session")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``land`` 640x488 (disc at 320,240), ``portrait`` 488x640 (disc at 150,420), ``small``."""
    out = tmp_path_factory.mktemp("sam-pictures")
    shots = {
        "land": scene(640, 488, (320, 240, 70), (40, 40, 160, 140)),
        "portrait": scene(488, 640, (150, 420, 70), (300, 60, 440, 200)),
        "small": scene(160, 120, (100, 60, 30), (10, 10, 50, 40)),
    }
    paths = {}
    for name, im in shots.items():
        paths[name] = out / f"{name}.png"
        im.save(paths[name])
    return paths


def truth(path: Path, colour: tuple[int, int, int]) -> np.ndarray:
    """Ground-truth mask of the pixels of ``colour`` in a scene picture."""
    return np.all(np.asarray(Image.open(path).convert("RGB")) == colour, axis=2)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) centroid of a mask's pixel centres."""
    ys, xs = np.nonzero(mask)
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def empty_first_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the first mask of every prompt come back empty (an empty region's error path)."""
    from mmcli.tasks import segment_core

    real = segment_core.prompt_masks

    def first_empty(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = real(*args, **kwargs)
        found[0].mask = found[0].mask & False
        found[0].area = 0
        return found

    monkeypatch.setattr(segment_core, "prompt_masks", first_empty)
