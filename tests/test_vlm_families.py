"""Every libmtmd VLM family end to end through mmcli, on architecture-faithful tiny models.

Each test is parametrized with the family ids ``llava``, ``idefics3``, ``qwen25vl``, ``gemma3``
(``pytest -k idefics3`` runs one family). The pairs come from ``tests/vlmfamilies.py`` (real
text architecture, projector type, tensor names, hparams and chat template per family; random
weights). What the model really saw is read back from libmtmd itself: every call to
``mtmd_tokenize_from_parts`` is recorded (each chunk's type, token count, position count, image
grid, text tokens), so the tests check the family's markup as tokens and the image token counts
libmtmd reports (``mtmd_input_chunk_get_n_tokens``) against the records mmcli writes.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import tinyvlm, vlmfamilies
from tests.vision_fixtures import make_image

MANIFEST = """
[models.tiny-{family}]
engine = "llama-mtmd"
tasks = ["caption", "vqa", "chat"]
description = "tiny generated {family} VLM for tests (random weights)"
license = "MIT"
size_mb = 1
path = "{dir}"
files = {{ model = "{model}", mmproj = "{mmproj}" }}
options = {{ n_ctx = 2048 }}
"""

# What the family's template + libmtmd put around the prompt and each image (as token text).
MARKUP = {
    "llava": ("<s><|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"),
    "idefics3": ("<|im_start|>User:", "<end_of_utterance>\nAssistant:"),
    "qwen25vl": ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                 "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"),
    "gemma3": ("<bos><start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"),
}
IMAGE_OPEN = {"llava": "[image]", "idefics3": "<fake_token_around_image><row_1_col_1>",
              "qwen25vl": "<|vision_start|>", "gemma3": "<start_of_image>"}
IMAGE_CLOSE = {"llava": "[image]", "idefics3": "<fake_token_around_image><global-img>[image]"
               "<fake_token_around_image>", "qwen25vl": "<|vision_end|>",
               "gemma3": "<end_of_image>"}
FAMILIES = pytest.mark.parametrize("family", vlmfamilies.FAMILIES)


@dataclass(frozen=True)
class Chunk:
    """One libmtmd chunk as the text model receives it."""

    image: bool
    n_tokens: int
    n_pos: int
    grid: tuple[int, int] = (0, 0)  # image tokens per row, rows
    tokens: tuple[int, ...] = ()


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each family's pair and manifest, generated once per session."""
    root = tmp_path_factory.mktemp("vlm-families")
    out = {}
    for family in vlmfamilies.FAMILIES:
        text, mmproj = vlmfamilies.build(family, root / family)
        (root / family / "models.toml").write_text(MANIFEST.format(
            family=family, dir=root / family, model=text.name, mmproj=mmproj.name))
        out[family] = root / family
    return out


@pytest.fixture
def chunks(monkeypatch: pytest.MonkeyPatch) -> list[list[Chunk]]:
    """Every prompt libmtmd tokenized during the test, as its list of chunks."""
    import llama_cpp.mtmd_cpp as mtmd_cpp

    seen: list[list[Chunk]] = []
    real = mtmd_cpp.mtmd_tokenize_from_parts

    def spy(ctx: Any, out: Any, *args: Any) -> int:
        rc = real(ctx, out, *args)
        seen.append([_chunk(mtmd_cpp, mtmd_cpp.mtmd_input_chunks_get(out, i))
                     for i in range(mtmd_cpp.mtmd_input_chunks_size(out))])
        return int(rc)

    monkeypatch.setattr(mtmd_cpp, "mtmd_tokenize_from_parts", spy)
    return seen


