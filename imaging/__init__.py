"""Image input/output for Perceptual Studio: every upload becomes an 8-bit RGB image or tensor here.

See :mod:`imaging.io` for the conversion rules (EXIF orientation, alpha over white, 16-bit scaling,
pixel limits checked before decoding).
"""

from perceptual_studio.imaging.io import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_FORMATS,
    ImageInputError,
    ImageSource,
    image_to_tensor,
    load_image,
    load_image_tensor,
    resize_to_max_side,
    save_image,
    tensor_to_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_FORMATS",
    "ImageInputError",
    "ImageSource",
    "image_to_tensor",
    "load_image",
    "load_image_tensor",
    "resize_to_max_side",
    "save_image",
    "tensor_to_image",
]
