"""Chat benchmark on the bundled SmolLM2-135M: TTFT over a conversation, decode speed vs bare.

1. Time to first token at turns 1, 5 and 10 of a scripted conversation (one ChatSession, KV
   prefix reused between turns). Target: turn 10 <= 1.5x turn 1. For contrast, turn 10 is also
   measured after clearing the KV cache (what every turn would cost without prefix reuse).
2. Decode tokens/s of ``ChatSession.send`` vs a bare llama-cpp-python ``Llama.generate`` loop on
   the same GGUF, prompt and sampling, runs interleaved. Target: >= 0.95x.

Usage: python bench/chat.py [--runs 4] [--tokens 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcli import api  # noqa: E402
from mmcli.chatkit.session import ChatSession  # noqa: E402
from mmcli.settings import Settings  # noqa: E402
from mmcli.tasks.chat import ChatRecord, Options  # noqa: E402

TURNS = [
    "Hi! I am planning a trip to Italy.", "Which cities should I visit?",
    "What food is Naples known for?", "And Rome?", "How do I get from Rome to Florence?",
    "Is the train expensive?", "What should I pack for October?", "Any tips for museums?",
    "How many days in Venice?", "Summarize my plan in one sentence.",
]
STORY = "Write a long story about a dragon who learns to cook."


def turn(session: ChatSession, text: str) -> ChatRecord:
    """Send one message, return its record."""
    record = None
    for event in session.send(text):
        if isinstance(event, ChatRecord):
            record = event
    assert record is not None
    return record


def ttft_series(settings: Settings, runs: int) -> tuple[dict[int, float], float]:
    """Median TTFT per turn (1, 5, 10) and turn 10 with the KV cache cleared."""
    per_turn: dict[int, list[float]] = {1: [], 5: [], 10: []}
    cold: list[float] = []
    for _ in range(runs):
        session = ChatSession(api.load_model("chat", "smollm2-135m", settings), settings,
                              Options(max_tokens=48))
        try:
            for n, text in enumerate(TURNS, 1):
                record = turn(session, text)
                if n in per_turn:
                    assert n != 1 or record.prefix_reused is None
                    assert n == 1 or record.prefix_reused, "KV prefix not reused"
                    per_turn[n].append(record.timings.extra["ttft_s"])
            # Turn 10 again on the same history with the KV cache cleared: the no-reuse cost.
            session.conv.turns.pop()
            session.engine.llm.reset()
            session.engine.llm._ctx.kv_cache_clear()
            cold.append(turn(session, TURNS[-1]).timings.extra["ttft_s"])
        finally:
            session.close()
    return {n: statistics.median(v) for n, v in per_turn.items()}, statistics.median(cold)


def bare_decode(llm: object, tokens: list[int], limit: int) -> tuple[int, float]:
    """Tokens and decode tokens/s of a bare ``Llama.generate`` loop (same sampling as mmcli)."""
    import llama_cpp

    from mmcli.backends.llama import SAMPLING

    vocab = llm._model.vocab  # type: ignore[attr-defined]
    llm.reset()  # type: ignore[attr-defined]
    count, first, last = 0, 0.0, 0.0
    for token in llm.generate(tokens, temp=0.0, **SAMPLING):  # type: ignore[attr-defined]
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        llm.detokenize([token])  # type: ignore[attr-defined]
        count += 1
        last = time.perf_counter()
        if count == 1:
            first = last
        if count >= limit:
            break
    return count, (count - 1) / (last - first)


def decode_compare(settings: Settings, runs: int, limit: int) -> tuple[float, float, int]:
    """Median decode tokens/s: (mmcli, bare, tokens per run)."""
    from llama_cpp import Llama

    from mmcli.backends.llama import _cpu_has_amx, _extra_buffers

    model = api.load_model("chat", "smollm2-135m", settings)
    session = ChatSession(model, settings, Options(max_tokens=limit))
    with _extra_buffers(not _cpu_has_amx()):  # the same load guard as the backend
        bare = Llama(str(model.files["model"]), n_ctx=2048, verbose=False)
    ours, theirs, counts = [], [], set()
    try:
        tokens = session.engine.prompt_tokens([{"role": "system", "content": "x"}])
        for i in range(runs):
            for side in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):  # alternate
                if side == "ours":
                    session.reset()
                    record = turn(session, STORY)
                    ours.append(record.timings.extra["tokens_per_s"])
                    tokens = session.engine.prompt_tokens(session.conv.messages()[:-1])
                    counts.add(record.usage.completion_tokens)
                else:
                    n, rate = bare_decode(bare, tokens, limit)
                    theirs.append(rate)
        counts.add(bare_decode(bare, tokens, limit)[0])  # the same prompt: the same tokens
    finally:
        session.close()
        bare.close()
    assert len(counts) == 1, f"different reply lengths {counts}: not the same work"
    return statistics.median(ours), statistics.median(theirs), counts.pop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    settings = Settings.from_env(offline=True)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    ttft, cold = ttft_series(settings, args.runs)
    print(f"TTFT turn 1:  {ttft[1] * 1000:7.1f} ms")
    print(f"TTFT turn 5:  {ttft[5] * 1000:7.1f} ms   ({ttft[5] / ttft[1]:.2f}x turn 1)")
    print(f"TTFT turn 10: {ttft[10] * 1000:7.1f} ms   ({ttft[10] / ttft[1]:.2f}x turn 1; "
          "target <= 1.5x)")
    print(f"TTFT turn 10 with the KV cache cleared: {cold * 1000:.1f} ms "
          f"({cold / ttft[10]:.1f}x the reused-prefix turn)")
    ours, theirs, n = decode_compare(settings, args.runs, args.tokens)
    print(f"decode: mmcli {ours:.1f} tok/s, bare llama-cpp-python {theirs:.1f} tok/s "
          f"({n} tokens) -> {ours / theirs:.3f}x (target >= 0.95x)")


if __name__ == "__main__":
    main()
