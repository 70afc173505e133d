"""The combined perceptual objective of Johnson, Alahi & Fei-Fei (ECCV 2016), Eq. (1)-(5).

    total = content_weight * sum_j w_j l_feat^j + style_weight * sum_j w_j l_style^j
            + pixel_weight * l_pixel + tv_weight * l_tv + grid_weight * l_grid

(``l_grid``, :func:`~losses.functional.grid_pattern_loss`, is this project's addition for super-resolution.)

The paper gives no loss weights, and weights found for one loss network do not carry over to another (the
features' scales differ by orders of magnitude), so the style-transfer defaults are a preset per loss network
(``STYLE_PRESETS``), chosen by :func:`style_preset_name`:
- ``caffe`` (the paper's Oxford VGG-16, inputs 0-255): calibrated here with the optimisation baseline on the
  bundled photos and example styles (``python -m benchmarks.calibrate_loss_weights``; README, design choices);
- ``torchvision``: pytorch/examples' ``fast_neural_style`` weights (content 1e5, style 1e10 on mean-squared
  Gram entries), rewritten for our Frobenius-norm style loss as style_weight 1e5 with layer weights 1 / C_j^2;
- ``normalized`` (the random-weight fallback): each layer's loss divided by its target's own scale
  (||G_j(y_s)||_F^2 for style, mean(phi_j(y)^2) for content), which random features need (He et al. 2016).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from perceptual_studio.networks.vgg import LAYER_NAMES, STYLE_LAYERS, LossNetwork, LossNetworkWeights

from .functional import (
    feature_reconstruction_loss,
    gram_matrix,
    grid_pattern_loss,
    pixel_loss,
    style_reconstruction_loss,
    total_variation_loss,
)

_EPS = 1e-12
_BLOCK_CHANNELS = {"1": 64, "2": 128, "3": 256, "4": 512, "5": 512}


def channel_layer_weights(layers) -> dict[str, float]:
    """pytorch/examples' style layer weights 1 / C_j^2 (its style loss is a mean over the C_j^2 Gram entries)."""
    return {name: 1.0 / _BLOCK_CHANNELS[name[4]] ** 2 for name in layers}


@dataclass(frozen=True)
class StylePreset:
    """Style-transfer loss weights for one kind of loss network; layer weights follow ``equal_layers``."""

    content_weight: float
    style_weight: float
    tv_weight: float
    normalize_layers: bool
    equal_layers: bool  # True: every style layer weighs 1; False: 1 / C_j^2

    def style_layer_weights(self, layers) -> dict[str, float]:
        return {name: 1.0 for name in layers} if self.equal_layers else channel_layer_weights(layers)


STYLE_PRESETS: dict[str, StylePreset] = {
    # Calibrated on the Oxford weights (benchmarks/calibrate_loss_weights.py; README design choices).
    "caffe": StylePreset(content_weight=1.0, style_weight=0.3, tv_weight=1e4, normalize_layers=False, equal_layers=False),
    "torchvision": StylePreset(content_weight=1.0, style_weight=1e5, tv_weight=1.0, normalize_layers=False, equal_layers=False),
    "normalized": StylePreset(content_weight=1.0, style_weight=5.0, tv_weight=1.0, normalize_layers=True, equal_layers=True),
}


def style_preset_name(weights: LossNetworkWeights, normalize_layers: bool | None = None) -> str:
    """The preset for these weights: ``normalized`` for random features (or when asked), else their convention."""
    normalize = (not weights.is_pretrained) if normalize_layers is None else normalize_layers
    return "normalized" if normalize else weights.convention.name


