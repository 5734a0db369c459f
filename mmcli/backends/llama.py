"""llama.cpp backend (llama-cpp-python): text chat, and images through libmtmd.

One class serves the ``llama`` and ``llama-mtmd`` engines: a ``mmproj`` file role turns vision
on. Prompts are rendered with the model's own chat template (``tokenizer.chat_template`` in
the GGUF), so SmolVLM, Qwen2.5-VL, Gemma 3 and other libmtmd models work alike. Generation runs
token by token through ``Llama.generate`` so streaming, stop strings, exact token counts and
cancellation (``should_stop``) are under our control. Each prompt evaluates only what follows
the longest prefix the KV cache already holds (``mmcli.backends.kvcache``): text tokens, and
images known by a hash of their pixels, so a chat's later turns about a photo do not encode it
again (``ChatDone.cached_tokens`` counts what was reused).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import Llama

from mmcli import devices
from mmcli.backends import kvcache, mtmd, safetokens
from mmcli.backends.textstream import TextStream
from mmcli.errors import InputError, ModelUnavailableError, UsageError
from mmcli.events import ChatDone, GenerationEvent, TextDelta
from mmcli.records import ResolvedModel
from mmcli.settings import Settings

DEFAULT_N_CTX_TEXT = 2048
DEFAULT_N_CTX_VISION = 4096
# llama-cpp-python's create_chat_completion defaults, so answers match what its users see.
SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.1}


def _c_noop_log() -> Any:
    """A ggml log callback that drops everything, implemented in C, not Python.

    Why C: a Python callback runs Python code inside llama.cpp calls, so a SIGTERM/SIGINT
    handler that raises (the batch driver's) fires inside the callback, where ctypes prints
    "Exception ignored" and swallows it - the kill is lost. libc's getpid() ignores the
    (level, text, user_data) arguments (the caller cleans up on every C ABI) and has no side
    effect, so it serves as a no-op. Falls back to a Python no-op where libc is not found.
    """
    callback_type = llama_cpp.llama_log_callback
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        return ctypes.cast(libc.getpid, callback_type)
    except (OSError, AttributeError):
        return callback_type(lambda level, text, user_data: None)


_NOOP_LOG = None


def set_logging(verbose: bool) -> None:
    """Route llama.cpp and mtmd logs: dropped unless ``verbose`` (then their default: stderr)."""
    global _NOOP_LOG
    if verbose:
        callback = llama_cpp.llama_log_callback()  # a NULL pointer = the built-in logger
    else:
        _NOOP_LOG = _NOOP_LOG or _c_noop_log()  # kept referenced: ctypes must not free it
        callback = _NOOP_LOG
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    mtmd.set_logging(callback)


def available() -> devices.Available:
    """What this llama-cpp-python build can offload to (for ``mmcli.devices.resolve``)."""
    return devices.Available(gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()))


GGML_LOG_LEVEL_ERROR = 4


def mmproj_loads(model: Path, mmproj: Path) -> tuple[dict[str, bool], str | None]:
    """Whether an mmproj's vision and audio sides load with this llama.cpp, for ``doctor``.

    The projector loads for real (libmtmd checks its type, hyperparameters, tensors and that
    its output width is the text model's), against the text GGUF read ``vocab_only`` (no text
    weights) and without the warm-up encode, so it costs about the time to read the mmproj.

    Returns:
        ``({"vision": bool, "audio": bool}, None)``, or all False and the loader's error line.
    """
    import llama_cpp.mtmd_cpp as mtmd_cpp

    errors: list[str] = []

    def collect(level: int, text: bytes, user_data: Any) -> None:
        if level == GGML_LOG_LEVEL_ERROR and text and text.strip():
            errors.append(text.decode("utf-8", "replace").strip())

    callback = llama_cpp.llama_log_callback(collect)  # doctor only: a Python callback is fine
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    mtmd.set_logging(callback)
    none = {"vision": False, "audio": False}
    try:
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        text = llama_cpp.llama_model_load_from_file(str(model).encode(), params)
        if not text:
            return none, (errors or [f"cannot read the text model {model.name}"])[0]
        try:
            ctx_params = mtmd_cpp.mtmd_context_params_default()
            ctx_params.use_gpu, ctx_params.warmup, ctx_params.print_timings = False, False, False
            ctx = mtmd_cpp.mtmd_init_from_file(str(mmproj).encode(), text, ctx_params)
            if not ctx:
                return none, (errors or ["libmtmd refused it"])[0]
            try:
                return {"vision": bool(mtmd_cpp.mtmd_support_vision(ctx)),
                        "audio": bool(mtmd_cpp.mtmd_support_audio(ctx))}, None
            finally:
                mtmd_cpp.mtmd_free(ctx)
        finally:
            llama_cpp.llama_model_free(text)
    finally:
        set_logging(False)


def _cpu_has_amx() -> bool:
    try:
        return "amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@contextlib.contextmanager
def _extra_buffers(enabled: bool) -> Iterator[None]:
    """Set llama.cpp's ``use_extra_bufts`` (weight repacking, AMX) for one ``Llama()``.

    llama-cpp-python does not expose it, so its default-params factory is wrapped while the
    model loads. Why: the AMX matmul of ggml 0.25 segfaults on some AMX machines (seen on a
    Sapphire Rapids VM with Q4_1 weights); on such CPUs it is off unless the manifest option
    ``extra_bufts = true`` turns it back on.
    """
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def params() -> Any:
        p = original()
        p.use_extra_bufts = enabled
        return p

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = original


class LlamaEngine:
    """A loaded GGUF model (plus its mmproj for vision): a ``mmcli.enginetypes.ChatEngine``.

    The contract (docs/ARCHITECTURE.md, "A backend class"): ``load()``, ``close()``, ``device``
    (what actually runs), and the task methods ``chat()`` (yields ``mmcli.events.TextDelta``
    pieces, then one ``ChatDone``) and ``prompt_tokens()``; ``n_ctx`` and ``has_vision`` tell
    the chat session how much fits and whether images can be sent.
    """

    def __init__(self, llm: Llama, *, name: str, device: str, template: str,
                 vision: mtmd.Vision | None) -> None:
        self.llm = llm
        self.name = name
        self.device = device
        self.n_ctx = mtmd.context_size(llm)
        self.template = mtmd.compile_template(template)
        self.specials = safetokens.SpecialTokens.of(llm)
        self.vision = vision
        self.has_vision = vision is not None
        self.kv = kvcache.KvCache()  # what the KV cache holds (text tokens and images)
        self._closed = False

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> LlamaEngine:
        """Load the GGUF (and ``mmproj`` when the model has one).

        Args:
            model: resolved files (roles ``model`` and optional ``mmproj``) and ``options``
                (``n_ctx``, ``n_gpu_layers``, ``n_batch``).
            settings: ``device``, ``threads``, ``verbose``.
        Returns:
            The engine, ready for ``chat()``.
        Raises:
            ModelUnavailableError: the file is not a loadable GGUF.
            EngineMissingError: ``--device cuda|metal`` but this build cannot offload there.
            UsageError: the model has no chat template.
        """
        set_logging(settings.verbose)
        mmproj = model.files.get("mmproj")
        n_ctx = int(model.options.get("n_ctx") or
                    (DEFAULT_N_CTX_VISION if mmproj else DEFAULT_N_CTX_TEXT))
        device = devices.resolve(settings.device, "llama", available(),
                                 n_gpu_layers=model.options.get("n_gpu_layers"))
        layers = device.n_gpu_layers
        path = model.files["model"]
        extra = model.options.get("extra_bufts")
        # Flash attention by default (manifest option ``flash_attn = false`` turns it off): the
        # plain attention path of llama.cpp 0.3.36's ggml garbles batched prompts on some AVX2
        # CPUs (SmolLM2-135M answered "What is the capital of France?" in French nonsense;
        # with flash attention, or n_batch=1, it says Paris), and it needs less memory.
        flash = bool(model.options.get("flash_attn", True))
        try:
            with _extra_buffers(bool(extra) if extra is not None else not _cpu_has_amx()):
                llm = Llama(str(path), n_ctx=n_ctx, n_gpu_layers=layers, n_threads=settings.threads,
                            n_threads_batch=settings.threads,
                            n_batch=int(model.options.get("n_batch", 512)),
                            flash_attn=flash, verbose=settings.verbose)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailableError(f"model '{model.name}': cannot load {path}: {exc}",
                                        hint="check the file (`mmcli models verify`)") from None
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise UsageError(f"model '{model.name}' has no chat template "
                             "(tokenizer.chat_template is missing from the GGUF)",
                             hint="use an instruct/chat GGUF that embeds its template")
        vision = None
        if mmproj is not None:
            try:
                vision = mtmd.Vision.load(llm, mmproj, use_gpu=layers != 0,
                                          verbose=settings.verbose)
            except ValueError as exc:
                llm.close()
                raise ModelUnavailableError(
                    f"model '{model.name}': cannot load the mmproj {mmproj}: {exc}",
                    hint="the mmproj must belong to the same model as the text GGUF") from None
        engine = cls(llm, name=model.name, device=device.name, template=template, vision=vision)
        engine._warm_up()
        return engine

    # ------------------------------------------------------------------ prompts
    def render(self, messages: list[dict[str, Any]]) -> str:
        """The templated prompt text (image parts become the mtmd media marker)."""
        return mtmd.render(self.template, self.llm, messages)

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the templated prompt (text-only messages) with the generation prompt.

        Only the template's markup yields special tokens; message content is tokenized as
        plain text (``mmcli.backends.safetokens``), so a document that contains
        ``<|im_start|>system`` cannot open a system turn.
        """
        if mtmd.image_urls(messages):
            raise UsageError("prompt_tokens() counts text-only messages; images are "
                             "tokenized by the vision encoder")
        text, pieces = self.specials.pieces(self.render, messages)
        bos = self.llm.token_bos()
        bos_text = self.llm.detokenize([bos], special=True).decode("utf-8", "ignore") \
            if bos >= 0 else ""
        # A template that writes the BOS text itself must not get a second one.
        add_bos = not (bos_text and text.startswith(bos_text))
        return safetokens.token_ids(self.llm, pieces, add_special=add_bos)

    # ------------------------------------------------------------------ chat
    def chat(self, messages: list[dict[str, Any]], *, max_tokens: int = 256,
             temperature: float = 0.0, seed: int | None = None, stop: list[str] | None = None,
             should_stop: Callable[[], bool] | None = None,
             ) -> Iterator[GenerationEvent]:
        """Stream a reply to OpenAI-style ``messages``.

        Args:
            messages: ``{"role", "content"}`` dicts; content is a string or a list of
                ``{"type": "text"}`` / ``{"type": "image_url"}`` parts (data: or file: URLs).
            max_tokens: cap on generated tokens (also capped by the free context).
            temperature: 0 = greedy (reproducible).
            seed: sampling seed (used when temperature > 0).
            stop: extra stop strings (not included in the output).
            should_stop: polled between tokens; True ends generation ("stop").
        Yields:
            ``mmcli.events.TextDelta`` pieces, then exactly one ``mmcli.events.ChatDone``.
        Raises:
            UsageError: images given to a model without mmproj.
            InputError: the prompt does not fit ``n_ctx``; an image cannot be decoded.
        """
        start = time.perf_counter()
        urls = mtmd.image_urls(messages)
        extra: dict[str, float] = {}
        if urls:
            if self.vision is None:
                raise UsageError(f"model '{self.name}' has no mmproj: it cannot see images",
                                 hint="pick a vision model (engine llama-mtmd), e.g. "
                                      "--model smolvlm-256m")
            _, pieces = self.specials.pieces(self.render, messages, mtmd.marker())
            prompt, extra = self.vision.eval_prompt(self.llm, pieces, urls, self.kv)
        else:
            ids = self.prompt_tokens(messages)
            if len(ids) >= self.n_ctx:
                raise InputError(f"the prompt needs {len(ids)} tokens but the context "
                                 f"holds {self.n_ctx} (n_ctx)",
                                 hint="shorten the conversation or raise n_ctx in the "
                                      "model's manifest options")
            prompt = self._eval_text(ids)
        yield from self._generate(prompt, start, extra, max_tokens=max_tokens,
                                  temperature=temperature, seed=seed, stop=stop or [],
                                  should_stop=should_stop)

    def _eval_text(self, ids: list[int]) -> mtmd.Prompt:
        """Evaluate the tokens after the prefix the KV cache already holds."""
        keep = self.kv.reuse(self.llm, ids)
        self.llm.eval(ids[keep:])
        self.kv.add(ids[keep:])
        return mtmd.Prompt(ids=ids, n_tokens=len(ids), cached_tokens=keep)

    def _generate(self, prompt: mtmd.Prompt, start: float, extra: dict[str, float], *,
                  max_tokens: int, temperature: float, seed: int | None, stop: list[str],
                  should_stop: Callable[[], bool] | None) -> Iterator[GenerationEvent]:
        llm = self.llm
        budget = min(max_tokens, self.n_ctx - prompt.n_tokens)
        llm.set_seed(seed if seed is not None else random.randrange(2**31))
        stream = TextStream(stop)
        vocab = llm._model.vocab
        ttft, count, reason = 0.0, 0, "length"
        # The prompt is evaluated: generate() finds it all cached and samples at once.
        for token in llm.generate(prompt.ids, temp=temperature, **SAMPLING):  # type: ignore[arg-type]
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                reason = "stop"
                break
            count += 1
            piece, hit = stream.feed(llm.detokenize([token]))
            if count == 1:
                ttft = time.perf_counter() - start
            if piece:
                yield TextDelta(piece)
            if hit or (should_stop is not None and should_stop()):
                reason = "stop"
                break
            if count >= budget:
                break
        tail = stream.flush()
        if tail:
            yield TextDelta(tail)
        total = time.perf_counter() - start
        yield ChatDone(prompt_tokens=prompt.n_tokens, completion_tokens=count,
                       finish_reason=reason, ttft_s=ttft or total, total_s=total, extra=extra,
                       cached_tokens=prompt.cached_tokens)

    def _warm_up(self) -> None:
        # One throwaway decode at load, as llama.cpp's own tools do: the first decode pays for
        # paging in the weights and allocating compute buffers (0.7-2.7 s for SmolLM2-135M
        # here), which would otherwise land in the first reply's time to first token.
        bos, eos = self.llm.token_bos(), self.llm.token_eos()
        self.llm.eval([t for t in (bos, eos) if t >= 0] or [0])
        self._reset()

    def _reset(self) -> None:
        self.llm.reset()
        self.llm._ctx.kv_cache_clear()
        self.kv.clear()

    def close(self) -> None:
        """Free the mtmd context and the model explicitly (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.vision is not None:
            self.vision.close()
        self.llm.close()
