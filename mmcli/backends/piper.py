"""piper-tts backend: the only module that imports piper, onnx and onnxruntime for speech.

Piper voices are VITS models whose ONNX graph draws its noise with ``RandomNormalLike``: the
output of a sentence then depends on everything the session synthesized before, so a rerun
(or a resumed batch) never gives the same bytes. At load time each ``RandomNormalLike`` is
replaced by a slice of a new graph input, fed here from a numpy generator seeded with
``(seed, sentence number, node)``: the same text, voice, options and seed always give the
same samples, in any order and any process. The noise keeps piper's distribution (standard
normal); everything else (phonemes, scales, normalisation, volume) is piper's own code path.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig, SynthesisConfig
from piper.voice import AudioChunk

from mmcli import devices
from mmcli.atomic import atomic_write
from mmcli.enginetypes import VoiceInfo
from mmcli.errors import EngineMissingError, UsageError
from mmcli.records import ResolvedModel
from mmcli.settings import Settings, cache_dir

NOISE_PREFIX = "mmcli_noise_"
PATCH_VERSION = 1  # bump when seed_noise changes: cached graphs are keyed by it
# First guess of noise values per phoneme id; grown from what sentences really use.
FIRST_GUESS = 2048


def available() -> devices.Available:
    """onnxruntime's providers here (for ``mmcli.devices.resolve``)."""
    return devices.Available(providers=tuple(onnxruntime.get_available_providers()))


