"""Generate a tiny vision-language model (text GGUF + mmproj GGUF) for llama.cpp's libmtmd.

The pair is random but seeded (byte-identical files for a seed), ~700 KB, and loads and answers
in milliseconds (verified with llama-cpp-python 0.3.36 on CPU), so tests drive the real engine
end to end:

- text: ``llama`` architecture, 2 layers, hidden 64, a built-in vocabulary (special tokens,
  256 byte tokens, printable ASCII) and a ChatML-like chat template that iterates content parts.
- mmproj: LLaVA-1.5 style ``mlp`` projector, 56x56 images in 14-pixel patches (16 image tokens),
  vision width 32, 2 blocks.

What the loader insists on (each a silent or late failure otherwise): ``clip.vision.image_mean``
and ``image_std`` as float arrays; a vision feed-forward size different from the vision width
(clip.cpp guesses swapped up/down weights otherwise); a projector whose last layer outputs the
text hidden size (a mismatch shows only at the first chat completion, as the mmproj loads
lazily); a chat template that iterates content parts and leaves BOS out (the handler adds it).

Weights use a large std and an output head whose byte/control rows are zero, so replies are
printable, never end early on EOS, and change with the image's pixels (at std 0.02 with tied
embeddings the model repeats one token and ignores the image).

Run ``python -m tests.tinyvlm DIR`` to write the pair into DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HIDDEN, LAYERS, HEADS, FF = 64, 2, 4, 128
V_WIDTH, V_FF, V_BLOCKS, V_HEADS, IMAGE, PATCH = 32, 48, 2, 2, 56, 14
MM_HIDDEN = 64
N_CTX_TRAIN = 2048
SPECIALS = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# gguf token types: 1 normal, 2 unknown, 3 control, 6 byte
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def vocabulary() -> tuple[list[str], list[int], list[float]]:
    """Tokens, types and scores: specials, 256 byte fallbacks, the SPM space, printable ASCII."""
    tokens = list(SPECIALS)
    types = [UNKNOWN] + [CONTROL] * (len(SPECIALS) - 1)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [BYTE] * 256
    tokens.append("\u2581")  # SentencePiece's space
    tokens += [chr(c) for c in range(0x21, 0x7F)]
    types += [NORMAL] * (len(tokens) - len(types))
    scores = [0.0] * len(SPECIALS) + [0.0] * 256 + [-float(i) for i in range(len(tokens) - 261)]
    return tokens, types, scores


def _rand(rng: np.random.Generator, *shape: int, std: float = 0.25) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(np.float32)


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.float32)


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


def write_text(path: Path, rng: np.random.Generator) -> None:
    """The text model: llama arch, tied to nothing, head rows of non-printables zeroed."""
    import gguf

    tokens, types, scores = vocabulary()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-vlm")
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(SPECIALS.index("<|im_end|>"))
    w.add_add_bos_token(True)
    w.add_add_space_prefix(False)
    w.add_chat_template(CHAT_TEMPLATE)
    n_vocab = len(tokens)
    w.add_tensor("token_embd.weight", _rand(rng, n_vocab, HIDDEN))
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", _ones(HIDDEN))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(p + name + ".weight", _rand(rng, HIDDEN, HIDDEN))
        w.add_tensor(p + "ffn_norm.weight", _ones(HIDDEN))
        w.add_tensor(p + "ffn_gate.weight", _rand(rng, FF, HIDDEN))
        w.add_tensor(p + "ffn_up.weight", _rand(rng, FF, HIDDEN))
        w.add_tensor(p + "ffn_down.weight", _rand(rng, HIDDEN, FF))
    w.add_tensor("output_norm.weight", _ones(HIDDEN))
    head = _rand(rng, n_vocab, HIDDEN, std=1.0)
    head[[i for i, t in enumerate(types) if t != NORMAL]] = 0.0  # never EOS, never bytes
    w.add_tensor("output.weight", head)
    _finish(w)


def write_mmproj(path: Path, rng: np.random.Generator) -> None:
    """The CLIP-style encoder + LLaVA mlp projector into the text model's hidden size."""
    import gguf

    n_pos = (IMAGE // PATCH) ** 2
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name("tiny-vlm-mmproj")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.use_gelu", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_uint32("clip.vision.image_size", IMAGE)
    w.add_uint32("clip.vision.patch_size", PATCH)
    w.add_uint32("clip.vision.embedding_length", V_WIDTH)
    w.add_uint32("clip.vision.feed_forward_length", V_FF)
    w.add_uint32("clip.vision.projection_dim", HIDDEN)
    w.add_uint32("clip.vision.block_count", V_BLOCKS)
    w.add_uint32("clip.vision.attention.head_count", V_HEADS)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    w.add_tensor("v.patch_embd.weight", _rand(rng, V_WIDTH, 3, PATCH, PATCH, std=0.1))
    w.add_tensor("v.position_embd.weight", _rand(rng, n_pos, V_WIDTH))
    w.add_tensor("v.pre_ln.weight", _ones(V_WIDTH))
    w.add_tensor("v.pre_ln.bias", _zeros(V_WIDTH))
    for i in range(V_BLOCKS):
        p = f"v.blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(p + name + ".weight", _rand(rng, V_WIDTH, V_WIDTH))
            w.add_tensor(p + name + ".bias", _zeros(V_WIDTH))
        for name in ("ln1", "ln2"):
            w.add_tensor(p + name + ".weight", _ones(V_WIDTH))
            w.add_tensor(p + name + ".bias", _zeros(V_WIDTH))
        w.add_tensor(p + "ffn_up.weight", _rand(rng, V_FF, V_WIDTH))
        w.add_tensor(p + "ffn_up.bias", _zeros(V_FF))
        w.add_tensor(p + "ffn_down.weight", _rand(rng, V_WIDTH, V_FF))
        w.add_tensor(p + "ffn_down.bias", _zeros(V_WIDTH))
    w.add_tensor("mm.0.weight", _rand(rng, MM_HIDDEN, V_WIDTH, std=0.5))
    w.add_tensor("mm.0.bias", _zeros(MM_HIDDEN))
    w.add_tensor("mm.2.weight", _rand(rng, HIDDEN, MM_HIDDEN, std=0.5))
    w.add_tensor("mm.2.bias", _zeros(HIDDEN))
    _finish(w)


def _finish(w: object) -> None:
    w.write_header_to_file()  # type: ignore[attr-defined]
    w.write_kv_data_to_file()  # type: ignore[attr-defined]
    w.write_tensors_to_file()  # type: ignore[attr-defined]
    w.close()  # type: ignore[attr-defined]


def build(dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``tiny-vlm.gguf`` and ``tiny-vlm-mmproj.gguf`` into ``dir`` (byte-identical per seed).

    Returns:
        ``(text model path, mmproj path)``.
    """
    dir.mkdir(parents=True, exist_ok=True)
    text, mmproj = dir / "tiny-vlm.gguf", dir / "tiny-vlm-mmproj.gguf"
    write_text(text, np.random.default_rng(seed))
    write_mmproj(mmproj, np.random.default_rng(seed + 1))
    return text, mmproj


if __name__ == "__main__":
    for p in build(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-vlm")):
        print(p)
