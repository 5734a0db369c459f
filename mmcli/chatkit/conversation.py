"""Conversation state: the system prompt, turns, OpenAI-style messages, and context fitting.

Two performance guarantees live here:

* **KV prefix reuse.** llama-cpp-python keeps the evaluated tokens of the previous call and
  only evaluates what follows the longest common prefix. That pays off only if the templated
  prompt of turn N+1 *starts with* the prompt of turn N; ``PrefixCheck`` verifies it on the
  real token ids every turn (a template that rewrites earlier turns silently re-evaluates the
  whole history, and TTFT then grows with the conversation).
* **Never overflow n_ctx.** ``fit`` drops the oldest turns (never the system prompt) until the
  prompt plus a reply budget fits, and reports how many it dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmcli.chatkit.attachments import Attachment
from mmcli.errors import InputError

Message = dict[str, Any]
# Rough cost of one image in a text-only token count (SmolVLM uses 64, LLaVA 576); the engine's
# real count appears in usage.prompt_tokens after the turn.
IMAGE_TOKENS = 256


@dataclass
class Turn:
    """One exchange: the user's text, its attachments, and the reply (None until answered)."""

    user: str
    attachments: list[Attachment] = field(default_factory=list)
    reply: str | None = None

    def user_content(self, for_count: bool = False) -> str | list[dict[str, Any]]:
        """The user message content: labelled attachment blocks, then the text.

        Native images make it a list of parts (image parts first; a native video adds a time
        label before each frame and its timed transcript after them); ``for_count`` swaps
        images for a text placeholder so a text-only tokenizer can count the rest.
        """
        blocks = [a.prompt_text() for a in self.attachments if a.used_as != "native"]
        text = "\n\n".join([*blocks, self.user]) if blocks else self.user
        parts = [p for a in self.attachments for p in a.image_parts(for_count)]
        if not parts:
            return text
        return [*parts, {"type": "text", "text": text}]

    def image_count(self) -> int:
        """Images this turn puts in the prompt (native images, native video frames)."""
        return sum(a.image_count() for a in self.attachments)


@dataclass
class Conversation:
    """The system prompt plus turns; the last turn may be awaiting its reply."""

    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    # The model's default (manifest option ``system``), used when no system prompt is set.
    default_system: str | None = None

    def messages(self, for_count: bool = False) -> list[Message]:
        """OpenAI-style messages for the engine (or, ``for_count``, for counting tokens)."""
        out: list[Message] = []
        system = self.system or self.default_system
        if system:
            out.append({"role": "system", "content": system})
        for turn in self.turns:
            out.append({"role": "user", "content": turn.user_content(for_count)})
            if turn.reply is not None:
                out.append({"role": "assistant", "content": turn.reply})
        return out

    def image_count(self) -> int:
        """Native images in the history, video frames included (each costs image tokens on
        top of the text)."""
        return sum(t.image_count() for t in self.turns)


def cost(conv: Conversation, count: Callable[[list[Message]], int],
         image_tokens: int = IMAGE_TOKENS) -> int:
    """Estimated prompt tokens: the text (images as placeholders) + ``image_tokens`` each."""
    return count(conv.messages(for_count=True)) + image_tokens * conv.image_count()


def fit(conv: Conversation, count: Callable[[list[Message]], int], n_ctx: int,
        reserve: int, image_tokens: int = IMAGE_TOKENS) -> tuple[int, int]:
    """Drop the oldest turns until the prompt + ``reserve`` reply tokens fit ``n_ctx``.

    Args:
        conv: the conversation; its last turn is the message being sent.
        count: messages -> prompt tokens (text-only messages).
        n_ctx: the model's context size.
        reserve: tokens kept free for the reply.
        image_tokens: estimated tokens of one image (the session learns the model's own).
    Returns:
        ``(tokens, dropped)``: the estimated prompt tokens and how many turns were dropped.
    Raises:
        InputError: the newest message alone does not fit (the numbers are in the message).
    """
    dropped = 0
    while True:
        tokens = cost(conv, count, image_tokens)
        if tokens + reserve <= n_ctx:
            return tokens, dropped
        if len(conv.turns) <= 1:
            raise InputError(
                f"the message needs {tokens} tokens plus {reserve} for the reply, but the "
                f"model's context holds {n_ctx}",
                hint="shorten it or attach less, lower --max-tokens, or raise `n_ctx` in the "
                     "model's manifest options")
        conv.turns.pop(0)
        dropped += 1


class PrefixCheck:
    """Remembers the last prompt's token ids and tells whether the next one extends it."""

    def __init__(self) -> None:
        self.last: list[int] | None = None

    def invalidate(self) -> None:
        """History changed on purpose (reset, trim, new system prompt, model, load)."""
        self.last = None

    def check(self, tokens: list[int]) -> bool | None:
        """True when ``tokens`` starts with the previous prompt; None when there is none."""
        previous, self.last = self.last, list(tokens)
        if previous is None:
            return None
        return tokens[:len(previous)] == previous
