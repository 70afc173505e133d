"""Super-resolution's degradation (paper Sec. 5: Gaussian blur sigma 1.0, then bicubic downsampling) and the
bicubic baseline: shared by training, evaluation and the app, so all three see the same low-resolution input."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import gaussian_blur


def degrade(hr: torch.Tensor, scale: int, sigma: float = 1.0) -> torch.Tensor:
    """The paper's low-resolution input: Gaussian blur (sigma) then bicubic downsampling by ``scale``.

    Blur: torchvision's ``gaussian_blur`` with a 2*ceil(3 sigma)+1 kernel and reflection padding. Downsampling:
    ``F.interpolate(mode="bicubic", antialias=False)`` (the blur is the anti-aliasing filter, as in the paper),
    runs on the training device. The result is rounded to 8-bit levels, like a saved low-resolution image.
    """
    if hr.dim() != 4:
        raise ValueError(f"expected a (B, 3, H, W) batch, got shape {tuple(hr.shape)}")
    height, width = hr.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"image size {width}x{height} is not a multiple of the scale {scale}")
    x = hr.float()
    if sigma > 0:
        kernel = 2 * math.ceil(3 * sigma) + 1
        x = gaussian_blur(x, [kernel, kernel], [sigma, sigma])
    lr = F.interpolate(x, size=(height // scale, width // scale), mode="bicubic", align_corners=False, antialias=False)
    return lr.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic baseline the SR models are compared against, on 8-bit levels."""
    up = F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False)
    return up.clamp(0.0, 1.0).mul(255.0).round().div(255.0)
