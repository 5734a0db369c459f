"""What a llama context's KV cache holds, unit by unit, so the next prompt evaluates only its
new part - text and images alike.

llama-cpp-python remembers evaluated *text* tokens and reuses their common prefix; a KV cache
that holds image embeddings it cannot compare. Like llama.cpp's server (``server_tokens``), we
keep the sequence of what was evaluated: a text token id, or one ``MediaUnit`` per mtmd image
chunk, identified by a hash of its pixels (``mtmd_bitmap_set_id``, read back with
``mtmd_input_chunk_get_id``). The next prompt keeps the longest equal prefix of units and
evaluates the rest after ``llama_memory_seq_rm`` from that position.

Two counts per unit: KV cells (``n_tokens``, what fills ``n_ctx``) and positions (``n_pos``,
what ``Llama.n_tokens`` and ``llama_memory_seq_rm`` count). They differ for M-RoPE models
(Qwen2.5-VL), where an image advances the position counter by fewer steps than it has tokens.
llama-cpp-python's ``Llama.input_ids`` is indexed by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MediaUnit:
    """One mtmd image chunk in the KV cache: its id (pixel hash; tiles of one image share it,
    told apart by their order), KV cells and positions."""

    id: str
    n_tokens: int
    n_pos: int


Unit = int | MediaUnit  # a text token id, or an image chunk


def n_tokens(units: Sequence[Unit]) -> int:
    """KV cells the units fill."""
    return sum(u.n_tokens if isinstance(u, MediaUnit) else 1 for u in units)


def n_pos(units: Sequence[Unit]) -> int:
    """Positions the units advance."""
    return sum(u.n_pos if isinstance(u, MediaUnit) else 1 for u in units)


def common_prefix(a: Sequence[Unit], b: Sequence[Unit]) -> int:
    """How many leading units are equal (an image equals only the same pixels and size)."""
    n = 0
    for x, y in zip(a, b):
        if x != y or (isinstance(x, MediaUnit) and not x.id):  # no id: never assume equal
            break
        n += 1
    return n


class KvCache:
    """The units evaluated into sequence 0 of one ``Llama`` (kept in step with ``n_tokens``)."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self._pos = 0  # positions of ``units``

    def clear(self) -> None:
        """The KV cache was cleared."""
        self.units.clear()
        self._pos = 0

    def sync(self, llm: Any) -> None:
        """Take in what ``Llama.generate`` evaluated since (the reply's tokens), from
        ``input_ids``; forget everything when the context went behind our back."""
        if llm.n_tokens < self._pos:
            self.clear()
            return
        self.add(llm.input_ids[self._pos:llm.n_tokens].tolist())

    def add(self, units: Sequence[Unit]) -> None:
        """Record units just evaluated after the current ones."""
        self.units.extend(units)
        self._pos += n_pos(units)

    def reuse(self, llm: Any, prompt: Sequence[Unit]) -> int:
        """Keep the KV of the longest prefix ``prompt`` shares with the cache; drop the rest.

        At least one unit of the prompt stays to evaluate (its logits start the reply), as
        llama-cpp-python does on a full match.

        Returns:
            How many leading units of ``prompt`` are already evaluated; ``llm.n_tokens`` is set
            to their positions.
        """
        self.sync(llm)
        keep = common_prefix(self.units, prompt)
        if keep == len(prompt):
            keep -= 1
        pos = n_pos(prompt[:keep])
        if keep == 0 or not llm._ctx.kv_cache_seq_rm(-1, pos, -1):
            keep, pos = 0, 0  # nothing shared, or partial removal not supported
            llm.reset()
            llm._ctx.kv_cache_clear()
        del self.units[keep:]
        self._pos = pos
        llm.n_tokens = pos
        return keep