def _chunk(m: Any, c: Any) -> Chunk:
    n, n_pos = int(m.mtmd_input_chunk_get_n_tokens(c)), int(m.mtmd_input_chunk_get_n_pos(c))
    if m.mtmd_input_chunk_get_type(c) == m.MTMD_INPUT_CHUNK_TYPE_TEXT:
        size = ctypes.c_size_t()
        ptr = m.mtmd_input_chunk_get_tokens_text(c, ctypes.byref(size))
        return Chunk(False, n, n_pos, tokens=tuple(ptr[i] for i in range(size.value)))
    img = m.mtmd_input_chunk_get_tokens_image(c)
    grid = (int(m.mtmd_image_tokens_get_nx(img)), int(m.mtmd_image_tokens_get_ny(img)))
    return Chunk(True, n, n_pos, grid)


def vocab(family: str) -> list[str]:
    return (tinyvlm.vocabulary() if family == "llava" else
            vlmfamilies.VOCABS[family].tokens())[0]


def seen_text(family: str, prompt: list[Chunk]) -> str:
    """The prompt as the model saw it: token texts, ``[image]`` for each image chunk."""
    pieces = vocab(family)
    out = []
    for c in prompt:
        if c.image:
            out.append("[image]")
            continue
        for t in c.tokens:
            p = pieces[t]
            out.append(chr(int(p[3:5], 16)) if p.startswith("<0x") else p.replace("\u2581", " "))
    return "".join(out)


def run(cli: Any, dirs: dict[str, Path], family: str, *args: str,
        input: str | None = None) -> list[dict[str, Any]]:
    # One thread: ggml's spinning workers crawl on a loaded CI machine, the models are tiny.
    r = cli("--models", str(dirs[family] / "models.toml"), "--threads", "1", *args,
            "-m", f"tiny-{family}", "-f", "jsonl", "--max-tokens", "8", input=input)
    assert r.exit_code == 0, r.stderr
    # libmtmd / llama.cpp logging stays silent: only the batch summary reaches stderr
    assert all(re.match(r"\d+ done", line) for line in r.stderr.splitlines()), r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture
def images(tmp_path: Path) -> Iterator[list[Path]]:
    pics = [make_image(tmp_path / f"img{i}.png", seed) for i, seed in enumerate((11, 12))]
    yield [*pics, Path(shutil.copy(pics[0], tmp_path / "again.png"))]


@FAMILIES
def test_fixture_is_byte_identical_per_seed(family_dirs, tmp_path, family):
    """The generator is reproducible (a seed gives the same bytes) and small."""
    a = vlmfamilies.build(family, tmp_path / "a")
    b = vlmfamilies.build(family, tmp_path / "b")
    other = vlmfamilies.build(family, tmp_path / "c", seed=7)
    for x, y, z in zip(a, b, other):
        assert x.read_bytes() == y.read_bytes() != z.read_bytes()
        assert 100_000 < x.stat().st_size < 1_000_000
        assert x.read_bytes() == (family_dirs[family] / x.name).read_bytes()


def image_chunks(prompt: list[Chunk]) -> list[Chunk]:
    return [c for c in prompt if c.image]


def check_prompt(family: str, prompt: list[Chunk], prompt_tokens: int, n_images: int,
                 system: bool = False) -> str:
    """The family's markup is what the model saw, each image became the family's image tokens,
    and mmcli's count is libmtmd's (``mtmd_input_chunk_get_n_tokens`` over every chunk)."""
    assert prompt_tokens == sum(c.n_tokens for c in prompt)
    seen = seen_text(family, prompt)
    start, end = MARKUP[family]
    assert seen.endswith(end) and (system or seen.startswith(start)), seen
    assert seen.count(IMAGE_OPEN[family]) == n_images and seen.count(IMAGE_CLOSE[family]) == \
        n_images, seen
    images = image_chunks(prompt)
    for c in images:
        nx, ny = c.grid
        assert c.n_tokens == nx * ny
        if family == "qwen25vl":  # M-RoPE: an image advances the position by its longer side
            assert c.n_pos == max(nx, ny) < c.n_tokens
        else:
            assert c.n_pos == c.n_tokens
    if family == "llava":
        assert [c.n_tokens for c in images] == [16] * n_images  # 56x56 / 14-pixel patches
    elif family == "gemma3":  # 224 / 14 = 16 patches a side, 4x4 average pooling
        assert [c.n_tokens for c in images] == [16] * n_images
    elif family == "idefics3":  # tiles + overview, (128 / 16 / scale 4)^2 = 4 tokens each
        assert {c.n_tokens for c in images} == {4} and len(images) % n_images == 0
        assert len(images) // n_images > 1
    return seen