@dataclass(frozen=True)
class PerceptualLossConfig:
    # Feature reconstruction taps and their weights (paper: relu2_2; the authors' code: relu3_3).
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu2_2": 1.0})
    # Style reconstruction taps and their weights (paper: relu1_2, relu2_2, relu3_3, relu4_3).
    style_layers: dict[str, float] = field(default_factory=lambda: channel_layer_weights(STYLE_LAYERS))
    content_weight: float = 1.0
    style_weight: float = 1e5
    # Total variation: the paper cross-validates it per style in [1e-6, 1e-4] for unnormalised [0, 255]
    # images; ours is normalised by C*H*W on [0, 1] images, so its scale differs.
    tv_weight: float = 1.0
    pixel_weight: float = 0.0
    # A pattern locked to the output's grid of ``grid_period`` pixels (the SR scale), beyond the target's.
    grid_weight: float = 0.0
    grid_period: int = 0
    # Divide each layer's loss by its target's own scale (needed for random-weight features).
    normalize_layers: bool = False

    def __post_init__(self) -> None:
        for kind, layers in (("content", self.content_layers), ("style", self.style_layers)):
            unknown = [name for name in layers if name not in LAYER_NAMES]
            if unknown:
                raise ValueError(f"unknown {kind} layer(s) {unknown}; choose from {', '.join(n for n in LAYER_NAMES if n.startswith('relu'))}")
            if any(w < 0 for w in layers.values()):
                raise ValueError(f"{kind} layer weights must be >= 0")
        for name in ("content_weight", "style_weight", "tv_weight", "pixel_weight", "grid_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.grid_weight and self.grid_period < 2:
            raise ValueError(f"grid_weight needs grid_period >= 2 (the upscaling factor), got {self.grid_period}")
        if self.total_weight_of_terms() == 0:
            raise ValueError("every loss weight is zero: nothing to optimise")

    def total_weight_of_terms(self) -> float:
        return (
            self.content_weight * bool(self.content_layers)
            + self.style_weight * bool(self.style_layers)
            + self.tv_weight
            + self.pixel_weight
            + self.grid_weight
        )

    @property
    def uses_loss_network(self) -> bool:
        return bool(self.content_weight and self.content_layers) or bool(self.style_weight and self.style_layers)

    @property
    def layers(self) -> tuple[str, ...]:
        names = [n for n in self.content_layers if self.content_weight] + [n for n in self.style_layers if self.style_weight]
        return tuple(dict.fromkeys(names))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PerceptualLossConfig":
        return cls(**data)

    @classmethod
    def style_transfer(cls, preset: str = "caffe", **overrides) -> "PerceptualLossConfig":
        """The paper's layers with the weights of ``STYLE_PRESETS[preset]``; ``overrides`` replace fields."""
        chosen = STYLE_PRESETS[preset]
        base = dict(style_layers=chosen.style_layer_weights(STYLE_LAYERS), content_weight=chosen.content_weight,
                    style_weight=chosen.style_weight, tv_weight=chosen.tv_weight, normalize_layers=chosen.normalize_layers)
        return cls(**{**base, **overrides})

    @classmethod
    def for_weights(cls, weights: LossNetworkWeights, **overrides) -> "PerceptualLossConfig":
        """Style-transfer defaults suited to the loss network at hand (its preset; random features normalised)."""
        return cls.style_transfer(style_preset_name(weights, overrides.get("normalize_layers")), **overrides)

    @classmethod
    def super_resolution(cls, loss: str = "feature", **overrides) -> "PerceptualLossConfig":
        """Paper SR: feature reconstruction at relu2_2 only, or the per-pixel baseline."""
        if loss == "feature":
            base = dict(content_layers={"relu2_2": 1.0}, style_layers={}, content_weight=1.0, style_weight=0.0, tv_weight=0.0)
        elif loss == "pixel":
            base = dict(content_layers={}, style_layers={}, content_weight=0.0, style_weight=0.0, tv_weight=0.0, pixel_weight=1.0)
        else:
            raise ValueError(f"loss must be 'feature' or 'pixel', got {loss!r}")
        return cls(**{**base, **overrides})


@dataclass
class LossTerms:
    """The weighted terms of one evaluation; ``total`` is their sum (a scalar tensor with grad)."""

    total: torch.Tensor
    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor
    pixel: torch.Tensor
    grid: torch.Tensor | None = None  # only when grid_weight is set
    temporal: torch.Tensor | None = None  # only for a stable network (losses.temporal.TemporalLoss)

    def as_floats(self) -> dict[str, float]:
        names = ("total", "content", "style", "tv", "pixel") + tuple(
            name for name in ("grid", "temporal") if getattr(self, name) is not None)
        return {name: float(getattr(self, name).detach()) for name in names}


class PerceptualLoss(nn.Module):
    """``loss(output, content)`` -> :class:`LossTerms`; call :meth:`set_style` first when style is weighted."""

    def __init__(self, config: PerceptualLossConfig, loss_network: LossNetwork | None = None, weights: LossNetworkWeights | None = None):
        super().__init__()
        self.config = config
        if config.uses_loss_network:
            self.loss_network = loss_network if loss_network is not None else LossNetwork(config.layers, weights)
            missing = set(config.layers) - set(self.loss_network.layers)
            if missing:
                raise ValueError(f"the loss network does not tap {sorted(missing)}")
            self.identity = self.loss_network.identity
        else:
            self.loss_network = None
            self.identity = "none (pixel loss)"
        self._style_grams: dict[str, torch.Tensor] = {}
        self._style_scales: dict[str, float] = {}

    @torch.no_grad()
    def set_style(self, style_image: torch.Tensor) -> None:
        """Precompute the style targets G_j(y_s) from a (1, 3, H, W) image in [0, 1]."""
        if not (self.config.style_weight and self.config.style_layers):
            return
        if style_image.dim() != 4 or style_image.shape[0] != 1:
            raise ValueError(f"style image must be (1, 3, H, W), got {tuple(style_image.shape)}")
        feats = self.loss_network(style_image)
        self._style_grams = {name: gram_matrix(feats[name]) for name in self.config.style_layers}
        self._style_scales = {name: float(g.pow(2).sum()) + _EPS for name, g in self._style_grams.items()}

    @property
    def has_style(self) -> bool:
        return bool(self._style_grams)

    @torch.no_grad()
    def content_features(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """The content targets phi_j(y), to reuse when the same content is scored many times (baseline)."""
        if not (self.config.content_weight and self.config.content_layers):
            return {}
        feats = self.loss_network(content)
        return {name: feats[name].detach() for name in self.config.content_layers}

    def forward(
        self,
        output: torch.Tensor,
        content: torch.Tensor | None = None,
        content_features: dict[str, torch.Tensor] | None = None,
    ) -> LossTerms:
        cfg = self.config
        zero = output.new_zeros((), dtype=torch.float32)
        feats = self.loss_network(output) if self.loss_network is not None else {}

        content_loss = zero
        if cfg.content_weight and cfg.content_layers:
            if content_features is None:
                if content is None:
                    raise ValueError("a content image (or its features) is needed for the content loss")
                content_features = self.content_features(content)
            for name, w in cfg.content_layers.items():
                target = content_features[name]
                term = feature_reconstruction_loss(feats[name].float(), target.float())
                if cfg.normalize_layers:
                    term = term / (target.float().pow(2).mean() + _EPS)
                content_loss = content_loss + w * term
            content_loss = cfg.content_weight * content_loss

        style_loss = zero
        if cfg.style_weight and cfg.style_layers:
            if not self._style_grams:
                raise ValueError("call set_style(style_image) before computing a style loss")
            for name, w in cfg.style_layers.items():
                term = style_reconstruction_loss(gram_matrix(feats[name]), self._style_grams[name])
                if cfg.normalize_layers:
                    term = term / self._style_scales[name]
                style_loss = style_loss + w * term
            style_loss = cfg.style_weight * style_loss

        tv = cfg.tv_weight * total_variation_loss(output.float()) if cfg.tv_weight else zero
        pix = zero
        if cfg.pixel_weight:
            if content is None:
                raise ValueError("the pixel loss needs the target image")
            pix = cfg.pixel_weight * pixel_loss(output.float(), content.float())
        grid = None
        if cfg.grid_weight:
            if content is None:
                raise ValueError("the grid pattern loss needs the target image")
            grid = cfg.grid_weight * grid_pattern_loss(output.float(), content.float(), cfg.grid_period)
        total = content_loss + style_loss + tv + pix + (grid if grid is not None else zero)
        return LossTerms(total, content_loss, style_loss, tv, pix, grid)
