"""Chat benchmark: TTFT over a conversation (text and image chats), decode speed vs bare.

1. Time to first token at turns 1, 2, 5 and 10 of a scripted conversation on the bundled
   SmolLM2-135M (one ChatSession, KV prefix reused between turns). Targets: turn 10 <= 1.5x
   turn 1, and <= 1.5x turn 2. For contrast, turn 10 is also measured after clearing the KV
   cache (what every turn would cost without prefix reuse), and bare llama-cpp-python evaluates
   turn 2's and turn 10's new tokens after as many cached ones (the engine's own growth).
2. The same 10 turns as an image chat: one picture attached at turn 1, on the generated tiny VLM
   (tests/tinyvlm.py, built into a temporary folder). Target: turn 10 <= 1.5x turn 2 (the image
   stays in the KV cache; ``usage.cached_tokens`` is checked), with turn 10 on a cleared KV
   cache (image encoded again, whole history evaluated: what every image turn used to cost).
   Once with mmcli's default flash attention, once with ``flash_attn = false`` (see
   ``image_chat``: the toy model's turn time is mostly ggml's small-batch attention).
3. Decode tokens/s of ``ChatSession.send`` vs a bare llama-cpp-python ``Llama.generate`` loop on
   the same GGUF, prompt and sampling, runs interleaved. Target: >= 0.95x.

Usage: python bench/chat.py [--runs 4] [--tokens 128] [--image-runs 12] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcli import api  # noqa: E402
from mmcli.chatkit.attachments import Attachment  # noqa: E402
from mmcli.chatkit.attachments import load as load_attachment  # noqa: E402
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


def turn(session: ChatSession, text: str, attachments: list[Attachment] | None = None,
         ) -> ChatRecord:
    """Send one message, return its record."""
    record = None
    for event in session.send(text, attachments):
        if isinstance(event, ChatRecord):
            record = event
    assert record is not None
    return record


MEASURED = (1, 2, 5, 10)


Series = tuple[dict[int, float], float, dict[int, tuple[int, int]]]


def ttft_series(settings: Settings, runs: int, model: str = "smollm2-135m",
                image: Path | None = None, max_tokens: int = 48) -> Series:
    """Median TTFT per turn (``MEASURED``), turn 10 with the KV cache cleared, and the prompt
    tokens each measured turn evaluated (not cached); ``image`` is attached to turn 1 (then
    every later turn must reuse its KV: ``usage.cached_tokens``)."""
    per_turn: dict[int, list[float]] = {n: [] for n in MEASURED}
    cold: list[float] = []
    evaluated: dict[int, tuple[int, int]] = {}  # turn -> (cached, evaluated) prompt tokens
    for _ in range(runs):
        session = ChatSession(api.load_model("chat", model, settings), settings,
                              Options(max_tokens=max_tokens))
        try:
            previous = 0
            for n, text in enumerate(TURNS, 1):
                attach = [load_attachment(str(image), 256)] if image and n == 1 else None
                record = turn(session, text, attach)
                assert n == 1 or record.usage.cached_tokens >= previous, "KV not reused"
                previous = record.usage.prompt_tokens
                if n in per_turn:
                    assert n != 1 or record.prefix_reused is None
                    assert n == 1 or record.prefix_reused, "KV prefix not reused"
                    per_turn[n].append(record.timings.extra["ttft_s"])
                    evaluated[n] = (record.usage.cached_tokens,
                                    record.usage.prompt_tokens - record.usage.cached_tokens)
            # Turn 10 again on the same history with the KV cache cleared: the no-reuse cost.
            session.conv.turns.pop()
            session.engine._reset()
            cold.append(turn(session, TURNS[-1]).timings.extra["ttft_s"])
        finally:
            session.close()
    return ({n: statistics.median(v) for n, v in per_turn.items()}, statistics.median(cold),
            evaluated)


def image_chat(runs: int, threads: int | None, flash_attn: bool = True) -> Series:
    """``ttft_series`` of the tiny VLM with a picture at turn 1 (models built in a temp dir).

    ``flash_attn=False`` is the manifest option: ggml's CPU flash attention takes a per-row
    path for batches under 64 tokens (GGML_FA_TILE_Q), whose cost grows with the cached
    history; on a 64-wide toy model that attention is most of a turn's work.
    """
    from tests.vision_fixtures import make_image, write_manifest

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        models = write_manifest(root / "tiny-vlm.toml", root / "model")
        if not flash_attn:
            text = models.read_text()
            models.write_text(text.replace("options = { n_ctx = 1024 }",
                                           "options = { n_ctx = 1024, flash_attn = false }", 1))
        photo = make_image(root / "photo.png", 1, size=(640, 480))
        settings = Settings.from_env(offline=True, models_file=models, threads=threads)
        return ttft_series(settings, runs, "tiny-vlm", photo, max_tokens=24)


def print_series(name: str, series: Series) -> None:
    """TTFT per turn, the ratios to turns 1 and 2, and the cleared-KV contrast."""
    ttft, cold, evaluated = series
    for n in MEASURED:
        ratios = "" if n == 1 else f"   ({ttft[n] / ttft[1]:.2f}x turn 1" + (
            "" if n == 2 else f", {ttft[n] / ttft[2]:.2f}x turn 2") + ")"
        print(f"{name} TTFT turn {n:>2}: {ttft[n] * 1000:7.1f} ms, {evaluated[n][1]:4d} prompt "
              f"tokens evaluated{ratios}")
    print(f"{name} turn 10 / turn 2 = {ttft[10] / ttft[2]:.2f} (target <= 1.5); with the KV "
          f"cache cleared turn 10 takes {cold * 1000:.1f} ms ({cold / ttft[10]:.1f}x)")


def bare_growth(settings: Settings, evaluated: dict[int, tuple[int, int]], runs: int,
                ) -> tuple[float, float]:
    """The engine's own growth: bare llama-cpp-python evaluating turn 2's and turn 10's new
    token counts after as many cached tokens (same GGUF, threads and flash attention as
    mmcli), median seconds of each, runs interleaved."""
    import random

    from llama_cpp import Llama

    from mmcli.backends.llama import _cpu_has_amx, _extra_buffers

    model = api.load_model("chat", "smollm2-135m", settings)
    with _extra_buffers(not _cpu_has_amx()):
        bare = Llama(str(model.files["model"]), n_ctx=2048, n_threads=settings.threads,
                     n_threads_batch=settings.threads, flash_attn=True, verbose=False)
    tokens = [random.Random(0).randrange(300, 5000) for _ in range(2000)]
    times: dict[int, list[float]] = {2: [], 10: []}
    try:
        for _ in range(runs):
            for n in (2, 10):
                cached, new = evaluated[n]
                bare.reset()
                bare._ctx.kv_cache_clear()
                bare.eval(tokens[:cached])
                start = time.perf_counter()
                bare.eval(tokens[cached:cached + new])
                times[n].append(time.perf_counter() - start)
    finally:
        bare.close()
    return statistics.median(times[2]), statistics.median(times[10])


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
    parser.add_argument("--image-runs", type=int, default=12,
                        help="runs of the tiny-VLM image chat (milliseconds each: noisy)")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (default: its own; 1 on a shared machine)")
    args = parser.parse_args()
    settings = Settings.from_env(offline=True, threads=args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, "
          f"threads {args.threads or 'default'}")
    text = ttft_series(settings, args.runs)
    print_series("smollm2 text chat  ", text)
    print(f"smollm2 turn 10 / turn 1 = {text[0][10] / text[0][1]:.2f} (target <= 1.5)")
    two, ten = bare_growth(settings, text[2], args.runs)
    print(f"bare llama-cpp-python, the same tokens after the same cache: turn 10 / turn 2 = "
          f"{ten / two:.2f} ({ten * 1000:.1f} vs {two * 1000:.1f} ms): the engine's own growth")
    print_series("tiny-vlm image chat", image_chat(args.image_runs, args.threads))
    print_series("tiny-vlm, no flash attn", image_chat(args.image_runs, args.threads, False))
    print(f"load average after the TTFT runs: {os.getloadavg()[0]:.2f}")
    ours, theirs, n = decode_compare(settings, args.runs, args.tokens)
    print(f"decode: mmcli {ours:.1f} tok/s, bare llama-cpp-python {theirs:.1f} tok/s "
          f"({n} tokens) -> {ours / theirs:.3f}x (target >= 0.95x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
