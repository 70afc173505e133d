"""Super-resolution metrics as in Johnson et al. 2016, Sec. 5 (after Dong et al.'s SRCNN protocol): PSNR and SSIM
on the luma (Y) channel of YCbCr.

Y follows ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` computes it, Y = 16 + 65.481 R + 128.553 G + 24.966 B for
R, G, B in [0, 1], kept in floating point (no rounding, as BasicSR's ``rgb2ycbcr(..., y_only=True)``), so Y
lies in [16, 235] and the peak is 255. Both images are 8-bit first (a model's output is quantised as it would be
saved). ``border`` pixels are shaved from each side before measuring (by convention the scale factor).
The metrics are scikit-image's: ``peak_signal_noise_ratio`` and ``structural_similarity`` with Wang et al.'s
(2004) settings (11x11 Gaussian window, sigma 1.5, population covariance), i.e. MATLAB ``ssim`` behaviour.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from imaging.io import tensor_to_image

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def to_uint8(image: Image.Image | torch.Tensor | np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 from a PIL image, a (1, 3, H, W) / (3, H, W) tensor in [0, 1], or a uint8 array."""
    if isinstance(image, torch.Tensor):
        image = tensor_to_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 array, got {array.dtype} {array.shape}")
    return array


def rgb_to_y(image: Image.Image | torch.Tensor | np.ndarray) -> np.ndarray:
    """BT.601 luma in [16, 235] (float64) of an 8-bit RGB image."""
    rgb = to_uint8(image).astype(np.float64) / 255.0
    return 16.0 + rgb @ _Y_WEIGHTS


def _pair(pred, target, border: int) -> tuple[np.ndarray, np.ndarray]:
    y_pred, y_true = rgb_to_y(pred), rgb_to_y(target)
    if y_pred.shape != y_true.shape:
        raise ValueError(f"image sizes differ: {y_pred.shape[::-1]} vs {y_true.shape[::-1]}")
    if border:
        if min(y_true.shape) <= 2 * border:
            raise ValueError(f"image {y_true.shape[::-1]} is too small to shave a {border}-pixel border")
        y_pred, y_true = y_pred[border:-border, border:-border], y_true[border:-border, border:-border]
    return y_pred, y_true


def psnr_y(pred, target, border: int = 0) -> float:
    """PSNR (dB) on Y, peak 255."""
    y_pred, y_true = _pair(pred, target, border)
    if np.array_equal(y_pred, y_true):
        return math.inf  # identical images (skimage would warn about the division by zero)
    return float(peak_signal_noise_ratio(y_true, y_pred, data_range=255.0))


def ssim_y(pred, target, border: int = 0) -> float:
    """SSIM on Y with the Gaussian-window settings of Wang et al. (2004)."""
    y_pred, y_true = _pair(pred, target, border)
    return float(structural_similarity(y_true, y_pred, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))
