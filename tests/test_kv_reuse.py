"""KV-cache reuse across chat turns, images included, and ``usage.cached_tokens``.

The real engine on the generated tiny VLM (``tests/tinyvlm.py``): a turn about a photo keeps
the KV cache of the unchanged history (the image known by a hash of its pixels), answers exactly
as a fresh evaluation would, and a changed or removed image stops the reuse where it stood.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmcli import manifest, resolve
from mmcli.backends.kvcache import KvCache, MediaUnit, common_prefix, n_pos, n_tokens
from mmcli.events import ChatDone
from mmcli.settings import Settings
from tests.vision_fixtures import make_image, tiny_vlm_dir, tiny_vlm_manifest  # noqa: F401

pytest.importorskip("llama_cpp")

from mmcli.backends.llama import LlamaEngine  # noqa: E402

IMAGE_TOKENS = 16  # the tiny VLM: a 56x56 image in 14-pixel patches


@pytest.fixture(scope="module")
def engine(tiny_vlm_manifest: Path) -> Iterator[LlamaEngine]:  # noqa: F811 - fixture
    settings = Settings()
    model = resolve.resolve("tiny-vlm", "chat", manifest.load(tiny_vlm_manifest), settings)
    loaded = LlamaEngine.load(model, settings)
    yield loaded
    loaded.close()


def image_part(path: Path) -> dict:
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}}


def ask(engine: LlamaEngine, messages: list[dict], tokens: int = 10) -> tuple[str, ChatDone]:
    events = list(engine.chat(messages, max_tokens=tokens))
    done = events[-1]
    assert isinstance(done, ChatDone)
    return "".join(e.text for e in events[:-1]), done  # type: ignore[union-attr]


def history(image: Path | None, turns: list[tuple[str, str | None]]) -> list[dict]:
    """A user turn with ``image`` first, then ``(user, reply)`` pairs (reply None: asked now)."""
    out: list[dict] = []
    for i, (user, reply) in enumerate(turns):
        content: str | list[dict] = user
        if i == 0 and image is not None:
            content = [image_part(image), {"type": "text", "text": user}]
        out.append({"role": "user", "content": content})
        if reply is not None:
            out.append({"role": "assistant", "content": reply})
    return out


def before_image(engine: LlamaEngine) -> int:
    """KV units (text tokens) in front of the first image the cache holds."""
    return next(i for i, u in enumerate(engine.kv.units) if isinstance(u, MediaUnit))


def test_units_compare_images_by_id_and_count_positions_apart() -> None:
    a, b = MediaUnit("aa", 16, 16), MediaUnit("bb", 16, 16)
    mrope = MediaUnit("aa", 16, 4)  # M-RoPE: 16 KV cells, 4 positions
    assert common_prefix([1, 2, a, 3], [1, 2, a, 3, 4]) == 4
    assert common_prefix([1, 2, a, 3], [1, 2, b, 3]) == 2
    assert common_prefix([1, MediaUnit("", 16, 16)], [1, MediaUnit("", 16, 16)]) == 1
    assert (n_tokens([1, mrope, 2]), n_pos([1, mrope, 2])) == (18, 6)
    assert KvCache().units == []


def test_turn_two_reuses_the_image_and_matches_a_fresh_evaluation(engine: LlamaEngine,
                                                                  tmp_path: Path) -> None:
    photo = make_image(tmp_path / "p.png", 1)
    engine._reset()
    first, d1 = ask(engine, history(photo, [("What is it?", None)]))
    assert d1.cached_tokens == 0 and d1.extra["encode_s"] > 0
    turns = [("What is it?", first), ("And the colours?", None)]
    second, d2 = ask(engine, history(photo, turns))
    # the whole first prompt (image included) and the reply's tokens stayed in the KV cache
    assert d2.cached_tokens >= d1.prompt_tokens > IMAGE_TOKENS
    assert d2.extra["encode_s"] == 0  # the image was not encoded again
    third, d3 = ask(engine, history(photo, [*turns[:1], ("And the colours?", second),
                                            ("Thanks.", None)]))
    assert d3.cached_tokens >= d2.prompt_tokens
    engine._reset()  # the same histories evaluated from scratch: the same greedy replies
    fresh2, f2 = ask(engine, history(photo, turns))
    assert (fresh2, f2.cached_tokens, f2.prompt_tokens) == (second, 0, d2.prompt_tokens)
    engine._reset()
    assert ask(engine, history(photo, [*turns[:1], ("And the colours?", second),
                                       ("Thanks.", None)]))[0] == third


def test_a_changed_or_removed_image_stops_the_reuse_before_it(engine: LlamaEngine,
                                                              tmp_path: Path) -> None:
    photo, other = make_image(tmp_path / "a.png", 1), make_image(tmp_path / "b.png", 2)
    engine._reset()
    reply, _ = ask(engine, history(photo, [("What is it?", None)]))
    prefix = before_image(engine)
    assert prefix > 0
    later = [("What is it?", reply), ("More?", None)]
    swapped, done = ask(engine, history(other, later))
    assert done.cached_tokens == prefix and done.extra["encode_s"] > 0
    engine._reset()
    assert ask(engine, history(other, later))[0] == swapped  # same as fresh
    ask(engine, history(photo, [("What is it?", None)]))
    _, gone = ask(engine, history(None, later))  # the image removed: text-only prompt
    assert gone.cached_tokens == prefix
    # the same picture re-encoded as another file (same pixels) is still the same image
    copy = tmp_path / "copy.bmp"
    from PIL import Image

    Image.open(photo).save(copy)
    ask(engine, history(photo, [("What is it?", None)]))
    _, same = ask(engine, history(copy, [("What is it?", None)]))
    assert same.cached_tokens == same.prompt_tokens - 1  # all but the last token to re-read


def test_chat_records_show_cached_tokens(cli, tiny_vlm_manifest: Path,  # noqa: F811
                                         tmp_path: Path) -> None:
    photo = make_image(tmp_path / "photo.png", 4)
    base = ["--models", str(tiny_vlm_manifest), "chat", "--script", "-", "--max-tokens", "6",
            "-f", "jsonl"]
    result = cli(*base, "-m", "tiny-vlm", input=f"/attach {photo}\nWhat is it?\nWhy?\nOk.\n")
    assert result.exit_code == 0, result.stderr
    recs = [json.loads(line) for line in result.stdout.splitlines()]
    usage = [r["usage"] for r in recs]
    assert usage[0]["cached_tokens"] == 0
    assert usage[1]["cached_tokens"] >= usage[0]["prompt_tokens"] > IMAGE_TOKENS
    assert usage[2]["cached_tokens"] >= usage[1]["prompt_tokens"]
    assert recs[1]["timings"]["encode_s"] == 0
    text = cli(*base, "-m", "tiny-text", input="Hello there.\nAnd again?\n")
    assert text.exit_code == 0, text.stderr
    usage = [json.loads(line)["usage"] for line in text.stdout.splitlines()]
    assert usage[0]["cached_tokens"] == 0 < usage[0]["prompt_tokens"] <= usage[1]["cached_tokens"]


FAMILY_MANIFEST = """
[models.tiny-{family}]
engine = "llama-mtmd"
tasks = ["chat"]
description = "tiny generated {family} VLM (random weights)"
license = "MIT"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}", mmproj = "{mmproj}" }}
options = {{ n_ctx = 4096 }}
"""


@pytest.mark.parametrize("family", ["llava", "idefics3", "qwen25vl", "gemma3"])
def test_each_family_reuses_the_image_exactly(family: str, tmp_path: Path) -> None:
    """Per libmtmd family (tests/vlmfamilies.py): turn 2 keeps the image's KV (idefics3: every
    tile of it; qwen25vl: M-RoPE, where the image advances fewer positions than its tokens),
    replies as a fresh evaluation does, and another image stops the reuse in front of it."""
    from tests import vlmfamilies

    text, mmproj = vlmfamilies.build(family, tmp_path / "model")
    models = tmp_path / "m.toml"
    models.write_text(FAMILY_MANIFEST.format(family=family, dir=text.parent, model=text.name,
                                             mmproj=mmproj.name))
    settings = Settings()
    model = resolve.resolve(f"tiny-{family}", "chat", manifest.load(models), settings)
    engine = LlamaEngine.load(model, settings)
    try:
        photo = make_image(tmp_path / "a.png", 1, size=(150, 100))
        other = make_image(tmp_path / "b.png", 2, size=(150, 100))
        reply, d1 = ask(engine, history(photo, [("What is it?", None)]))
        images = [u for u in engine.kv.units if isinstance(u, MediaUnit)]
        assert images and n_tokens(engine.kv.units) >= d1.prompt_tokens
        if family == "idefics3":
            assert len(images) > 1 and len({u.id for u in images}) == 1  # tiles of one image
        if family == "qwen25vl":
            assert all(u.n_pos < u.n_tokens for u in images)  # M-RoPE
        prefix = before_image(engine)
        turns = [("What is it?", reply), ("And then?", None)]
        second, d2 = ask(engine, history(photo, turns))
        assert d2.cached_tokens >= d1.prompt_tokens and d2.extra["encode_s"] == 0
        swapped, d3 = ask(engine, history(other, turns))
        assert d3.cached_tokens == prefix and d3.extra["encode_s"] > 0
        engine._reset()
        assert ask(engine, history(photo, turns))[0] == second
        engine._reset()
        assert ask(engine, history(other, turns))[0] == swapped
    finally:
        engine.close()