def reply_differs(a: str, b: str) -> bool:
    return bool(a) and bool(b) and a != b


@FAMILIES
def test_caption(cli, family_dirs, chunks, images, family):
    recs = run(cli, family_dirs, family, "caption", *map(str, images))
    assert len(recs) == len(chunks) == 3
    for rec, prompt in zip(recs, chunks):
        seen = check_prompt(family, prompt, rec["prompt_tokens"], 1)
        assert rec["prompt"] in seen and rec["error"] is None
    assert recs[0]["caption"] == recs[2]["caption"]  # same pixels, same caption
    assert reply_differs(recs[0]["caption"], recs[1]["caption"])  # the pixels reach the model


@FAMILIES
def test_vqa(cli, family_dirs, chunks, images, family):
    recs = run(cli, family_dirs, family, "vqa", *map(str, images), "-q", "Which colour?")
    assert len(recs) == len(chunks) == 3
    for rec, prompt in zip(recs, chunks):
        assert "Which colour?" in check_prompt(family, prompt, rec["prompt_tokens"], 1)
    assert recs[0]["answer"] == recs[2]["answer"]
    assert reply_differs(recs[0]["answer"], recs[1]["answer"])


@FAMILIES
def test_vqa_together(cli, family_dirs, chunks, images, family):
    both = run(cli, family_dirs, family, "vqa", "--together", str(images[0]), str(images[1]),
               "-q", "Which one is brighter?")
    swapped = run(cli, family_dirs, family, "vqa", "--together", str(images[1]),
                  str(images[2]), "-q", "Which one is brighter?")
    assert len(both) == len(swapped) == 1 and len(chunks) == 2
    seen = check_prompt(family, chunks[0], both[0]["prompt_tokens"], 2)
    assert seen.index(IMAGE_OPEN[family]) < seen.index("Which one is brighter?")
    check_prompt(family, chunks[1], swapped[0]["prompt_tokens"], 2)
    assert both[0]["images"] == [str(images[0]), str(images[1])]
    assert reply_differs(both[0]["answer"], swapped[0]["answer"])  # order matters


@FAMILIES
def test_chat_with_attached_image(cli, family_dirs, chunks, images, family):
    replies = []
    for image in images:
        recs = run(cli, family_dirs, family, "chat", "What is in the picture?", "-a",
                   str(image))
        rec = recs[-1]
        assert rec["attachments"][0]["used_as"] == "native" and rec["error"] is None
        seen = check_prompt(family, chunks[-1], rec["usage"]["prompt_tokens"], 1)
        assert "What is in the picture?" in seen
        replies.append(rec["reply"])
    assert replies[0] == replies[2] and reply_differs(replies[0], replies[1])


@FAMILIES
def test_chat_keeps_system_prompt_and_history(cli, family_dirs, chunks, images, family):
    """A two-turn chat about a photo: the second prompt still holds the system prompt, the
    first question, the first reply and the image - SmolVLM's template renders only content
    parts, so plain-string messages must reach it as text parts (as llama.cpp does)."""
    recs = run(cli, family_dirs, family, "chat", "--script", "-", "--system",
               "Answer in French.", "-a", str(images[0]),
               input="What is it?\nAnd its colour?\n")
    assert [r["turn"] for r in recs] == [1, 2] and len(chunks) >= 2
    seen = check_prompt(family, chunks[-1], recs[1]["usage"]["prompt_tokens"], 1, system=True)
    for text in ("Answer in French.", "What is it?", recs[0]["reply"], "And its colour?"):
        assert text in seen, (text, seen)
    assert recs[1]["usage"]["cached_tokens"] > len(image_chunks(chunks[-1]))


