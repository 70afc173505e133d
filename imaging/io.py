"""The single place where user-supplied images become RGB tensors and back.

Johnson et al., "Perceptual Losses for Real-Time Style Transfer and Super-Resolution" (ECCV 2016) work on
8-bit RGB images; everything else in this project assumes that, so every upload (file path, bytes, file
object, PIL image or the numpy array Gradio hands over) is funnelled through :func:`load_image`, which
refuses decompression bombs from the header before decoding, applies EXIF orientation, flattens alpha
over white and maps every Pillow mode (including 16-bit, 32-bit and float greyscale) to 8-bit RGB.
Failures a user can fix are raised as :class:`ImageInputError` with a message naming the file.
"""

from __future__ import annotations

import io
import logging
import os
import pathlib
import re
import struct
import warnings
import zlib
from typing import BinaryIO, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from perceptual_studio import settings
from perceptual_studio.settings import MAX_PIXELS

DEFAULT_MAX_PIXELS = MAX_PIXELS.default  # re-exported (imaging.DEFAULT_MAX_PIXELS)

logger = logging.getLogger(__name__)

# What users are told is supported; the Pillow plugin names below are what is actually allowed to open.
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WebP", "BMP", "TIFF", "GIF")
# Restricting Image.open to these keeps rarely-audited plugins (and EPS, which shells out to Ghostscript)
# away from untrusted uploads. Phone-camera MPO files still open: Pillow's JPEG opener returns them.
_PILLOW_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")

# Used only to tell "a PNG cut short" apart from "not an image at all" when Pillow cannot identify a file.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

# Exception types Pillow raises for malformed or truncated data; MemoryError and the like are left alone.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    zlib.error,
)

_SAVE_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]


class ImageInputError(ValueError):
    """A user-facing message saying what was wrong with an input image (no stack trace needed)."""


def _resolve_max_pixels(max_pixels: int | None) -> int:
    """Return the pixel limit to apply: the argument, else ``settings.max_pixels()`` (``PERCEPTUAL_MAX_PIXELS``,
    read at call time, so a deployment can change the limit without re-importing the package)."""
    if max_pixels is None:
        return settings.max_pixels()
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    return max_pixels


def _label(name: str | None) -> str:
    """How a message refers to the input: its base name when known (never a server's temp folder)."""
    if name:
        return f"'{pathlib.PurePath(name).name}'"
    return "The image"


def _megapixels(pixels: int) -> str:
    value = pixels / 1e6
    return f"{value:.1f}" if value >= 1 else f"{value:.2g}"


def _check_size(width: int, height: int, limit: int, label: str) -> None:
    """Reject empty images and images over the pixel limit, using only the declared size."""
    if width <= 0 or height <= 0:
        raise ImageInputError(f"{label} has zero size ({width} x {height} pixels).")
    pixels = width * height
    if pixels > limit:
        raise ImageInputError(
            f"{label} is {width} x {height} = {_megapixels(pixels)} megapixels, above the limit of "
            f"{_megapixels(limit)} megapixels. Please downscale it and try again."
        )


def _sniff_format(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None


def _array_to_uint8(array: np.ndarray, *, small_ints_are_8bit: bool) -> np.ndarray:
    """Map any numeric pixel array onto 0..255 by scaling its bit range, never by clipping.

    16-bit data is divided by 257 so 65535 becomes 255. Wider integers that fit in 16 bits are treated as
    16-bit (that is how Pillow's mode "I" normally arises); anything else is stretched from its min to max.
    Floats in 0..1 are multiplied by 255, floats already in 0..255 are kept, others are stretched.
    """
    kind, itemsize = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return array.astype(np.uint8) * 255
    if kind == "u" and itemsize == 1:
        return array.astype(np.uint8, copy=False)
    if kind == "u" and itemsize == 2:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if kind in "iu":
        low, high = int(array.min()), int(array.max())
        # Integer numpy arrays built from Python lists are int64 holding 8-bit values; Pillow's "I" is not.
        if small_ints_are_8bit and low >= 0 and high <= 255:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
        scaled = (array.astype(np.float64) - low) * (255.0 / (high - low))
        return np.rint(scaled).astype(np.uint8)
    if kind == "f":
        # Non-finite pixels carry no usable value; treating them as 0 keeps min/max meaningful.
        values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            scaled = values * 255.0
        elif low >= 0.0 and high <= 255.0:
            scaled = values
        elif high > low:
            scaled = (values - low) * (255.0 / (high - low))
        else:
            scaled = values
        return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)
    raise ImageInputError(f"Pixels of type {array.dtype} cannot be read as an image.")


