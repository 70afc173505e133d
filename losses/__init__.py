"""Perceptual losses (Johnson et al. 2016): per-concept functions and the combined objective."""
from .functional import (
    feature_reconstruction_loss,
    gram_matrix,
    grid_pattern_loss,
    pixel_loss,
    style_reconstruction_loss,
    total_variation_loss,
)
from .perceptual import LossTerms, PerceptualLoss, PerceptualLossConfig
from .temporal import TemporalLoss

__all__ = [
    "feature_reconstruction_loss",
    "gram_matrix",
    "grid_pattern_loss",
    "pixel_loss",
    "style_reconstruction_loss",
    "total_variation_loss",
    "LossTerms",
    "PerceptualLoss",
    "TemporalLoss",
    "PerceptualLossConfig",
]
