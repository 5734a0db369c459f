"""Image input for vision tasks: open, verify, orient, convert and downsize with Pillow.

Every problem with one image (not an image, truncated, a decompression bomb, an unsupported
mode) is an ``InputError`` so a batch records it and goes on. Pillow is imported lazily: this
module is imported by task code only when an image is actually processed.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmcli.errors import InputError, UsageError

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_MAX_SIDE = 1024
# Pillow's own default limit (~89 Mpx) is kept; above it an image is refused as a likely bomb
# instead of only warned about, since a batch job must not run out of memory on one file.
# MMCLI_MAX_PIXELS raises or lowers it for every command that reads images.
MAX_PIXELS = 89_478_485


def max_pixels() -> int:
    """The pixel limit: ``$MMCLI_MAX_PIXELS`` or Pillow's default (a usage error if bad)."""
    text = os.environ.get("MMCLI_MAX_PIXELS", "").strip()
    if not text:
        return MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"MMCLI_MAX_PIXELS={text!r} is not a positive whole number",
                         hint="e.g. MMCLI_MAX_PIXELS=200000000, or unset it")
    return value


@dataclass(frozen=True)
class Picture:
    """An image ready for a vision model: RGB pixels and what was done to get them."""

    width: int
    height: int
    rgb: bytes
    original_size: tuple[int, int]


def load(data: bytes, name: str, max_side: int | None = DEFAULT_MAX_SIDE) -> Picture:
    """Decode ``data`` into RGB pixels, upright per EXIF, long side at most ``max_side``.

    Args:
        data: the file's bytes (any format Pillow reads: jpg, png, webp, gif - first frame -,
            bmp, tiff).
        name: how to name the image in error messages.
        max_side: downsize so the longer side is at most this (None or 0: keep the size).
    Returns:
        The picture.
    Raises:
        InputError: not an image, truncated or corrupt, or too many pixels.
    """
    img, size = open_rgb(data, name, max_side)
    return Picture(width=img.width, height=img.height, rgb=img.tobytes(), original_size=size)


def open_rgb(data: bytes, name: str,
             max_side: int | None = None) -> tuple[Image, tuple[int, int]]:
    """The one way mmcli opens an image: checked against the pixel limit *before* decoding,
    fully decoded, upright per EXIF, RGB (transparency on white), long side at most
    ``max_side`` (None or 0: full size). Returns the image and its original size.

    Raises:
        InputError: not an image, truncated or corrupt, or more pixels than the limit.
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    if not data:
        raise InputError(f"{name}: file is empty")
    limit = max_pixels()
    pillow_limit = PILImage.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():  # Pillow's bomb warning becomes our error, never stderr
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            PILImage.MAX_IMAGE_PIXELS = None  # our limit, checked below, names size and limit
            try:
                img = PILImage.open(io.BytesIO(data))
            finally:
                PILImage.MAX_IMAGE_PIXELS = pillow_limit
            size = img.size
            if size[0] * size[1] > limit:
                raise InputError(f"{name}: {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels "
                                 f"is more than the {limit:,}-pixel limit (decompression bomb?)",
                                 hint="if the image is real, raise MMCLI_MAX_PIXELS")
            if max_side and img.format == "JPEG":
                img.draft("RGB", (max_side, max_side))  # let libjpeg decode at a smaller scale
            img.load()  # decodes every pixel: truncated or corrupt files fail here
            return _finish(img, max_side), size
        except UnidentifiedImageError:
            raise InputError(f"{name}: not an image Pillow can read") from None
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            raise InputError(f"{name}: {exc}") from None
        except (OSError, SyntaxError, ValueError) as exc:
            # Pillow reports truncation and corrupt streams as OSError / SyntaxError.
            raise InputError(f"{name}: damaged image ({exc})") from None


def _finish(img: Image, max_side: int | None) -> Image:
    from PIL import Image as PILImage
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent areas become white, as an image viewer shows them, not black.
        rgba = img.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        img = background
    elif img.mode != "RGB":
        img = img.convert("RGB")
    if max_side and max(img.size) > max_side:
        scale = max_side / max(img.size)
        target = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(target, PILImage.Resampling.LANCZOS, reducing_gap=3.0)
    return img
