"""The llama backend on the real engine: text chat on SmolLM2-135M, vision on the tiny VLM."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from mmcli import devices, manifest, resolve
from mmcli.errors import InputError, ModelUnavailableError, UsageError
from mmcli.events import ChatDone, TextDelta
from mmcli.settings import Settings
from tests.vision_fixtures import make_image, tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401

pytest.importorskip("llama_cpp")

from mmcli.backends.llama import LlamaEngine, available  # noqa: E402
from mmcli.backends.textstream import TextStream  # noqa: E402

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def smollm() -> Iterator[LlamaEngine]:
    settings = Settings()
    model = resolve.resolve("smollm2-135m", "chat", manifest.load(), settings)
    engine = LlamaEngine.load(model, settings)
    yield engine
    engine.close()


def run(engine: LlamaEngine, messages: list[dict], **kw: object) -> tuple[str, ChatDone]:
    events = list(engine.chat(messages, **kw))  # type: ignore[arg-type]
    done = events[-1]
    assert isinstance(done, ChatDone)
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    return "".join(e.text for e in events[:-1]), done  # type: ignore[union-attr]


def test_text_chat_streams_and_counts(smollm: LlamaEngine, capfd: pytest.CaptureFixture) -> None:
    text, done = run(smollm, QUESTION, max_tokens=12)
    assert text.strip()
    assert done.prompt_tokens == len(smollm.prompt_tokens(QUESTION))
    assert 1 <= done.completion_tokens <= 12
    assert done.finish_reason in ("stop", "length")
    assert 0 < done.ttft_s <= done.total_s
    assert (smollm.device, smollm.has_vision, smollm.name) == ("cpu", False, "smollm2-135m")
    assert smollm.n_ctx == 2048
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # llama.cpp chatter is silenced


def test_greedy_is_reproducible_and_length_bounded(smollm: LlamaEngine) -> None:
    a, da = run(smollm, QUESTION, max_tokens=5)
    b, db = run(smollm, QUESTION, max_tokens=5)
    assert a == b and da.completion_tokens == db.completion_tokens == 5
    assert da.finish_reason == "length"


def test_stop_strings_and_should_stop(smollm: LlamaEngine) -> None:
    full, _ = run(smollm, QUESTION, max_tokens=30)
    word = full.split()[1]
    cut, done = run(smollm, QUESTION, max_tokens=30, stop=[word])
    assert word not in cut and full.startswith(cut) and done.finish_reason == "stop"
    calls = []
    _, done = run(smollm, QUESTION, max_tokens=30,
                  should_stop=lambda: calls.append(1) or len(calls) >= 3)
    assert done.completion_tokens == 3 and done.finish_reason == "stop"


def test_prompt_tokens_are_prefix_stable(smollm: LlamaEngine) -> None:
    first = smollm.prompt_tokens(QUESTION)
    more = QUESTION + [{"role": "assistant", "content": "Paris."},
                       {"role": "user", "content": "And Germany?"}]
    second = smollm.prompt_tokens(more)
    assert len(second) > len(first)
    text, _ = run(smollm, more, max_tokens=4)
    assert text


def test_errors(smollm: LlamaEngine) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    image = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "text", "text": "What is this?"}]}]
    with pytest.raises(UsageError, match="no mmproj"):
        list(smollm.chat(image))
    with pytest.raises(InputError, match=r"needs \d+ tokens .* holds 2048"):
        list(smollm.chat([{"role": "user", "content": "word " * 3000}]))


def gpu_layers(device: str, options: dict) -> tuple[int, str]:
    """``(n_gpu_layers, device name)`` the way ``LlamaEngine.load`` resolves them."""
    dev = devices.resolve(device, "llama", available(), n_gpu_layers=options.get("n_gpu_layers"))
    return dev.n_gpu_layers, dev.name


def test_device_mapping() -> None:
    assert gpu_layers("cpu", {"n_gpu_layers": 10}) == (0, "cpu")
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        assert gpu_layers("auto", {}) == (0, "cpu")
        with pytest.raises(ModelUnavailableError, match="no GPU support"):
            gpu_layers("cuda", {})


def test_text_stream_holds_back_partial_stops() -> None:
    s = TextStream(["</s>"])
    assert s.feed(b"ab<") == ("ab", False)
    assert s.feed(b"/x") == ("</x", False)
    assert s.feed(b"y</s>z") == ("y", True)
    assert s.flush() == ""
    u = TextStream([])
    assert u.feed("é".encode()[:1]) == ("", False)
    assert u.feed("é".encode()[1:]) == ("é", False)


@pytest.fixture(scope="module")
def tiny_vlm(tiny_vlm_manifest) -> Iterator[LlamaEngine]:  # noqa: F811 - fixture
    settings = Settings()
    model = resolve.resolve("tiny-vlm", "chat", manifest.load(tiny_vlm_manifest), settings)
    engine = LlamaEngine.load(model, settings)
    yield engine
    engine.close()


def image_message(*paths, text: str = "Describe.") -> list[dict]:
    parts: list[dict] = [
        {"type": "image_url",
         "image_url": {"url": "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()}}
        for p in paths]
    return [{"role": "user", "content": parts + [{"type": "text", "text": text}]}]


def test_images_reach_the_model(tiny_vlm: LlamaEngine, tmp_path, capfd) -> None:
    a, b = make_image(tmp_path / "a.png", 1), make_image(tmp_path / "b.png", 2)
    ta, da = run(tiny_vlm, image_message(a), max_tokens=12)
    ta2, _ = run(tiny_vlm, image_message(a), max_tokens=12)
    tb, _ = run(tiny_vlm, image_message(b), max_tokens=12)
    assert ta == ta2 and ta != tb and da.completion_tokens == 12
    assert da.extra["encode_s"] > 0 and tiny_vlm.has_vision
    two, d2 = run(tiny_vlm, image_message(a, b), max_tokens=4)
    assert d2.prompt_tokens == da.prompt_tokens + 16  # 16 image tokens per 56x56 image
    # a file:// URL works too, and text-only chat on the same engine after an image
    url = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": a.as_uri()}},
                                         {"type": "text", "text": "Describe."}]}]
    assert run(tiny_vlm, url, max_tokens=12)[0] == ta
    assert run(tiny_vlm, [{"role": "user", "content": "hi"}], max_tokens=3)[0]
    assert capfd.readouterr() == ("", "")


def test_image_errors(tiny_vlm: LlamaEngine, tmp_path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot be decoded"):
        list(tiny_vlm.chat(image_message(bad)))
    many = [make_image(tmp_path / f"{i}.png", i) for i in range(70)]
    with pytest.raises(InputError, match=r"needs \d+ tokens \(1120 for images\)"):
        list(tiny_vlm.chat(image_message(*many)))
