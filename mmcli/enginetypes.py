"""What tasks may call on a loaded engine, one ``Protocol`` per engine family.

``mmcli.engines.load`` returns the backend instance untyped (any registered class, fakes
included); a task annotates it with the family it needs:

* ``ChatEngine``: llama / llama-mtmd (``mmcli.backends.llama.LlamaEngine``): caption, vqa, chat.
* ``SpeechToTextEngine``: whisper (``mmcli.backends.whisper.WhisperEngine``): transcribe.
* ``TextToSpeechEngine``: piper (``mmcli.backends.piper.PiperEngine``): speak.
* ``SegmentationEngine``: sam-onnx (``mmcli.backends.sam.SamEngine``): segment.

Every engine also has ``device`` (what actually runs, see ``mmcli.devices``) and ``close()``.
This module imports no engine package (the engine types below are for type checkers only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from faster_whisper.transcribe import Segment, TranscriptionInfo
    from piper.config import SynthesisConfig
    from piper.voice import AudioChunk

    from mmcli.backends.sam import Embedding
    from mmcli.events import GenerationEvent


class ChatEngine(Protocol):
    """A chat model, with vision when it has an mmproj (llama.cpp).

    Attributes:
        name: the model's name (for messages).
        device: what runs: ``cpu``, ``cuda`` or ``metal``.
        n_ctx: the context size in tokens (prompt + reply must fit).
        has_vision: True when images can be sent (``image_url`` / ``image_rgb`` parts).
    """

    name: str
    device: str
    n_ctx: int
    has_vision: bool

    def chat(self, messages: list[dict[str, Any]], *, max_tokens: int = 256,
             temperature: float = 0.0, seed: int | None = None, stop: list[str] | None = None,
             should_stop: Callable[[], bool] | None = None) -> Iterator[GenerationEvent]:
        """Stream a reply: ``TextDelta`` pieces, then exactly one ``ChatDone``."""
        ...

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the templated text-only prompt (to count and check prefix reuse)."""
        ...

    def close(self) -> None:
        """Free the model (idempotent)."""
        ...


class SpeechToTextEngine(Protocol):
    """A speech recognizer (faster-whisper); models are cached per compute type."""

    device: str

    def model(self, compute_type: str | None = None) -> tuple[Any, float]:
        """``(model, seconds spent loading it now)`` for a compute type."""
        ...

    def multilingual(self, compute_type: str | None = None) -> bool:
        """True when the model detects languages and can translate."""
        ...

    def decode(self, source: Path | bytes) -> np.ndarray:
        """16 kHz mono float32 samples of a file or its bytes (``InputError`` if undecodable)."""
        ...

    def transcribe(self, audio: np.ndarray, compute_type: str | None,
                   **kwargs: Any) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """``(lazy segments, info)``; ``kwargs`` are faster-whisper ``transcribe`` arguments."""
        ...

    def close(self) -> None:
        """Free the models."""
        ...


@dataclass
class VoiceInfo:
    """What records and option checks need to know about a voice."""

    sample_rate: int
    num_speakers: int
    speakers: dict[str, int]


class TextToSpeechEngine(Protocol):
    """A voice (piper) whose output is reproducible for a given seed."""

    device: str
    info: VoiceInfo

    def speaker_id(self, speaker: str | None) -> int | None:
        """``--speaker`` (an id or a name) -> id; None for the default (``UsageError`` if bad)."""
        ...

    def synthesize(self, text: str, config: SynthesisConfig, seed: int) -> Iterator[AudioChunk]:
        """One audio chunk per sentence, as soon as each is synthesized."""
        ...

    def close(self) -> None:
        """Free the voice."""
        ...


class SegmentationEngine(Protocol):
    """Segment Anything: one encoder run per image, cheap decoder runs per prompt.

    Attributes:
        device: what runs: ``cpu``, ``cuda`` or ``coreml``.
        frame: the encoder's square input size (the long side images are resized to).
        low_res: the side of the decoder's low-resolution mask logits.
    """

    device: str
    frame: int
    low_res: int

    def embed(self, image: np.ndarray) -> Embedding:
        """Run the encoder on an RGB uint8 ``(h, w, 3)`` image."""
        ...

    def decode(self, emb: Embedding, coords: np.ndarray,
               labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(low_res_logits [B, M, L, L], predicted_iou [B, M])`` for prompts in the frame."""
        ...

    def cache_key(self) -> str:
        """What identifies this encoder's embeddings (the embeddings cache folder name)."""
        ...

    def close(self) -> None:
        """Drop the sessions."""
        ...


if TYPE_CHECKING:
    from mmcli.backends.llama import LlamaEngine
    from mmcli.backends.piper import PiperEngine
    from mmcli.backends.sam import SamEngine
    from mmcli.backends.whisper import WhisperEngine

    def _backends_conform(llama: LlamaEngine, whisper: WhisperEngine, piper: PiperEngine,
                          sam: SamEngine) -> tuple[ChatEngine, SpeechToTextEngine,
                                                   TextToSpeechEngine, SegmentationEngine]:
        """Never called: ``mypy mmcli`` checks here that each backend fits its Protocol."""
        return llama, whisper, piper, sam
