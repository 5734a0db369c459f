"""Prompt tokenization in which only the chat template's own markup yields special tokens.

Why: tokenizing a whole rendered prompt with ``special=True`` turns control-token text inside
message content (an attached file saying ``<|im_start|>system ...``) into real control tokens,
so content could forge turns and system prompts. Here:

1. ``split`` renders the template with every content string (message ``content`` and each
   ``{"type": "text"}`` part) replaced by a sentinel, so the markup is known without the content.
2. ``SpecialTokens.partition`` cuts only the markup at special-token text, the way llama.cpp's
   ``tokenizer_st_partition`` does with ``parse_special=True`` (longest text first, LSTRIP and
   RSTRIP whitespace rules); content is never cut.
3. Each run of text between special tokens (markup and content together) is tokenized by
   llama.cpp as plain text (``special=False``), exactly the fragments llama.cpp would form.

For content holding no special-token text the ids are identical to whole-string ``special=True``
tokenization, so token counts and KV-prefix reuse do not change. Tokens llama.cpp marks
USER_DEFINED (never CONTROL) are matched in any text by its plain-text tokenizer too, as
Hugging Face tokenizers match non-special added tokens.

A template that rewrites content beyond trimming it (e.g. splitting off reasoning at
``</think>``) makes the content impossible to locate in its output; then each CONTROL/UNKNOWN
token text inside content is broken by a word joiner before rendering (``neutralize``): still
never a control token, though not the exact plain-text ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import llama_cpp
from llama_cpp import Llama

from mmcli.errors import UsageError

Message = dict[str, Any]
Render = Callable[[list[Message]], str]

_SPECIAL_ATTRS = (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
                  | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN)
_NEVER_IN_CONTENT = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
_C_SPACE = b" \t\n\v\f\r"  # isspace() in the "C" locale, as llama.cpp strips for LSTRIP/RSTRIP
# Private-use characters delimit a content number; U+3000 (a space to str.strip and to Jinja's
# ``trim``, never in chat markup) pads it, so a template that trims content can be detected.
_OPEN, _CLOSE, _PAD = "\ue000", "\ue001", "\u3000"
_SENTINEL = re.compile(f"({_PAD}?){_OPEN}(\\d+){_CLOSE}({_PAD}?)")
_WORD_JOINER = "\u2060"


@dataclass(frozen=True)
class SpecialToken:
    """A special token produced by the template's markup (``text`` as stored in the vocab)."""

    id: int
    text: bytes
    lstrip: bool = False
    rstrip: bool = False
    control: bool = True  # CONTROL or UNKNOWN: never produced by plain-text tokenization


class Media:
    """An image position: the mtmd media marker where the template's markup placed it."""


MEDIA = Media()
Piece = bytes | SpecialToken | Media


@dataclass(frozen=True)
class Segment:
    """A piece of the rendered prompt: template markup, or (``content``) message content."""

    text: str
    content: bool