def seed_noise(model_path: Path) -> tuple[bytes, list[tuple[str, float, float]]]:
    """The voice graph with every ``RandomNormalLike`` fed from an input (see module doc).

    Returns:
        ``(serialized model, [(input name, mean, scale)])`` in node order.
    """
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise EngineMissingError("the 'piper' engine needs the Python package 'onnx' for "
                                 "reproducible (seeded) speech", hint="run `pip install onnx`"
                                 ) from None
    proto = onnx.load(str(model_path))
    graph = proto.graph
    noise: list[tuple[str, float, float]] = []
    nodes = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        name = f"{NOISE_PREFIX}{len(noise)}"
        noise.append((name, float(attrs.get("mean", 0.0)), float(attrs.get("scale", 1.0))))
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"]))
        # Also output how much noise the node used, so later feeds are sized to fit.
        graph.output.append(helper.make_tensor_value_info(f"{name}_size", TensorProto.INT64, []))
        graph.initializer.extend([
            helper.make_tensor(f"{name}_one", TensorProto.INT64, [1], [1]),
            helper.make_tensor(f"{name}_zero", TensorProto.INT64, [1], [0])])
        like = node.input[0]
        # noise[:size(like)].reshape(shape(like)): too short a feed fails in Reshape.
        nodes += [
            helper.make_node("Shape", [like], [f"{name}_shape"]),
            helper.make_node("Size", [like], [f"{name}_size"]),
            helper.make_node("Reshape", [f"{name}_size", f"{name}_one"], [f"{name}_end"]),
            helper.make_node("Slice", [name, f"{name}_zero", f"{name}_end"], [f"{name}_flat"]),
            helper.make_node("Reshape", [f"{name}_flat", f"{name}_shape"], [node.output[0]]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return proto.SerializeToString(), noise


def seeded_model(model_path: Path) -> tuple[str | bytes, list[tuple[str, float, float]]]:
    """The seeded-noise graph of a voice, cached in mmcli's cache (patching costs ~0.4 s).

    Returns:
        ``(path of the cached model, or its bytes when the cache is not writable, noise)``.
    """
    st = model_path.stat()
    ident = f"{PATCH_VERSION}|{model_path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    key = hashlib.sha256(ident.encode()).hexdigest()[:24]
    folder = cache_dir() / "piper-seeded"
    cached, meta = folder / f"{key}.onnx", folder / f"{key}.json"
    if cached.is_file() and meta.is_file():
        try:
            return str(cached), [tuple(n) for n in json.loads(meta.read_text())]  # type: ignore[misc]
        except ValueError:
            pass  # a damaged sidecar: patch again
    data, noise = seed_noise(model_path)
    try:
        atomic_write(cached, data)
        atomic_write(meta, json.dumps(noise))
    except OSError:
        return data, noise  # read-only cache: still correct, only slower next time
    return str(cached), noise


class SeededSession:
    """Wraps the patched session: adds the seeded noise feeds to piper's ``session.run``."""

    def __init__(self, session: onnxruntime.InferenceSession,
                 noise: list[tuple[str, float, float]]) -> None:
        self.session, self.noise = session, noise
        self.per_id = [FIRST_GUESS] * len(noise)
        self.seen = [0] * len(noise)  # most noise values per phoneme id any sentence used
        self.seed, self.sentence = 0, 0

    def reset(self, seed: int) -> None:
        """Start a new text: sentence numbering restarts, so outputs never depend on order."""
        self.seed, self.sentence = seed, 0

    def run(self, output_names: Any, feeds: dict[str, Any]) -> Any:
        """Run one sentence; retry with more noise when the guess was too small."""
        n_ids = int(feeds["input"].shape[1])
        sentence, self.sentence = self.sentence, self.sentence + 1
        for _ in range(8):
            extra = {name: self._noise(sentence, k, self.per_id[k] * n_ids, mean, scale)
                     for k, (name, mean, scale) in enumerate(self.noise)}
            try:
                result = self.session.run(output_names, {**feeds, **extra})
            except Exception as exc:  # onnxruntime's Fail/InvalidArgument: slice too short
                if not self.noise or "Reshape" not in str(exc):
                    raise
                self.per_id = [n * 4 for n in self.per_id]
                continue
            used = result[len(result) - len(self.noise):]
            # Next time feed 1.5x the most any sentence needed per phoneme id (at least).
            self.seen = [max(a, -(-int(u) // n_ids)) for a, u in zip(self.seen, used)]
            self.per_id = [max(n * 3 // 2, 2) for n in self.seen]
            return result[:len(result) - len(self.noise)]
        raise RuntimeError("piper: the sentence needs more noise than expected (too long?)")

    def _noise(self, sentence: int, k: int, size: int, mean: float, scale: float) -> np.ndarray:
        # One stream per (seed, sentence, node): a prefix of it does not depend on ``size``.
        rng = np.random.default_rng([self.seed, sentence, k])
        values = rng.standard_normal(size, dtype=np.float32)
        return values * np.float32(scale) + np.float32(mean) if (mean, scale) != (0, 1) else values


class PiperEngine:
    """A piper voice whose noise is seeded (reproducible output).

    Attributes:
        device: ``cpu`` or ``cuda``.
        info: sample rate and speakers.
    """

    def __init__(self, voice: PiperVoice, session: SeededSession, device: str) -> None:
        self.voice, self.session, self.device = voice, session, device
        cfg = voice.config
        self.info = VoiceInfo(cfg.sample_rate, cfg.num_speakers, dict(cfg.speaker_id_map))

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> PiperEngine:
        """Load the voice (``model`` + ``config`` files) with the seeded noise graph.

        Raises:
            EngineMissingError: ``--device cuda|metal`` that onnxruntime cannot use here, or
                the ``onnx`` package is missing.
        """
        if not settings.verbose:  # "Missing phoneme from id map" for emoji etc. is not news
            logging.getLogger("piper").setLevel(logging.ERROR)
            onnxruntime.set_default_logger_severity(4)  # retries are expected
        device = devices.resolve(settings.device, "piper", available())
        config = PiperConfig.from_dict(json.loads(model.files["config"].read_text("utf-8")))
        data, noise = seeded_model(model.files["model"])
        options = onnxruntime.SessionOptions()
        if settings.threads:
            options.intra_op_num_threads = settings.threads
        session = SeededSession(onnxruntime.InferenceSession(data, sess_options=options,
                                                             providers=list(device.providers)),
                                noise)
        voice = PiperVoice(session=session, config=config)  # type: ignore[arg-type]
        return cls(voice, session, device.name)

    def speaker_id(self, speaker: str | None) -> int | None:
        """``--speaker`` (an id or a name) -> id; None for the voice's default.

        Raises:
            UsageError: unknown speaker, or a speaker for a single-speaker voice.
        """
        if speaker is None:
            return None
        names = self.info.speakers
        if speaker in names:
            return names[speaker]
        if speaker.isdigit() and int(speaker) < self.info.num_speakers:
            return int(speaker)
        known = ", ".join(sorted(names)[:12]) or "only speaker 0"
        raise UsageError(f"--speaker {speaker!r}: this voice has {self.info.num_speakers} "
                         f"speaker(s) ({known})")

    def synthesize(self, text: str, config: SynthesisConfig, seed: int) -> Iterator[AudioChunk]:
        """One audio chunk per sentence, as soon as each is synthesized.

        Args:
            text: the text (piper splits it into sentences).
            config: piper's synthesis settings (speaker, scales, volume).
            seed: the noise seed; the same text + settings + seed give the same samples.
        """
        self.session.reset(seed)
        yield from self.voice.synthesize(text, syn_config=config)

    def close(self) -> None:
        """Nothing to free explicitly (onnxruntime releases the session with the object)."""
