"""Architecture-faithful tiny VLMs (text GGUF + mmproj GGUF) for every libmtmd family mmcli offers.

``build(family, dir, seed)`` writes ``<family>.gguf`` + ``<family>-mmproj.gguf`` (byte-identical
per seed, a few hundred KB each) that llama.cpp's libmtmd loads through the same code path as the
released files: the family's text architecture, projector type, tensor names, hparam keys,
image preprocessing values and its real chat template. Weights are random (std 0.25, an output
head whose byte/control rows are zero: printable replies that depend on the pixels and never end
early; see ``tests/tinyvlm.py``). The spec is llama.cpp's loader (``tools/mtmd/clip.cpp``,
``mtmd.cpp``, ``conversion/{smolvlm,qwenvl,gemma}.py``, ``src/models/{qwen2vl,gemma3}.cpp``).

Families (ids are the pytest ids):

- ``llava``: ``tests/tinyvlm.py`` as is (llama text + LLaVA-1.5 ``mlp`` projector, ChatML-like
  template of its own: there is no released LLaVA GGUF in the manifest to copy from).
- ``idefics3`` (SmolVLM / SmolVLM2): llama text, ``clip.projector_type = idefics3``: SigLIP tower
  with patch bias + post-LN, pixel shuffle (``projector.scale_factor`` 4, as SmolVLM), the single
  projector ``mm.model.fc.weight``, mean/std 0.5, patch 16, GELU; ``preproc_image_size`` is
  4x the tile size as in SmolVLM (2048 / 512), so every image becomes a grid of tiles plus an
  overview, wrapped in ``<fake_token_around_image><row_R_col_C>`` / ``<global-img>`` markup.
- ``qwen25vl`` (Qwen2.5-VL): ``qwen2vl`` text arch with M-RoPE (``rope.dimension_sections``
  [2, 3, 3, 0] = Qwen2.5-VL-3B's [16, 24, 24, 0] scaled to head dim 16), q/k/v biases;
  ``clip.projector_type = qwen2.5vl_merger``: two temporal patch convs, RMS norms, SwiGLU
  (``use_silu``), window attention (``n_wa_pattern`` 2: block 0 windowed, block 1 full, as
  every 8th of the real 32), 2x2 patch merger ``mm.0``/``mm.2``, CLIP mean/std, patch 14,
  dynamic resolution.
- ``gemma3`` (Gemma 3): ``gemma3`` text arch (q/k norms, post-attention/FFN norms, sliding
  window, separate rope base for local layers); ``clip.projector_type = gemma3``: SigLIP + 4x4
  average pooling (no scale-factor key: the default, as in the released mmproj),
  ``mm.input_projection.weight`` + ``mm.soft_emb_norm.weight``, mean/std 0.5, patch 14.

What a generator cannot reasonably fake (deliberate differences from the released files):

- Sizes: hidden 64, 2 text layers, vision width 32, 2 vision blocks; tile/image sizes scaled
  down (idefics3 tile 128 instead of 512, gemma3 224 instead of 896; Qwen keeps its patch 14 and
  its dynamic resolution), so token counts per image are small (idefics3 4 per tile, gemma3 16).
- Vocabulary: a synthetic SentencePiece vocab (specials + 256 byte fallbacks + printable ASCII)
  with each family's special tokens at their texts, not the released 49k / 151k / 262k vocabs
  (idefics3 and Qwen really use GPT-2 BPE with merges; a byte-level BPE needs the real merges to
  tokenize like the released model, and would not fit a small fixture). Token ids differ.
- Weights are random, so replies are gibberish: tests assert structure (markup, counts,
  positions, determinism, dependence on pixels), never meaning. ``MMCLI_REALMODELS=1`` runs the
  released models where they are cached.
- gemma3: a separate output head (the released model ties it to the embeddings), for printable
  replies; everything else in its text block is the real layout.

``python -m tests.vlmfamilies DIR`` writes all four pairs into DIR.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests import tinyvlm
from tests.tinyvlm import BYTE, CONTROL, NORMAL, UNKNOWN, _finish, _ones, _rand, _zeros

FAMILIES = ("llava", "idefics3", "qwen25vl", "gemma3")
HIDDEN, LAYERS, HEADS, KV_HEADS, FF = 64, 2, 4, 2, 128
HEAD_DIM = HIDDEN // HEADS
V_WIDTH, V_FF, V_BLOCKS, V_HEADS = 32, 48, 2, 2
N_CTX_TRAIN = 4096

# https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/blob/main/chat_template.json
# (the same text is Transformers' tests/models/idefics3 and smolvlm processor templates)
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
# https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct/blob/main/chat_template.json
QWEN25VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# https://huggingface.co/google/gemma-3-4b-it/blob/main/chat_template.json
GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""


@dataclass(frozen=True)
class Vocab:
    """A family's tokenizer: special tokens (text, type) first, then the shared byte/ASCII set."""

    specials: list[tuple[str, int]]
    bos: str
    eos: str
    add_bos: bool
    extra: tuple[str, ...] = ()  # NORMAL multi-character pieces (e.g. "\n\n")

    def tokens(self) -> tuple[list[str], list[int], list[float]]:
        tokens = [t for t, _ in self.specials]
        types = [k for _, k in self.specials]
        tokens += [f"<0x{b:02X}>" for b in range(256)]
        types += [BYTE] * 256
        tokens += ["\u2581", *(chr(c) for c in range(0x21, 0x7F)), *self.extra]
        types += [NORMAL] * (len(tokens) - len(types))
        scores = [0.0 if k != NORMAL else -float(i) for i, k in enumerate(types)]
        return tokens, types, scores


