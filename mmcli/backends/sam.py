"""Segment Anything on onnxruntime: an image encoder session plus a mask decoder session.

Input names and shapes are read from the sessions, so the common exports all load: the
encoder takes either ``[1,3,S,S]`` normalized and padded by us (segment-anything /
samexporter, labelme's ``x``) or ``[H,W,3]`` 0-255 resized to long side S (MobileSAM by Acly,
samexporter ``--use-preprocess``: the model normalizes and pads). The manifest's
``options.preprocess`` (``nchw`` | ``hwc``) can force one. The decoder has the standard
signature ``image_embeddings, point_coords, point_labels, mask_input, has_mask_input,
orig_im_size -> masks, iou_predictions, low_res_masks``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmcli import devices
from mmcli.errors import ConfigError, ModelUnavailableError
from mmcli.records import ResolvedModel
from mmcli.settings import Settings

# SAM's pixel statistics (ImageNet mean/std on the 0-255 scale).
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "orig_im_size")


@dataclass
class Embedding:
    """The encoder's output for one image and the geometry needed to map coordinates."""

    array: np.ndarray  # [1, C, 64, 64]
    orig: tuple[int, int]  # (h, w) of the original image
    resized: tuple[int, int]  # (h, w) after resizing the long side to the frame size

    def to_bytes(self) -> bytes:
        """Serialize for the embeddings cache (``.npz``)."""
        buf = io.BytesIO()
        np.savez(buf, array=self.array, orig=np.array(self.orig), resized=np.array(self.resized))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Embedding:
        """Inverse of ``to_bytes``."""
        with np.load(io.BytesIO(data)) as z:
            orig, resized = z["orig"].tolist(), z["resized"].tolist()
            return cls(z["array"], (orig[0], orig[1]), (resized[0], resized[1]))


def resized_size(h: int, w: int, frame: int) -> tuple[int, int]:
    """SAM's ResizeLongestSide target: long side = ``frame``, rounded half up."""
    scale = frame / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def available() -> devices.Available:
    """onnxruntime's providers here (for ``mmcli.devices.resolve``)."""
    import onnxruntime as ort

    return devices.Available(providers=tuple(ort.get_available_providers()))