def test_idefics3_large_image_is_tiled(cli, family_dirs, chunks, tmp_path):
    """A picture larger than the 128-pixel tile: resized to the longest edge (4 tiles), split
    into a grid of tiles plus the overview, each tile behind its <row_R_col_C> marker."""
    wide = make_image(tmp_path / "wide.png", 5, size=(400, 130))
    rec = run(cli, family_dirs, "idefics3", "caption", str(wide))[0]
    seen = check_prompt("idefics3", chunks[0], rec["prompt_tokens"], 1)
    tile, edge = vlmfamilies.IDEFICS3_TILE, 4 * vlmfamilies.IDEFICS3_TILE
    height = int(edge / (400 / 130))
    height += height % 2
    cols, rows = -(-edge // tile), -(-height // tile)  # mtmd's idefics3 preprocessor
    assert (cols, rows) == (4, 2)
    assert len(image_chunks(chunks[0])) == cols * rows + 1
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            assert f"<fake_token_around_image><row_{r}_col_{c}>[image]" in seen
    assert f"<row_{rows + 1}_col_1>" not in seen and f"<row_1_col_{cols + 1}>" not in seen


# ----------------------------------------------------------------- llama.cpp's own evaluation
class Reference:
    """llama.cpp's standard path on a fresh context: the rendered prompt (BOS text dropped when
    the vocabulary adds one, as ``common/chat.cpp`` does) through ``mtmd_tokenize`` and
    ``mtmd_helper_eval_chunks``, then greedy decoding with llama.cpp's own positions."""

    def __init__(self, model: Path, mmproj: Path) -> None:
        import llama_cpp
        import llama_cpp.mtmd_cpp as mtmd_cpp
        from llama_cpp import Llama

        self.lib, self.m = llama_cpp, mtmd_cpp
        self.llm = Llama(str(model), n_ctx=2048, n_threads=1, n_threads_batch=1,
                         flash_attn=True, verbose=False)
        params = mtmd_cpp.mtmd_context_params_default()
        params.use_gpu, params.n_threads, params.print_timings = False, 1, False
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED  # as mmcli's handler
        self.ctx = mtmd_cpp.mtmd_init_from_file(str(mmproj).encode(), self.llm.model, params)
        assert self.ctx is not None

    def run(self, text: str, images: list[bytes], n: int) -> tuple[int, Any, str]:
        """``(prompt tokens, logits after the prompt, greedy reply of n tokens)``."""
        import numpy as np

        lib, m, llm = self.lib, self.m, self.llm
        llm._ctx.kv_cache_clear()
        bos = llm.detokenize([llm.token_bos()], special=True).decode()
        if llm.metadata.get("tokenizer.ggml.add_bos_token") == "true" and text.startswith(bos):
            text = text[len(bos):]
        bitmaps = [m.mtmd_helper_bitmap_init_from_buf(
            self.ctx, (ctypes.c_uint8 * len(b)).from_buffer(bytearray(b)), len(b), False)
            for b in images]
        chunks = m.mtmd_input_chunks_init()
        try:
            raw = text.encode()
            inp = m.mtmd_input_text(raw, len(raw), True, True)
            arr = (m.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps)
            assert m.mtmd_tokenize(self.ctx, chunks, ctypes.byref(inp), arr, len(bitmaps)) == 0
            n_past = lib.llama_pos(0)
            assert m.mtmd_helper_eval_chunks(self.ctx, llm._ctx.ctx, chunks, 0, 0, llm.n_batch,
                                             True, ctypes.byref(n_past)) == 0
            n_tokens = int(m.mtmd_helper_get_n_tokens(chunks))
        finally:
            m.mtmd_input_chunks_free(chunks)
            for b in bitmaps:
                m.mtmd_bitmap_free(b)
        n_vocab = llm.n_vocab()

        def logits() -> Any:
            ptr = lib.llama_get_logits_ith(llm._ctx.ctx, -1)
            return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()

        first, out = logits(), []
        for _ in range(n):
            out.append(int(np.argmax(logits())))
            one = (lib.llama_token * 1)(out[-1])  # position: the KV's last + 1
            assert lib.llama_decode(llm._ctx.ctx, lib.llama_batch_get_one(one, 1)) == 0
        return n_tokens, first, llm.detokenize(out).decode("utf-8", "replace")

    def close(self) -> None:
        self.m.mtmd_free(self.ctx)
        self.llm.close()


def _engine(family_dirs: dict[str, Path], family: str) -> Any:
    from mmcli import api
    from mmcli.backends.llama import LlamaEngine
    from mmcli.settings import Settings

    settings = Settings(models_file=family_dirs[family] / "models.toml", threads=1)
    return LlamaEngine.load(api.load_model("chat", f"tiny-{family}", settings), settings)


def _ask(engine: Any, messages: list[dict[str, Any]], n: int) -> tuple[Any, str, Any]:
    """``(ChatDone, reply, logits after the prompt)``: a 1-token call leaves the prompt's
    logits in the context (the sampled token is never decoded), then the full reply."""
    import llama_cpp
    import numpy as np

    list(engine.chat(messages, max_tokens=1, temperature=0.0))
    ptr = llama_cpp.llama_get_logits_ith(engine.llm._ctx.ctx, -1)
    logits = np.ctypeslib.as_array(ptr, shape=(engine.llm.n_vocab(),)).copy()
    events = list(engine.chat(messages, max_tokens=n, temperature=0.0))
    return events[-1], "".join(getattr(e, "text", "") for e in events[:-1]), logits


@FAMILIES
def test_prompt_eval_matches_mtmd_helper_and_prefix_reuse(family_dirs, images, family):
    """mmcli evaluates the chunks itself; the text after each image must sit at the positions
    ``mtmd_helper_eval_chunks`` gives it. Under M-RoPE (qwen25vl) an image advances the
    position by max(grid) but fills one KV cell per token, so a token count used as a position
    shifts everything after the image. Then a second turn that extends the first (the image
    stays in the KV cache) must equal a fresh evaluation of the whole conversation."""
    import numpy as np

    url = images[0].resolve().as_uri()
    turn1 = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                          {"type": "text", "text": "What is it?"}]}]
    engine = _engine(family_dirs, family)
    ref = Reference(engine.llm.model_path, Path(engine.vision.handler.clip_model_path))
    try:
        done, reply, logits = _ask(engine, turn1, 8)
        n_tokens, ref_logits, ref_reply = ref.run(engine.render(turn1), [images[0].read_bytes()],
                                                  8)
        assert done.prompt_tokens == n_tokens  # KV cells, not positions
        np.testing.assert_allclose(logits, ref_logits, atol=1e-4)
        assert reply == ref_reply and len(reply) == 8
        # the repeated prompt came from the KV cache (the last token is evaluated again for its
        # logits)
        assert n_tokens - 1 <= done.cached_tokens <= n_tokens

        turn2 = [*turn1, {"role": "assistant", "content": reply},
                 {"role": "user", "content": [{"type": "text", "text": "And its colour?"}]}]
        done2, reply2, logits2 = _ask(engine, turn2, 8)
        n2, ref_logits2, ref_reply2 = ref.run(engine.render(turn2), [images[0].read_bytes()], 8)
        assert done2.prompt_tokens == n2 and n_tokens - 8 < done2.cached_tokens <= n2
        # Only the suffix was evaluated, in a batch of another shape than the reference's one
        # pass: float rounding moves logits by ~0.05 (of ~20); a wrong position moves them by
        # ~20 and changes the greedy token.
        np.testing.assert_allclose(logits2, ref_logits2, atol=0.5)
        assert np.argmax(logits2) == np.argmax(ref_logits2) and reply2[0] == ref_reply2[0]
    finally:
        ref.close()
        engine.close()
