"""Pytest fixtures for vision tests: the tiny generated VLM and a manifest that registers it.

Import the fixtures into a test module (``from tests.vision_fixtures import tiny_vlm_manifest``)
and pass ``--models <manifest>`` to the CLI; the model is ``tiny-vlm`` (engine ``llama-mtmd``,
tasks caption/vqa/chat, a ``path`` source).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests import tinyvlm

TINY_VLM_MANIFEST = """
[models.tiny-vlm]
engine = "llama-mtmd"
tasks = ["caption", "vqa", "chat"]
description = "tiny generated VLM for tests (random weights)"
license = "MIT"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}", mmproj = "{mmproj}" }}
options = {{ n_ctx = {n_ctx} }}

[models.tiny-text]
engine = "llama"
tasks = ["chat"]
description = "the tiny VLM's text half alone (no mmproj)"
license = "MIT"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}" }}
options = {{ n_ctx = {n_ctx} }}

[defaults]
caption = ["tiny-vlm"]
vqa = ["tiny-vlm"]
"""


def write_manifest(path: Path, model_dir: Path, n_ctx: int = 1024) -> Path:
    """A manifest for the tiny VLM in ``model_dir`` (built there if missing)."""
    text, mmproj = model_dir / "tiny-vlm.gguf", model_dir / "tiny-vlm-mmproj.gguf"
    if not (text.is_file() and mmproj.is_file()):
        text, mmproj = tinyvlm.build(model_dir)
    path.write_text(TINY_VLM_MANIFEST.format(dir=model_dir, model=text.name, mmproj=mmproj.name,
                                             n_ctx=n_ctx))
    return path


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding ``tiny-vlm.gguf`` and ``tiny-vlm-mmproj.gguf`` (built once per session)."""
    folder = tmp_path_factory.mktemp("tiny-vlm")
    tinyvlm.build(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vlm_manifest(tiny_vlm_dir: Path) -> Path:
    """Manifest registering ``tiny-vlm`` (and the text-only ``tiny-text``); defaults for
    caption and vqa point at ``tiny-vlm``."""
    return write_manifest(tiny_vlm_dir / "tiny-vlm.toml", tiny_vlm_dir)


def make_image(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A small deterministic picture (a seeded colour pattern) saved by extension."""
    import random

    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(6):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = min(size[0], x0 + rng.randrange(4, 30)), min(size[1], y0 + rng.randrange(4, 30))
        box = (x0, y0, x1, y1)
        img.paste(tuple(rng.randrange(256) for _ in range(3)), box)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