class SamEngine:
    """A loaded encoder/decoder pair. ``encoder_runs`` counts encoder calls (tests read it)."""

    encoder_runs = 0

    def __init__(self, encoder: Any, decoder: Any, preprocess: str, frame: int,
                 model: ResolvedModel) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.preprocess, self.frame, self.model = preprocess, frame, model
        first = encoder.get_providers()[0]  # what runs: onnxruntime may have dropped a provider
        self.device = devices.PROVIDER_DEVICES.get(first, first)
        self.input_name = encoder.get_inputs()[0].name
        outputs = [o.name for o in encoder.get_outputs()]
        self.embedding_name = "image_embeddings" if "image_embeddings" in outputs else outputs[0]
        dec_inputs = {i.name: i for i in decoder.get_inputs()}
        self.decoder_inputs = dec_inputs
        batch_dim = dec_inputs["point_coords"].shape[0]
        self.batches = not isinstance(batch_dim, int) or batch_dim != 1
        mask_shape = dec_inputs["mask_input"].shape if "mask_input" in dec_inputs else None
        self.low_res = mask_shape[-1] if mask_shape and isinstance(mask_shape[-1], int) else 256

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> SamEngine:
        """Open both sessions on the providers ``settings.device`` allows.

        Raises:
            ModelUnavailableError: a file is missing, is not ONNX, or lacks SAM's inputs.
            EngineMissingError: the requested accelerator provider is absent.
        """
        import onnxruntime as ort

        providers = list(devices.resolve(settings.device, "sam", available()).providers)
        opts = ort.SessionOptions()
        opts.log_severity_level = 2 if settings.verbose else 3
        if settings.threads:
            opts.intra_op_num_threads = settings.threads
        sessions = []
        for role in ("encoder", "decoder"):
            path = model.files.get(role)
            if path is None or not Path(path).is_file():
                raise ModelUnavailableError(f"model '{model.name}': {role} file {path} is missing",
                                            hint="re-pull the model or fix its files")
            try:
                sessions.append(ort.InferenceSession(str(path), opts, providers=providers))
            except Exception as exc:  # onnxruntime raises its own pybind exception types
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelUnavailableError(f"cannot load {role} {path}: {first[:200]}",
                                            hint="is it a Segment Anything ONNX export?") from None
        encoder, decoder = sessions
        _check_decoder(decoder, model)
        preprocess, frame = _encoder_convention(encoder, model.options, model.name)
        return cls(encoder, decoder, preprocess, frame, model)

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The encoder input for an RGB uint8 image, and the resized (h, w)."""
        from PIL import Image

        h, w = image.shape[:2]
        rh, rw = resized_size(h, w, self.frame)
        resized = np.asarray(Image.fromarray(image).resize((rw, rh), Image.Resampling.BILINEAR),
                             dtype=np.float32)
        if self.preprocess == "hwc":
            return resized, (rh, rw)  # the model normalizes and pads itself
        norm = (resized - PIXEL_MEAN) / PIXEL_STD
        padded = np.zeros((self.frame, self.frame, 3), dtype=np.float32)
        padded[:rh, :rw] = norm  # bottom-right padding with zeros, after normalizing
        return padded.transpose(2, 0, 1)[None], (rh, rw)

    def embed(self, image: np.ndarray) -> Embedding:
        """Run the encoder once on an RGB uint8 ``(h, w, 3)`` image."""
        tensor, resized = self.prepare(image)
        SamEngine.encoder_runs += 1
        (out,) = self.encoder.run([self.embedding_name], {self.input_name: tensor})
        return Embedding(np.asarray(out, dtype=np.float32), image.shape[:2], resized)

    def decode(self, emb: Embedding, coords: np.ndarray,
               labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decode prompts already mapped into the resized frame.

        Args:
            emb: the image's embedding.
            coords: ``[B, N, 2]`` float32 point coordinates in the resized frame.
            labels: ``[B, N]`` float32 labels (1 positive, 0 negative, 2/3 box, -1 padding).
        Returns:
            ``(low_res_logits [B, M, L, L], predicted_iou [B, M])``.
        """
        if not self.batches and coords.shape[0] > 1:
            parts = [self.decode(emb, coords[i:i + 1], labels[i:i + 1])
                     for i in range(coords.shape[0])]
            return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        rh, rw = emb.resized
        # orig_im_size only sizes the export's own `masks` output, which we do not use (we
        # post-process low_res_masks): a proportional small size keeps that work negligible.
        small = np.array([max(1, round(rh * self.low_res / self.frame)),
                          max(1, round(rw * self.low_res / self.frame))], dtype=np.float32)
        feed: dict[str, np.ndarray] = {
            "image_embeddings": emb.array, "point_coords": coords.astype(np.float32),
            "point_labels": labels.astype(np.float32), "orig_im_size": small}
        if "mask_input" in self.decoder_inputs:
            feed["mask_input"] = np.zeros((1, 1, self.low_res, self.low_res), dtype=np.float32)
        if "has_mask_input" in self.decoder_inputs:
            feed["has_mask_input"] = np.zeros((1,), dtype=np.float32)
        # Some exports declare orig_im_size (or labels) as int64: feed what each input says.
        feed = {k: v.astype(np.int64) if "int64" in self.decoder_inputs[k].type else v
                for k, v in feed.items()}
        low_res, iou = self.decoder.run(["low_res_masks", "iou_predictions"], feed)
        return np.asarray(low_res, dtype=np.float32), np.asarray(iou, dtype=np.float32)

    def cache_key(self) -> str:
        """What identifies this encoder's embeddings: the pinned hash, or the file's identity."""
        sha = (self.model.entry.sha256.get("encoder") if self.model.entry else None) or ""
        if not sha:
            st = Path(self.model.files["encoder"]).stat()
            sha = f"{Path(self.model.files['encoder']).resolve()}|{st.st_size}|{st.st_mtime_ns}"
        blob = f"{sha}|{self.preprocess}|{self.frame}"
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def close(self) -> None:
        """Drop the sessions."""
        self.encoder = self.decoder = None


def _check_decoder(decoder: Any, model: ResolvedModel) -> None:
    names = {i.name for i in decoder.get_inputs()}
    outs = {o.name for o in decoder.get_outputs()}
    missing = [n for n in DECODER_INPUTS if n not in names]
    missing += [n for n in ("low_res_masks", "iou_predictions") if n not in outs]
    if missing:
        raise ModelUnavailableError(
            f"model '{model.name}': the decoder lacks {', '.join(missing)}",
            hint="use a Segment Anything mask decoder export (the standard ONNX signature)")


def _encoder_convention(encoder: Any, options: dict[str, Any], name: str) -> tuple[str, int]:
    """``("nchw" | "hwc", frame size)`` from the encoder's input shape and the manifest."""
    shape = encoder.get_inputs()[0].shape
    detected = "nchw" if len(shape) == 4 else "hwc" if len(shape) == 3 else None
    forced = options.get("preprocess")
    if forced not in (None, "nchw", "hwc"):
        raise ConfigError(f"model '{name}': options.preprocess must be 'nchw' or 'hwc', "
                          f"not {forced!r}")
    if detected is None or (forced and forced != detected):
        raise ModelUnavailableError(
            f"model '{name}': encoder input shape {shape} does not fit "
            f"preprocess={forced or 'auto'}", hint="set options.preprocess in the manifest")
    frame = shape[-1] if detected == "nchw" and isinstance(shape[-1], int) else \
        int(options.get("image_size", 1024))
    return forced or detected, frame
