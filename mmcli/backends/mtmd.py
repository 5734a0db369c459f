"""libmtmd (llama.cpp multimodal) helpers for the llama backend: templates, images, prompt eval.

llama-cpp-python's ``MTMDChatHandler`` loads the mmproj and owns the mtmd context; we reuse
that, but evaluate the prompt ourselves (the same chunk loop as the handler) so we know the
exact prompt token count, can refuse an image that would not fit ``n_ctx`` with the numbers
before any work, can time the image encoding separately from generation, and can keep the KV
cache of an unchanged prefix - images included, known by a hash of their pixels
(``mmcli.backends.kvcache``) - so a chat's next turn about a photo does not encode it again.

The prompt reaches mtmd as parts (``mtmd_tokenize_from_parts``), not as one string: text runs
with ``parse_special`` off, the template's special tokens with it on, images where the
template's markup put the media marker (``mmcli.backends.safetokens``), so message content
never becomes a control token or an image marker.
"""

from __future__ import annotations

import base64
import ctypes
import functools
import hashlib
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2.ext
import llama_cpp
import llama_cpp.mtmd_cpp as mtmd_cpp
from jinja2.sandbox import ImmutableSandboxedEnvironment
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter, MTMDChatHandler

from mmcli.backends import kvcache
from mmcli.backends.kvcache import KvCache, MediaUnit, Unit
from mmcli.backends.safetokens import MEDIA, Media, Piece, SpecialToken
from mmcli.errors import InputError, UsageError


def context_size(llm: Llama) -> int:
    """Usable context: llama.cpp pads n_ctx up to a multiple of 256, but llama-cpp-python's
    token buffer keeps the size asked for, so the smaller of the two is the real limit."""
    return min(llm.n_ctx(), len(llm.input_ids))