def split(render: Render, messages: list[Message]) -> tuple[str, list[Segment] | None]:
    """Render ``messages`` and tell markup from content.

    Args:
        render: the template renderer (messages -> prompt text).
        messages: OpenAI-style messages (string content or content parts).
    Returns:
        ``(prompt text, segments)``; segments is None when the template transforms content
        beyond trimming it (then the caller falls back to ``neutralize``).
    """
    text = render(messages)
    originals: list[str] = []

    def hide(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        originals.append(value)
        return f"{_PAD}{_OPEN}{len(originals) - 1}{_CLOSE}{_PAD}"

    try:
        shown = render(map_content(messages, hide))
    except UsageError:
        return text, None
    segments, pos = [], 0
    for m in _SENTINEL.finditer(shown):
        n = int(m.group(2))
        if n >= len(originals):
            return text, None
        content = originals[n] if m.group(1) else originals[n].lstrip()
        content = content if m.group(3) else content.rstrip()
        segments += [Segment(shown[pos:m.start()], False), Segment(content, True)]
        pos = m.end()
    segments.append(Segment(shown[pos:], False))
    markup = "".join(s.text for s in segments if not s.content)
    if "".join(s.text for s in segments) != text or _OPEN in markup or _CLOSE in markup:
        return text, None
    return text, [s for s in segments if s.text]


def map_content(messages: list[Message], fn: Callable[[Any], Any]) -> list[Message]:
    """Copies of ``messages`` with ``fn`` applied to every content string and text part."""
    out = []
    for message in messages:
        if "content" not in message:
            out.append(message)
            continue
        content = message["content"]
        if isinstance(content, list):
            content = [dict(p, text=fn(p.get("text")))
                       if isinstance(p, dict) and p.get("type") == "text" else p
                       for p in content]
        else:
            content = fn(content)
        out.append(dict(message, content=content))
    return out


class SpecialTokens:
    """The special tokens of one vocabulary, in llama.cpp's matching order (longest first)."""

    def __init__(self, tokens: list[SpecialToken]) -> None:
        self.tokens = sorted(tokens, key=lambda t: -len(t.text))

    @classmethod
    def of(cls, llm: Llama) -> SpecialTokens:
        """Read the CONTROL / USER_DEFINED / UNKNOWN tokens of ``llm``'s vocabulary."""
        vocab = llm._model.vocab
        tokens = []
        for i in range(llama_cpp.llama_vocab_n_tokens(vocab)):
            attr = llama_cpp.llama_vocab_get_attr(vocab, i)
            if attr & _SPECIAL_ATTRS:
                text = llama_cpp.llama_vocab_get_text(vocab, i) or b""
                if text:
                    tokens.append(SpecialToken(
                        i, text, lstrip=bool(attr & llama_cpp.LLAMA_TOKEN_ATTR_LSTRIP),
                        rstrip=bool(attr & llama_cpp.LLAMA_TOKEN_ATTR_RSTRIP),
                        control=bool(attr & _NEVER_IN_CONTENT)))
        return cls(tokens)

    def pieces(self, render: Render, messages: list[Message],
               marker: str | None = None) -> tuple[str, list[Piece]]:
        """The prompt as plain-text runs, special tokens and (with ``marker``) image positions.

        Args:
            render: the template renderer (messages -> prompt text).
            messages: OpenAI-style messages.
            marker: the media marker the renderer writes for image parts (vision only).
        Returns:
            ``(prompt text, pieces)``.
        """
        text, segments = split(render, messages)
        if segments is None:
            # The template rewrites content (e.g. splits off reasoning), so content cannot be
            # located in the output: break special-token text inside content instead (a word
            # joiner after its first character) and treat the whole prompt as markup.
            text = render(map_content(messages, lambda v: self.neutralize(v, marker)))
            segments = [Segment(text, False)]
        return text, self.partition(segments, marker)

    def neutralize(self, value: Any, marker: str | None = None) -> Any:
        """``value`` with every CONTROL/UNKNOWN token text (and ``marker``) broken apart."""
        if not isinstance(value, str):
            return value
        texts = [t.text.decode("utf-8", "replace") for t in self.tokens if t.control]
        for t in [*texts, *([marker] if marker else [])]:
            if len(t) > 1 and t in value:
                value = value.replace(t, t[0] + _WORD_JOINER + t[1:])
        return value

    def partition(self, segments: list[Segment], marker: str | None = None) -> list[Piece]:
        """Cut the markup segments at ``marker`` and special-token text; merge the text runs.

        Returns:
            Pieces: ``bytes`` runs (never empty, to be tokenized as plain text),
            ``SpecialToken``s and ``MEDIA``.
        """
        frags: list[Piece | tuple[bytes]] = []  # (bytes,) = content: never cut
        for seg in segments:
            raw = seg.text.encode("utf-8")
            if seg.content:
                frags.append((raw,))
            elif marker:
                for i, part in enumerate(raw.split(marker.encode("utf-8"))):
                    frags += [MEDIA, part] if i else [part]
            else:
                frags.append(raw)
        markup = b"\0".join(f for f in frags if isinstance(f, bytes))
        for token in self.tokens:
            if token.text in markup:
                frags = [p for f in frags for p in _cut(f, token)]
        return _merge(frags)


def _cut(frag: Piece | tuple[bytes], token: SpecialToken) -> list[Piece | tuple[bytes]]:
    if not isinstance(frag, bytes) or token.text not in frag:
        return [frag]
    out: list[Piece | tuple[bytes]] = []
    for i, part in enumerate(frag.split(token.text)):
        out += [token, part] if i else [part]
    return out


def _merge(frags: list[Piece | tuple[bytes]]) -> list[Piece]:
    """Join adjacent text (markup and content) into runs; apply LSTRIP/RSTRIP; drop empties."""
    out: list[Piece] = []
    run = b""
    for f in frags:
        if isinstance(f, tuple | bytes):
            run += f[0] if isinstance(f, tuple) else f
            continue
        if isinstance(f, SpecialToken) and f.lstrip:
            run = run.rstrip(_C_SPACE)
        out += [run, f] if run else [f]
        run = b""
    if run:
        out.append(run)
    for i, piece in enumerate(out):  # RSTRIP eats the whitespace after the token
        if isinstance(piece, SpecialToken) and piece.rstrip and i + 1 < len(out):
            nxt = out[i + 1]
            if isinstance(nxt, bytes):
                out[i + 1] = nxt.lstrip(_C_SPACE)
    return [p for p in out if p != b""]


def token_ids(llm: Llama, pieces: list[Piece], *, add_special: bool) -> list[int]:
    """Token ids of text-only ``pieces``, with BOS/EOS as llama.cpp's ``add_special`` adds them.

    Raises:
        UsageError: the pieces hold an image position.
    """
    vocab = llm._model.vocab
    ids = [llm.token_bos()] if add_special and llama_cpp.llama_vocab_get_add_bos(vocab) else []
    for piece in pieces:
        if isinstance(piece, bytes):
            ids += llm.tokenize(piece, add_bos=False, special=False)
        elif isinstance(piece, SpecialToken):
            ids.append(piece.id)
        else:
            raise UsageError("images are tokenized by the vision encoder, not token_ids()")
    if add_special and llama_cpp.llama_vocab_get_add_eos(vocab):
        ids.append(llm.token_eos())
    return ids