def _flatten_alpha(rgba: Image.Image) -> Image.Image:
    # Outputs (and JPEG) have no alpha, so transparent areas become white, matching how viewers show them.
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(image: Image.Image, label: str) -> Image.Image:
    """Convert a loaded image of any Pillow mode to 8-bit RGB; may return ``image`` itself if already RGB."""
    mode = image.mode
    if "transparency" in image.info and mode in ("1", "L", "P", "RGB"):
        # Palette, grey and RGB PNGs/GIFs can carry a transparent index or colour key outside an alpha band.
        return _flatten_alpha(image.convert("RGBA"))
    if mode == "RGB":
        return image
    if mode in ("RGBA", "RGBa", "LA", "PA"):
        return _flatten_alpha(image.convert("RGBA"))
    if mode == "La":
        # Pillow cannot convert premultiplied grey+alpha; over white, premultiplied grey is L + (255 - A).
        array = np.asarray(image).astype(np.uint16)
        grey = np.minimum(array[..., 0] + (255 - array[..., 1]), 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode.startswith("I") or mode == "F":
        # Pillow's own convert clips 16/32-bit and float grey at 255, so scale through numpy instead.
        grey = _array_to_uint8(np.asarray(image), small_ints_are_8bit=False)
        return Image.fromarray(np.ascontiguousarray(grey)).convert("RGB")
    try:
        # 1, L, P, CMYK (including Adobe-inverted CMYK JPEGs, undone by the JPEG plugin), YCbCr, LAB, HSV.
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageInputError(f"{label} uses the {mode} colour mode, which cannot be converted to RGB.") from exc


def _finish(image: Image.Image, label: str, limit: int) -> Image.Image:
    """Check size, decode, orient and convert an opened image; always returns a new, fully loaded image."""
    _check_size(image.width, image.height, limit, label)
    try:
        image.load()
    except _DECODE_ERRORS as exc:
        raise ImageInputError(f"{label} is truncated or corrupt and cannot be read ({exc}).") from exc
    try:
        # Always returns a new image, so the caller's object (or an about-to-be-closed file) is never shared.
        oriented = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS as exc:
        # Broken metadata should not cost the user an otherwise readable picture.
        logger.warning("Ignoring unreadable EXIF orientation in %s: %s", label, exc)
        oriented = image.copy()
    return _to_rgb(oriented, label)


def _peek(stream: BinaryIO) -> tuple[BinaryIO, bytes]:
    """Return a seekable stream whose data starts at offset 0, plus its first bytes."""
    # Pillow seeks to offset 0 while identifying, so a stream that is not at its start is copied out.
    if not (hasattr(stream, "seekable") and stream.seekable()) or stream.tell() != 0:
        data = stream.read()
        if isinstance(data, str):
            raise TypeError("Image file objects must be opened in binary mode ('rb').")
        stream = io.BytesIO(data)
    head = stream.read(16)
    stream.seek(0)
    if isinstance(head, str):
        raise TypeError("Image file objects must be opened in binary mode ('rb').")
    return stream, head


def _decode(stream: BinaryIO, name: str | None, limit: int) -> Image.Image:
    """Open, size-check and decode an encoded image from a binary stream."""
    label = _label(name)
    stream, head = _peek(stream)
    if not head:
        raise ImageInputError(f"{label} is empty (0 bytes).")
    try:
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it refuse instead. The filter
        # list is process-wide (catch_warnings is not thread-safe before 3.14), so a concurrent load can
        # at worst briefly see this one extra filter; the header check in _finish applies regardless.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=_PILLOW_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses before it tells the size; its message holds the declared pixel count and its own limit.
        numbers = [int(n) for n in re.findall(r"(\d+) pixels", str(exc))]
        declared = numbers[0] if numbers else None
        ceiling = min(limit, numbers[1]) if len(numbers) > 1 else limit
        size = f"{_megapixels(declared)} megapixels" if declared else "more pixels than can be opened safely"
        raise ImageInputError(f"{label} declares {size}, above the limit of {_megapixels(ceiling)} megapixels. "
                              "Please downscale it and try again.") from exc
    except UnidentifiedImageError as exc:
        sniffed = _sniff_format(head)
        if sniffed is not None:
            raise ImageInputError(f"{label} looks like a {sniffed} file but is truncated or corrupt.") from exc
        raise ImageInputError(
            f"{label} is not a recognised image. Supported formats: {', '.join(SUPPORTED_FORMATS)}."
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageInputError(f"{label} is truncated or corrupt and cannot be read ({exc}).") from exc
    with image:
        return _finish(image, label, limit)


def _from_path(path: pathlib.Path, limit: int) -> Image.Image:
    if not path.exists():
        # The full path, as typed, is the useful part when a file is missing.
        raise ImageInputError(f"Image file '{path}' was not found.")
    label = _label(str(path))
    if path.is_dir():
        raise ImageInputError(f"{label} is a folder, not an image file.")
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ImageInputError(f"{label} could not be opened ({exc.strerror or exc}).") from exc
    with stream:
        return _decode(stream, str(path), limit)


def _from_array(array: np.ndarray, limit: int) -> Image.Image:
    label = "The image array"
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (2, 3, 4))):
        raise ImageInputError(
            f"{label} has shape {tuple(array.shape)}; expected H x W, H x W x 3 or H x W x 4."
        )
    height, width = array.shape[:2]
    _check_size(width, height, limit, label)
    # fromarray infers L, LA, RGB or RGBA from the channel count.
    image = Image.fromarray(np.ascontiguousarray(_array_to_uint8(array, small_ints_are_8bit=True)))
    rgb = _to_rgb(image, label)
    # fromarray can share memory with the caller's array; never hand that back.
    return rgb.copy() if rgb is image else rgb


