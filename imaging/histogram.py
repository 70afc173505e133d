"""Histogram matching of a super-resolved image to its low-resolution input (Johnson et al. 2016, Sec. 5: "we
histogram-match the output to the low-resolution input"): each RGB channel of the output is remapped so its
distribution of values equals the input's, which undoes the colour and contrast drift of a network's output.

The mapping is scikit-image's ``exposure.match_histograms`` (exact quantile matching per channel); the input
has ``scale``^2 fewer pixels than the output, which only coarsens the quantiles a little.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.exposure import match_histograms

from perceptual_studio.imaging.metrics import to_uint8


def match_histogram(image, reference) -> Image.Image:
    """``image`` with each RGB channel's histogram matched to ``reference``'s (PIL images, (1, 3, H, W) tensors in
    [0, 1] or H x W x 3 uint8 arrays; the sizes may differ). Returns an 8-bit RGB image of ``image``'s size."""
    matched = match_histograms(to_uint8(image), to_uint8(reference), channel_axis=-1)
    return Image.fromarray(np.clip(np.round(matched), 0, 255).astype(np.uint8), "RGB")