def set_logging(callback: Any) -> None:
    """Point the mtmd and mtmd-helper loggers at ``callback`` (they ignore ``verbose``)."""
    mtmd_cpp.mtmd_log_set(callback, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_helper_log_set(callback, ctypes.c_void_p(0))


def compile_template(source: str) -> jinja2.Template:
    """Compile a GGUF chat template the way llama-cpp-python and Transformers do."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, jinja2.ext.loopcontrols])
    env.filters["tojson"] = Jinja2ChatFormatter.tojson
    try:
        return env.from_string(source)
    except jinja2.TemplateError as exc:
        raise UsageError(f"the model's chat template does not compile: {exc}") from None


def _piece(llm: Llama, token: int) -> str:
    return llm.detokenize([token], special=True).decode("utf-8", "ignore") if token >= 0 else ""


def marker() -> str:
    """The media marker ``render`` writes for image parts."""
    return str(mtmd_cpp.mtmd_default_marker().decode("utf-8"))


def render(template: jinja2.Template, llm: Llama, messages: list[dict[str, Any]]) -> str:
    """Render ``messages`` with the generation prompt; image parts become the media marker."""
    media = marker()

    def part(p: Any) -> Any:
        if isinstance(p, dict) and p.get("type") in IMAGE_PARTS:
            return {"type": "text", "text": media}
        return p

    if _typed_only(template):  # plain strings as one text part each, as llama.cpp does
        messages = [dict(m, content=[{"type": "text", "text": m["content"]}])
                    if isinstance(m.get("content"), str) else m for m in messages]
    converted = [dict(m, content=[part(p) for p in m["content"]])
                 if isinstance(m.get("content"), list) else m for m in messages]

    def raise_exception(message: str) -> None:
        raise UsageError(f"the model's chat template refused the messages: {message}")

    try:
        return template.render(
            messages=converted, add_generation_prompt=True,
            eos_token=_piece(llm, llm.token_eos()), bos_token=_piece(llm, llm.token_bos()),
            raise_exception=raise_exception, strftime_now=Jinja2ChatFormatter.strftime_now)
    except (TypeError, jinja2.TemplateError) as exc:
        raise UsageError(f"the model's chat template cannot render these messages: {exc}",
                         hint="this template may not accept content parts (images)") from None


_PROBE = "\ue003mmcli-probe\ue003"


@functools.lru_cache(maxsize=8)
def _typed_only(template: jinja2.Template) -> bool:
    """True for a template that renders content parts but drops plain-string content
    (SmolVLM's: ``for line in message['content']`` over a string yields nothing), so a system
    prompt or a text-only turn would vanish. llama.cpp's chat.cpp detects the same capability
    and sends such messages as ``[{"type": "text", ...}]``."""

    def refuse(message: str) -> None:
        raise ValueError(message)

    def shows(content: Any) -> bool:
        try:
            return _PROBE in template.render(
                messages=[{"role": "user", "content": content}], add_generation_prompt=True,
                bos_token="", eos_token="", raise_exception=refuse,
                strftime_now=Jinja2ChatFormatter.strftime_now)
        except Exception:  # noqa: BLE001 - a probe: any failure means "not this form"
            return False

    return not shows(_PROBE) and shows([{"type": "text", "text": _PROBE}])


@dataclass(frozen=True)
class RawImage:
    """Decoded RGB pixels (``width * height * 3`` bytes), handed to mtmd without re-encoding.

    Used as the content part ``{"type": "image_rgb", "image_rgb": RawImage(...)}`` - an mmcli
    extension next to OpenAI's ``image_url`` that skips an encode/decode round trip.
    """

    width: int
    height: int
    data: bytes


IMAGE_PARTS = ("image_url", "image_rgb")
ImageRef = str | RawImage


def image_urls(messages: list[dict[str, Any]]) -> list[ImageRef]:
    """Every image content part in order: URL strings, or RawImage for ``image_rgb`` parts."""
    refs: list[ImageRef] = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for p in content:
            if not isinstance(p, dict):
                continue
            if p.get("type") == "image_url":
                ref = p.get("image_url")
                refs.append(ref.get("url", "") if isinstance(ref, dict) else str(ref))
            elif p.get("type") == "image_rgb":
                raw = p.get("image_rgb")
                if not isinstance(raw, RawImage):
                    raise UsageError("an image_rgb content part needs a RawImage")
                refs.append(raw)
    return refs


def load_image(url: str) -> bytes:
    """Bytes of a ``data:`` URI, ``file://`` URL or plain path (nothing is fetched online)."""
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.split(",", 1)[1], validate=False)
        except (IndexError, ValueError):
            raise InputError("image data: URI is not valid base64") from None
    if url.startswith("file://"):
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    elif "://" in url:
        raise UsageError(f"images must be local (data: URI, file:// URL or path), got {url[:60]}")
    else:
        path = Path(url)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Prompt:
    """An evaluated prompt: ids as ``Llama`` sees them (one per position, 0 at images), its
    KV cells (``n_tokens``; more than ``len(ids)`` under M-RoPE) and how many were reused."""

    ids: list[int]
    n_tokens: int
    cached_tokens: int = 0


def _units(chunk: Any) -> list[Unit]:
    """A chunk as KV units: its text token ids, or one ``MediaUnit``."""
    if mtmd_cpp.mtmd_input_chunk_get_type(chunk) == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_TEXT:
        n = ctypes.c_size_t()
        ptr = mtmd_cpp.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
        return [int(ptr[j]) for j in range(n.value)]
    chunk_id = mtmd_cpp.mtmd_input_chunk_get_id(chunk)
    return [MediaUnit(id=chunk_id.decode() if chunk_id else "",
                      n_tokens=int(mtmd_cpp.mtmd_input_chunk_get_n_tokens(chunk)),
                      n_pos=int(mtmd_cpp.mtmd_input_chunk_get_n_pos(chunk)))]


def _parts(pieces: list[Piece], bitmaps: list[Any]) -> list[Any]:
    """mtmd input parts: text runs tokenized as plain text, special tokens by their own text
    with ``parse_special`` (mtmd tokenizes each text part alone, as llama.cpp tokenizes each
    fragment between special tokens), images in order. Each part keeps its text alive."""
    images = iter(bitmaps)
    parts = []
    for piece in pieces:
        part = mtmd_cpp.mtmd_input_part()
        if isinstance(piece, Media):
            part.bitmap = next(images)
        else:
            special = isinstance(piece, SpecialToken)
            raw = piece.text if isinstance(piece, SpecialToken) else piece
            part.text = ctypes.pointer(mtmd_cpp.mtmd_input_text(raw, len(raw), False, special))
        parts.append(part)
    return parts


class Vision:
    """The mmproj side of a model: an initialised mtmd context bound to one ``Llama``."""

    def __init__(self, handler: MTMDChatHandler) -> None:
        self.handler = handler

    @classmethod
    def load(cls, llm: Llama, mmproj: Path, *, use_gpu: bool, verbose: bool) -> Vision:
        """Load the mmproj now (not lazily at the first image) so errors surface at load.

        Raises:
            ValueError: the mmproj cannot be loaded or has no vision support.
        """
        handler = MTMDChatHandler(clip_model_path=str(mmproj), verbose=verbose, use_gpu=use_gpu)
        handler._init_mtmd_context(llm)
        return cls(handler)

    @property
    def ctx(self) -> Any:
        """The mtmd context pointer."""
        return self.handler.mtmd_ctx

    def eval_prompt(self, llm: Llama, pieces: list[Piece], urls: list[ImageRef],
                    kv: KvCache | None = None) -> tuple[Prompt, dict[str, float]]:
        """Tokenize text + images with mtmd and evaluate what the KV cache does not hold yet.

        Args:
            llm: the text model.
            pieces: the prompt from ``SpecialTokens.pieces`` (``MEDIA`` = one image each).
            urls: the images, in order.
            kv: what ``llm``'s KV cache holds; the prompt's longest equal prefix (same text
                tokens, same image pixels) is kept, the rest evaluated (and recorded in it).
                None: evaluate into a cleared KV cache.
        Returns:
            ``(the prompt, timings)``; ``encode_s`` is 0 when every image was reused.
        Raises:
            InputError: an image cannot be decoded, or the prompt does not fit ``n_ctx``.
        """
        bitmaps = []
        try:
            for i, url in enumerate(urls):
                bitmap = self._bitmap(url)
                if bitmap is None:
                    raise InputError(f"image {i + 1} cannot be decoded by the vision encoder")
                bitmaps.append(bitmap)
            if kv is None:
                kv = KvCache()
                llm.reset()
                llm._ctx.kv_cache_clear()
            return self._eval(llm, pieces, bitmaps, kv)
        finally:
            for bitmap in bitmaps:
                mtmd_cpp.mtmd_bitmap_free(bitmap)

    def _bitmap(self, ref: ImageRef) -> Any:
        """An mtmd bitmap whose id is a hash of its pixels (what KV reuse compares)."""
        if isinstance(ref, RawImage):
            if len(ref.data) != ref.width * ref.height * 3:
                raise InputError("raw image size does not match width x height x 3")
            buf = (ctypes.c_uint8 * len(ref.data)).from_buffer_copy(ref.data)
            bitmap = mtmd_cpp.mtmd_bitmap_init(ref.width, ref.height, buf)
            pixels = ref.data
        else:
            data = load_image(ref)
            bitmap = mtmd_cpp.mtmd_helper_bitmap_init_from_buf(
                self.ctx, (ctypes.c_uint8 * len(data)).from_buffer(bytearray(data)), len(data),
                False)
            if bitmap is None:
                return None
            pixels = ctypes.string_at(mtmd_cpp.mtmd_bitmap_get_data(bitmap),
                                      mtmd_cpp.mtmd_bitmap_get_n_bytes(bitmap))
        if bitmap is not None:
            size = (f"{mtmd_cpp.mtmd_bitmap_get_nx(bitmap)}x"
                    f"{mtmd_cpp.mtmd_bitmap_get_ny(bitmap)}:").encode()
            mtmd_cpp.mtmd_bitmap_set_id(bitmap, hashlib.sha256(size + pixels).hexdigest().encode())
        return bitmap

    def _eval(self, llm: Llama, pieces: list[Piece], bitmaps: list[Any],
              kv: KvCache) -> tuple[Prompt, dict[str, float]]:
        if sum(p is MEDIA for p in pieces) != len(bitmaps):
            raise InputError(f"the prompt has a different number of image markers than "
                             f"the {len(bitmaps)} images given")
        chunks = mtmd_cpp.mtmd_input_chunks_init()
        if chunks is None:
            raise MemoryError("mtmd_input_chunks_init failed")
        try:
            parts = _parts(pieces, bitmaps)
            array = (ctypes.POINTER(mtmd_cpp.mtmd_input_part) * len(parts))(
                *[ctypes.pointer(p) for p in parts])
            # add_special: BOS (and EOS) as the vocabulary asks, as mtmd_tokenize added them -
            # unless the template wrote the BOS itself (Gemma 3's starts with {{ bos_token }}):
            # llama.cpp's chat.cpp drops that text instead, so there is one BOS, not two.
            first = pieces[0] if pieces else None
            own_bos = isinstance(first, SpecialToken) and first.id == llm.token_bos()
            rc = mtmd_cpp.mtmd_tokenize_from_parts(self.ctx, chunks, array, len(parts),
                                                   not own_bos)
            if rc != 0:
                raise InputError(f"the vision encoder cannot preprocess the image (code {rc})")
            items = [mtmd_cpp.mtmd_input_chunks_get(chunks, i)
                     for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks))]
            self._check_fits(llm, items)
            return self._eval_chunks(llm, items, kv)
        finally:
            mtmd_cpp.mtmd_input_chunks_free(chunks)

    @staticmethod
    def _check_fits(llm: Llama, items: list[Any]) -> None:
        image_type = mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_IMAGE
        total = sum(mtmd_cpp.mtmd_input_chunk_get_n_tokens(c) for c in items)
        images = sum(mtmd_cpp.mtmd_input_chunk_get_n_tokens(c) for c in items
                     if mtmd_cpp.mtmd_input_chunk_get_type(c) == image_type)
        if total >= context_size(llm):
            raise InputError(
                f"the prompt needs {total} tokens ({images} for images) but the context holds "
                f"{context_size(llm)} (n_ctx)",
                hint="raise n_ctx in the model's manifest options, or send fewer images")

    def _eval_chunks(self, llm: Llama, items: list[Any],
                     kv: KvCache) -> tuple[Prompt, dict[str, float]]:
        per_chunk = [_units(chunk) for chunk in items]
        units = [u for chunk_units in per_chunk for u in chunk_units]
        start = time.perf_counter()
        keep = kv.reuse(llm, units)
        encode_s = 0.0
        done = 0  # units before this chunk
        for chunk, chunk_units in zip(items, per_chunk):
            skip = min(max(keep - done, 0), len(chunk_units))
            done += len(chunk_units)
            if skip == len(chunk_units):
                continue  # already in the KV cache
            if mtmd_cpp.mtmd_input_chunk_get_type(chunk) == mtmd_cpp.MTMD_INPUT_CHUNK_TYPE_TEXT:
                llm.eval(chunk_units[skip:])  # type: ignore[arg-type]
            else:
                t0 = time.perf_counter()
                self._eval_image(llm, chunk)
                encode_s += time.perf_counter() - t0
            kv.add(chunk_units[skip:])
        timings = {"encode_s": encode_s, "prompt_s": time.perf_counter() - start}
        prompt = Prompt(ids=llm.input_ids[:llm.n_tokens].tolist(),
                        n_tokens=kvcache.n_tokens(units),
                        cached_tokens=kvcache.n_tokens(units[:keep]))
        return prompt, timings

    def _eval_image(self, llm: Llama, chunk: Any) -> None:
        """Encode one image chunk and decode its embeddings at ``llm.n_tokens`` (a position)."""
        first = llm.n_tokens
        new_n_past = llama_cpp.llama_pos(0)
        rc = mtmd_cpp.mtmd_helper_eval_chunk_single(
            self.ctx, llm._ctx.ctx, chunk, llama_cpp.llama_pos(first),
            llama_cpp.llama_seq_id(0), llm.n_batch, False, ctypes.byref(new_n_past))
        if rc != 0:
            raise InputError(f"the vision encoder failed on the image (code {rc})")
        llm.n_tokens = new_n_past.value
        llm.input_ids[first:llm.n_tokens] = 0  # positions of image embeddings

    def close(self) -> None:
        """Free the mtmd context now (llama-cpp-python would at ``Llama.close()``)."""
        if self.handler.mtmd_ctx is not None:
            mtmd_cpp.mtmd_free(self.handler.mtmd_ctx)
            self.handler.mtmd_ctx = None