_IDEFICS3_ROWS = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
VOCABS = {
    "idefics3": Vocab(
        [("<|endoftext|>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL),
         ("<unk>", UNKNOWN), ("<fake_token_around_image>", CONTROL), ("<image>", CONTROL),
         ("<global-img>", CONTROL), ("<end_of_utterance>", CONTROL),
         *((t, CONTROL) for t in _IDEFICS3_ROWS)],
        bos="<|im_start|>", eos="<end_of_utterance>", add_bos=False, extra=("\n\n",)),
    "qwen25vl": Vocab(
        [("<|endoftext|>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL),
         ("<unk>", UNKNOWN), ("<|vision_start|>", CONTROL), ("<|vision_end|>", CONTROL),
         ("<|vision_pad|>", CONTROL), ("<|image_pad|>", CONTROL), ("<|video_pad|>", CONTROL)],
        bos="<|endoftext|>", eos="<|im_end|>", add_bos=False),
    "gemma3": Vocab(
        [("<pad>", CONTROL), ("<eos>", CONTROL), ("<bos>", CONTROL), ("<unk>", UNKNOWN),
         ("<start_of_turn>", CONTROL), ("<end_of_turn>", CONTROL), ("<start_of_image>", CONTROL),
         ("<end_of_image>", CONTROL), ("<image_soft_token>", CONTROL)],
        bos="<bos>", eos="<end_of_turn>", add_bos=True),
}
TEMPLATES = {"idefics3": SMOLVLM_TEMPLATE, "qwen25vl": QWEN25VL_TEMPLATE,
             "gemma3": GEMMA3_TEMPLATE}
ARCHS = {"idefics3": "llama", "qwen25vl": "qwen2vl", "gemma3": "gemma3"}


def write_text(family: str, path: Path, rng: np.random.Generator) -> None:
    """The text model in the family's architecture, with its vocabulary and chat template."""
    import gguf

    arch, vocab = ARCHS[family], VOCABS[family]
    tokens, types, scores = vocab.tokens()
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{family}")
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-6 if family != "idefics3" else 1e-5)
    if family == "idefics3":  # SmolLM2: rope theta 100000
        w.add_rope_freq_base(100000.0)
        w.add_rope_dimension_count(HEAD_DIM)
    elif family == "qwen25vl":
        w.add_rope_freq_base(1000000.0)
        w.add_rope_dimension_sections([2, 3, 3, 0])  # sums to HEAD_DIM / 2
    else:  # gemma3: global layers 1e6, local (sliding) layers 1e4, window 1024
        w.add_key_length(HEAD_DIM)
        w.add_value_length(HEAD_DIM)
        w.add_rope_freq_base(1000000.0)
        w.add_rope_freq_base_swa(10000.0)
        w.add_sliding_window(1024)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_unk_token_id(tokens.index("<unk>"))
    w.add_bos_token_id(tokens.index(vocab.bos))
    w.add_eos_token_id(tokens.index(vocab.eos))
    w.add_add_bos_token(vocab.add_bos)
    w.add_add_space_prefix(False)
    w.add_chat_template(TEMPLATES[family])
    n_vocab, kv = len(tokens), KV_HEADS * HEAD_DIM
    w.add_tensor("token_embd.weight", _rand(rng, n_vocab, HIDDEN))
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", _ones(HIDDEN))
        w.add_tensor(p + "attn_q.weight", _rand(rng, HIDDEN, HIDDEN))
        w.add_tensor(p + "attn_k.weight", _rand(rng, kv, HIDDEN))
        w.add_tensor(p + "attn_v.weight", _rand(rng, kv, HIDDEN))
        if family == "qwen25vl":  # Qwen2 has q/k/v biases
            w.add_tensor(p + "attn_q.bias", _rand(rng, HIDDEN, std=0.02))
            w.add_tensor(p + "attn_k.bias", _rand(rng, kv, std=0.02))
            w.add_tensor(p + "attn_v.bias", _rand(rng, kv, std=0.02))
        w.add_tensor(p + "attn_output.weight", _rand(rng, HIDDEN, HIDDEN))
        if family == "gemma3":
            w.add_tensor(p + "attn_q_norm.weight", _ones(HEAD_DIM))
            w.add_tensor(p + "attn_k_norm.weight", _ones(HEAD_DIM))
            w.add_tensor(p + "post_attention_norm.weight", _ones(HIDDEN))
            w.add_tensor(p + "post_ffw_norm.weight", _ones(HIDDEN))
        w.add_tensor(p + "ffn_norm.weight", _ones(HIDDEN))
        w.add_tensor(p + "ffn_gate.weight", _rand(rng, FF, HIDDEN))
        w.add_tensor(p + "ffn_up.weight", _rand(rng, FF, HIDDEN))
        w.add_tensor(p + "ffn_down.weight", _rand(rng, HIDDEN, FF))
    w.add_tensor("output_norm.weight", _ones(HIDDEN))
    head = _rand(rng, n_vocab, HIDDEN, std=1.0)
    head[[i for i, t in enumerate(types) if t != NORMAL]] = 0.0  # never EOS, never bytes
    w.add_tensor("output.weight", head)
    _finish(w)


def _vision_blocks(w: object, rng: np.random.Generator, *, gated: bool, norm_bias: bool) -> None:
    add = w.add_tensor  # type: ignore[attr-defined]
    for i in range(V_BLOCKS):
        p = f"v.blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            add(p + name + ".weight", _rand(rng, V_WIDTH, V_WIDTH))
            add(p + name + ".bias", _zeros(V_WIDTH))
        for name in ("ln1", "ln2"):
            add(p + name + ".weight", _ones(V_WIDTH))
            if norm_bias:
                add(p + name + ".bias", _zeros(V_WIDTH))
        if gated:
            add(p + "ffn_gate.weight", _rand(rng, V_FF, V_WIDTH))
            add(p + "ffn_gate.bias", _zeros(V_FF))
        add(p + "ffn_up.weight", _rand(rng, V_FF, V_WIDTH))
        add(p + "ffn_up.bias", _zeros(V_FF))
        add(p + "ffn_down.weight", _rand(rng, V_WIDTH, V_FF))
        add(p + "ffn_down.bias", _zeros(V_WIDTH))


def _mmproj_header(family: str, path: Path, *, image: int, patch: int, mean: list[float],
                   std: list[float], eps: float) -> object:
    import gguf

    w = gguf.GGUFWriter(str(path), "clip")
    w.add_type(gguf.GGUFType.MMPROJ)
    w.add_name(f"tiny-{family}-mmproj")
    w.add_clip_has_vision_encoder(True)
    w.add_clip_projector_type({"idefics3": "idefics3", "qwen25vl": "qwen2.5vl_merger",
                               "gemma3": "gemma3"}[family])
    w.add_vision_projection_dim(HIDDEN)
    w.add_vision_image_size(image)
    w.add_vision_patch_size(patch)
    w.add_vision_embedding_length(V_WIDTH)
    w.add_vision_feed_forward_length(V_FF)
    w.add_vision_block_count(V_BLOCKS)
    w.add_vision_head_count(V_HEADS)
    w.add_vision_image_mean(mean)
    w.add_vision_image_std(std)
    w.add_vision_attention_layernorm_eps(eps)
    return w


IDEFICS3_TILE, IDEFICS3_PATCH, IDEFICS3_SCALE = 128, 16, 4
QWEN_PATCH = 14
GEMMA3_IMAGE, GEMMA3_PATCH = 224, 14
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def write_idefics3_mmproj(path: Path, rng: np.random.Generator) -> None:
    """SigLIP + pixel shuffle + ``mm.model.fc`` (SmolVLM's mmproj layout, scaled down)."""
    w = _mmproj_header("idefics3", path, image=IDEFICS3_TILE, patch=IDEFICS3_PATCH,
                       mean=[0.5] * 3, std=[0.5] * 3, eps=1e-6)
    w.add_vision_projector_scale_factor(IDEFICS3_SCALE)  # type: ignore[attr-defined]
    w.add_vision_use_gelu(True)  # type: ignore[attr-defined]
    w.add_vision_preproc_image_size(4 * IDEFICS3_TILE)  # type: ignore[attr-defined]
    add = w.add_tensor  # type: ignore[attr-defined]
    add("v.patch_embd.weight", _rand(rng, V_WIDTH, 3, IDEFICS3_PATCH, IDEFICS3_PATCH, std=0.1))
    add("v.patch_embd.bias", _zeros(V_WIDTH))
    add("v.position_embd.weight", _rand(rng, (IDEFICS3_TILE // IDEFICS3_PATCH) ** 2, V_WIDTH))
    _vision_blocks(w, rng, gated=False, norm_bias=True)
    add("v.post_ln.weight", _ones(V_WIDTH))
    add("v.post_ln.bias", _zeros(V_WIDTH))
    add("mm.model.fc.weight", _rand(rng, HIDDEN, V_WIDTH * IDEFICS3_SCALE ** 2, std=0.5))
    _finish(w)


def write_qwen25vl_mmproj(path: Path, rng: np.random.Generator) -> None:
    """Qwen2.5-VL's vision tower: temporal patch convs, window attention, 2x2 merger."""
    w = _mmproj_header("qwen25vl", path, image=560, patch=QWEN_PATCH, mean=CLIP_MEAN,
                       std=CLIP_STD, eps=1e-6)
    w.add_vision_use_silu(True)  # type: ignore[attr-defined]
    w.add_vision_n_wa_pattern(2)  # type: ignore[attr-defined]
    add = w.add_tensor  # type: ignore[attr-defined]
    add("v.patch_embd.weight", _rand(rng, V_WIDTH, 3, QWEN_PATCH, QWEN_PATCH, std=0.1))
    add("v.patch_embd.weight.1", _rand(rng, V_WIDTH, 3, QWEN_PATCH, QWEN_PATCH, std=0.1))
    _vision_blocks(w, rng, gated=True, norm_bias=False)
    add("v.post_ln.weight", _ones(V_WIDTH))
    add("mm.0.weight", _rand(rng, 4 * V_WIDTH, 4 * V_WIDTH, std=0.3))
    add("mm.0.bias", _zeros(4 * V_WIDTH))
    add("mm.2.weight", _rand(rng, HIDDEN, 4 * V_WIDTH, std=0.3))
    add("mm.2.bias", _zeros(HIDDEN))
    _finish(w)


def write_gemma3_mmproj(path: Path, rng: np.random.Generator) -> None:
    """SigLIP + 4x4 average pooling + soft-embedding norm + input projection (Gemma 3)."""
    w = _mmproj_header("gemma3", path, image=GEMMA3_IMAGE, patch=GEMMA3_PATCH,
                       mean=[0.5] * 3, std=[0.5] * 3, eps=1e-6)
    w.add_vision_use_gelu(True)  # type: ignore[attr-defined]
    add = w.add_tensor  # type: ignore[attr-defined]
    add("v.patch_embd.weight", _rand(rng, V_WIDTH, 3, GEMMA3_PATCH, GEMMA3_PATCH, std=0.1))
    add("v.patch_embd.bias", _zeros(V_WIDTH))
    add("v.position_embd.weight", _rand(rng, (GEMMA3_IMAGE // GEMMA3_PATCH) ** 2, V_WIDTH))
    _vision_blocks(w, rng, gated=False, norm_bias=True)
    add("v.post_ln.weight", _ones(V_WIDTH))
    add("v.post_ln.bias", _zeros(V_WIDTH))
    add("mm.soft_emb_norm.weight", _ones(V_WIDTH))
    add("mm.input_projection.weight", _rand(rng, V_WIDTH, HIDDEN, std=0.5))
    _finish(w)


MMPROJ: dict[str, Callable[[Path, np.random.Generator], None]] = {
    "idefics3": write_idefics3_mmproj, "qwen25vl": write_qwen25vl_mmproj,
    "gemma3": write_gemma3_mmproj}


def build(family: str, dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the family's pair into ``dir`` (byte-identical per seed).

    Returns:
        ``(text model path, mmproj path)``.
    """
    if family == "llava":
        return tinyvlm.build(dir, seed)
    if family not in MMPROJ:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    dir.mkdir(parents=True, exist_ok=True)
    text, mmproj = dir / f"tiny-{family}.gguf", dir / f"tiny-{family}-mmproj.gguf"
    write_text(family, text, np.random.default_rng(seed))
    MMPROJ[family](mmproj, np.random.default_rng(seed + 1))
    return text, mmproj


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-vlms")
    for fam in FAMILIES:
        for p in build(fam, out / fam):
            print(p)
