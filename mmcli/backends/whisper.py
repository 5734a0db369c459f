"""faster-whisper (CTranslate2) backend: the only module that imports faster_whisper.

The model folder is loaded once per process and compute type; audio is decoded with PyAV by
``mmcli.backends.media`` (the same pipeline as faster-whisper's ``decode_audio``, which breaks on
PyAV 19), so anything FFmpeg reads works.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment, TranscriptionInfo

from mmcli import devices
from mmcli.backends import media
from mmcli.backends.whisperbatch import Gatherer, Job
from mmcli.errors import UsageError
from mmcli.records import ResolvedModel
from mmcli.settings import Settings

SAMPLE_RATE = 16_000
T = TypeVar("T")
COMPUTE_TYPES = ("auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "float16",
                 "bfloat16", "float32", "default")


def available() -> devices.Available:
    """What CTranslate2 can run on here (for ``mmcli.devices.resolve``)."""
    return devices.Available(cuda_devices=ctranslate2.get_cuda_device_count())


class WhisperEngine:
    """A faster-whisper model folder, loaded once per compute type.

    Attributes:
        device: where it runs (``cpu`` or ``cuda``).
        model_dir: the CTranslate2 folder (model.bin, config.json, tokenizer.json, vocabulary).
    """

    def __init__(self, model_dir: Path, device: str, threads: int | None,
                 default_compute: str) -> None:
        self.model_dir, self.device, self.threads = model_dir, device, threads
        self.default_compute = default_compute
        self._models: dict[str, WhisperModel] = {}
        self._sampled: set[str] = set()  # compute types whose sampler has been used

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> WhisperEngine:
        """Load the model with its manifest compute type (``options.compute_type``, or auto).

        Raises:
            EngineMissingError: ``--device cuda|metal`` that CTranslate2 cannot use here.
        """
        if not settings.verbose:
            logging.getLogger("faster_whisper").setLevel(logging.ERROR)
        device = devices.resolve(settings.device, "whisper", available())
        engine = cls(model.files["model"].parent, device.ct2_device, settings.threads,
                     str(model.options.get("compute_type", "auto")))
        engine.model(engine.default_compute)
        return engine

    def model(self, compute_type: str | None = None) -> tuple[WhisperModel, float]:
        """``(model, seconds spent loading it now)`` for a compute type (cached).

        Raises:
            UsageError: the device does not support that compute type.
        """
        ct = compute_type or self.default_compute
        if ct in self._models:
            return self._models[ct], 0.0
        start = time.perf_counter()
        try:
            self._models[ct] = WhisperModel(str(self.model_dir), device=self.device,
                                            compute_type=ct, cpu_threads=self.threads or 0,
                                            local_files_only=True)
        except ValueError as exc:
            raise UsageError(f"--compute-type {ct}: {exc}",
                             hint=f"pick one of {', '.join(COMPUTE_TYPES[:-1])}") from None
        return self._models[ct], time.perf_counter() - start

    def multilingual(self, compute_type: str | None = None) -> bool:
        """True for multilingual models (they detect the language and can translate)."""
        return bool(self.model(compute_type)[0].model.is_multilingual)

    def decode(self, source: Path | bytes) -> np.ndarray:
        """16 kHz mono float32 samples of an audio or video file (or its bytes).

        Raises:
            InputError: the content is not decodable audio (corrupt, no audio stream, …).
        """
        return media.decode_audio(source, SAMPLE_RATE)

    def transcribe(self, audio: np.ndarray, compute_type: str | None,
                   **kwargs: Any) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """Start transcribing; segments come lazily from a generator as they are decoded.

        Args:
            audio: 16 kHz mono samples (see ``decode``).
            compute_type: CTranslate2 compute type (None = the loaded default).
            **kwargs: faster-whisper ``transcribe`` arguments (language, beam_size, …).
        Returns:
            ``(segments, info)`` as faster-whisper returns them.
        """
        ct = compute_type or self.default_compute
        if ct in self._sampled:
            # CTranslate2's sampler is a thread_local generator seeded once, at first use in a
            # worker thread; after a temperature fallback it is no longer at the seed. Fresh
            # worker threads (a reload) make each input's output independent of the ones before
            # it, so a resumed batch gives the same bytes as an uninterrupted one.
            del self._models[ct]
            self._sampled.discard(ct)
        ctranslate2.set_random_seed(0)
        model, _ = self.model(ct)
        segments, info = model.transcribe(audio, **kwargs)
        return self._watch(segments, ct), info

    def batch(self, compute_type: str | None) -> WhisperBatch:
        """A batch across inputs: each input's sequential pipeline in a thread, their
        CTranslate2 calls run together (``mmcli.backends.whisperbatch``)."""
        ct = compute_type or self.default_compute
        model, _ = self.model(ct)

        def fresh() -> Any:  # the same model again, for one input's sampling calls
            return ctranslate2.models.Whisper(str(self.model_dir), device=self.device,
                                              compute_type=ct, intra_threads=self.threads or 0,
                                              inter_threads=1)

        gatherer = Gatherer(model.model, fresh)
        view = copy.copy(model)  # shares the tokenizer and feature extractor
        view.model = gatherer.proxy()
        return WhisperBatch(self.device, view, gatherer)

    def _watch(self, segments: Iterable[Segment], compute_type: str) -> Iterator[Segment]:
        for seg in segments:
            if seg.temperature and seg.temperature > 0:
                self._sampled.add(compute_type)  # the sampler was used: reload before next
            yield seg

    def close(self) -> None:
        """Free the models (CTranslate2 releases memory when the objects go)."""
        self._models.clear()


class WhisperBatch:
    """Inputs transcribed together: ``start`` one input's work, ``step`` runs their calls.

    Attributes:
        device: where the model runs.
    """

    def __init__(self, device: str, view: WhisperModel, gatherer: Gatherer) -> None:
        self.device, self._view, self._gatherer = device, view, gatherer

    def transcribe(self, audio: np.ndarray, compute_type: str | None,
                   **kwargs: Any) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """As ``WhisperEngine.transcribe``, called from a job started here (``start``)."""
        return self._view.transcribe(audio, **kwargs)

    def start(self, fn: Callable[[], T]) -> Job[T]:
        """Run one input's work (``fn``, which calls ``transcribe``) in its own thread."""
        return self._gatherer.start(fn)

    def step(self) -> bool:
        """Run the engine calls every running input waits on; False when none waited."""
        return self._gatherer.step()

    def close(self) -> None:
        """End the batch: inputs still running stop at their next engine call."""
        self._gatherer.close()