def load_image(source: ImageSource | None, *, max_pixels: int | None = None) -> Image.Image:
    """Load any supported image input as a fully decoded 8-bit RGB PIL image.

    ``source`` may be a path, encoded bytes, a binary file object, a PIL image or a numpy array
    (H x W, H x W x 3, H x W x 4; uint8, uint16 or float). ``max_pixels`` defaults to the
    ``PERCEPTUAL_MAX_PIXELS`` environment variable, else :data:`DEFAULT_MAX_PIXELS`; the limit is checked
    against the header before any pixel data is decoded. Raises :class:`ImageInputError` for anything a
    user could fix (not an image, truncated, empty, missing, too large).
    """
    limit = _resolve_max_pixels(max_pixels)
    if source is None:
        # Gradio passes None when the user pressed a button without uploading anything.
        raise ImageInputError("No image was provided.")
    if isinstance(source, Image.Image):
        return _finish(source, _label(getattr(source, "filename", None)), limit)
    if isinstance(source, np.ndarray):
        return _from_array(source, limit)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(pathlib.Path(source), limit)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(bytes(source)), None, limit)
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return _decode(source, name if isinstance(name, str) else None, limit)
    raise TypeError(f"Cannot load an image from {type(source).__name__}.")


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """Return a float32 tensor of shape (1, 3, H, W) with values in [0, 1]."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"Expected a PIL image, got {type(image).__name__}.")
    if image.mode != "RGB":
        image = _to_rgb(image, _label(getattr(image, "filename", None)))
    array = np.array(image, dtype=np.uint8)  # a writable copy, so torch can own it without warnings
    return torch.from_numpy(array).permute(2, 0, 1).contiguous().unsqueeze(0).float().div_(255.0)


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Return an RGB image from a float tensor of shape (1, 3, H, W) or (3, H, W), clamped to [0, 1]."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"Expected a torch.Tensor, got {type(tensor).__name__}.")
    if not tensor.is_floating_point():
        raise TypeError(f"Expected a floating-point tensor with values in [0, 1], got {tensor.dtype}.")
    values = tensor.detach()
    if values.ndim == 4:
        if values.shape[0] != 1:
            raise ValueError(f"Expected a single image, got a batch of {values.shape[0]}.")
        values = values[0]
    if values.ndim != 3 or values.shape[0] != 3:
        raise ValueError(f"Expected shape (1, 3, H, W) or (3, H, W), got {tuple(tensor.shape)}.")
    if values.shape[1] == 0 or values.shape[2] == 0:
        raise ValueError(f"Cannot make an image from an empty tensor of shape {tuple(tensor.shape)}.")
    # Quantise on the tensor's own device (in float32, since bfloat16 cannot represent 0..255 exactly),
    # so only uint8 crosses to the CPU; copy=True makes the in-place ops safe for the caller's tensor.
    quantised = values.to(torch.float32, copy=True).nan_to_num_(0.0).clamp_(0.0, 1.0).mul_(255.0).round_()
    array = quantised.to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()
    return Image.fromarray(array)


def load_image_tensor(source: ImageSource | None, *, max_pixels: int | None = None) -> torch.Tensor:
    """:func:`load_image` followed by :func:`image_to_tensor`."""
    return image_to_tensor(load_image(source, max_pixels=max_pixels))


def resize_to_max_side(image: Image.Image, max_side: int | None) -> Image.Image:
    """Downscale so the longer side is at most ``max_side``, keeping the aspect ratio; never upscale."""
    if max_side is None:
        return image
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side <= 0:
        raise ValueError(f"max_side must be a positive integer or None, got {max_side!r}")
    width, height = image.size
    longest = max(width, height)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap first shrinks by an integer factor in C, which keeps 40 MP uploads fast with no
    # visible difference from a full Lanczos pass.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def save_image(image_or_tensor: Image.Image | torch.Tensor, path: str | os.PathLike[str]) -> pathlib.Path:
    """Save an image or (1, 3, H, W) / (3, H, W) tensor as RGB PNG or JPEG, chosen by the file suffix."""
    path = pathlib.Path(path)
    file_format = _SAVE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ValueError(f"Cannot save '{path.name}': use a .png, .jpg or .jpeg file name.")
    if isinstance(image_or_tensor, torch.Tensor):
        image = tensor_to_image(image_or_tensor)
    elif isinstance(image_or_tensor, Image.Image):
        image = image_or_tensor if image_or_tensor.mode == "RGB" else _to_rgb(image_or_tensor, _label(None))
    else:
        raise TypeError(f"Expected a PIL image or a torch.Tensor, got {type(image_or_tensor).__name__}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    # 4:4:4 chroma keeps the fine colour detail stylised outputs are full of; 4:2:0 visibly smears it.
    options = {"quality": 95, "subsampling": 0} if file_format == "JPEG" else {}
    image.save(path, format=file_format, **options)
    return path
