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

from perceptual_studio.imaging.io import tensor_to_image

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


# ------------------------------------------------------------------------------------------ detail and artifacts
# PSNR and SSIM reward the blur the paper's feature-loss model avoids; these two measures show what it gains
# (detail) and what it costs (the faint cross-hatch), so the finding is measured rather than asserted.


def gradient_energy_ratio(pred, target, border: int = 0) -> float:
    """Energy of the luma's finite-difference gradients in ``pred`` over the original's: 1 means as much
    fine detail (edges and texture) as the original, below 1 blurrier (bicubic is far below), above 1 added
    detail or noise."""
    y_pred, y_true = _pair(pred, target, border)

    def energy(y: np.ndarray) -> float:
        return float((np.diff(y, axis=0) ** 2).sum() + (np.diff(y, axis=1) ** 2).sum())

    reference = energy(y_true)
    return energy(y_pred) / reference if reference > 0 else math.nan


# Grid frequencies lie h / period bins apart; the ring around each (radius 4) must not reach the next one.
MIN_GRID_SPACING = 10


def grid_peak_prominence(y: np.ndarray, period: int) -> float:
    """How far (dB) the luma's power spectrum peaks at the frequencies of a ``period``-pixel grid (multiples of
    1/period cycles per pixel, the lattice an x``period`` upsampler works on) above the spectrum around them.

    Each grid frequency's power (the 3 x 3 bins around it: the Hann window spreads a line over them) is divided by
    the median power of the ring of bins just outside, and the ratios are averaged. A periodic pattern locked
    to the grid, like a cross-hatch, is a line in the spectrum and raises it; image content is smooth there.
    """
    h, w = (y.shape[0] // period) * period, (y.shape[1] // period) * period
    if min(h, w) < MIN_GRID_SPACING * period:
        raise ValueError(f"image {w}x{h} is too small to measure a {period}-pixel grid (needs "
                         f"{MIN_GRID_SPACING * period} px a side)")
    y = y[:h, :w] - y[:h, :w].mean()
    power = np.abs(np.fft.fft2(y * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    floor = 1e-9 * power.mean() + 1e-12  # a flat image has no peaks: 0 dB, not log(0)
    ring = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if max(abs(dy), abs(dx)) >= 2]
    ratios = []
    for i in range(period):
        for j in range(period):
            if i == 0 and j == 0:
                continue
            ky, kx = i * h // period, j * w // period
            peak = np.mean([power[(ky + dy) % h, (kx + dx) % w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
            background = np.median([power[(ky + dy) % h, (kx + dx) % w] for dy, dx in ring])
            ratios.append((peak + floor) / (background + floor))
    return float(10.0 * math.log10(np.mean(ratios)))


def cross_hatch_db(pred, target, period: int, border: int = 0) -> float:
    """Grid-locked periodic pattern of ``pred`` beyond the original's, in dB (:func:`grid_peak_prominence` of
    each, subtracted): about 0 for no added pattern; bicubic and the networks, which all upsample on a
    ``period``-pixel lattice, can add one. ``period`` is the upscaling factor."""
    y_pred, y_true = _pair(pred, target, border)
    return grid_peak_prominence(y_pred, period) - grid_peak_prominence(y_true, period)


# ------------------------------------------------------------------------------------------ colour


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of an H x W x 3 sRGB array in [0, 1] (the sRGB transfer curve, then XYZ, then L*a*b*)."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124564, 0.2126729, 0.0193339],
                             [0.3575761, 0.7151522, 0.1191920],
                             [0.1804375, 0.0721750, 0.9503041]])
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    delta = 6.0 / 29.0
    f = np.where(xyz > delta ** 3, np.cbrt(xyz), xyz / (3 * delta ** 2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def colour_shift(pred, target, blur_sigma: float, border: int = 0) -> float:
    """Mean CIELAB colour difference (Delta E 1976) between Gaussian-blurred copies of ``pred`` and the original:
    what is left of an output's difference once detail is blurred away, i.e. a change of colour (an orange
    parrot for a yellow one). Blur with a sigma of about the scale factor, so that upsampling detail, right or
    wrong, is not counted. Bicubic sets the floor a model is compared with."""
    from scipy.ndimage import gaussian_filter  # scipy comes with scikit-image, which this module needs anyway

    a, b = to_uint8(pred).astype(np.float64) / 255.0, to_uint8(target).astype(np.float64) / 255.0
    if a.shape != b.shape:
        raise ValueError(f"image sizes differ: {a.shape[1::-1]} vs {b.shape[1::-1]}")
    a = gaussian_filter(a, sigma=(blur_sigma, blur_sigma, 0), mode="reflect")
    b = gaussian_filter(b, sigma=(blur_sigma, blur_sigma, 0), mode="reflect")
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return float(np.sqrt(((srgb_to_lab(a) - srgb_to_lab(b)) ** 2).sum(-1)).mean())
