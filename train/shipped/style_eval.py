"""A style network's objective on held-out photos: the number a fast variant is judged by and the
report's gallery section compares with L-BFGS.

The objective is rebuilt from a model's training record (content and style layers, per-layer style weights,
content/style/TV weights, normalisation), so a network is scored on exactly what it was trained on; a distilled
fast variant records its teacher's objective, so both are scored alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import nn

from perceptual_studio.imaging.io import image_to_tensor
from perceptual_studio.losses import PerceptualLoss
from perceptual_studio.losses.perceptual import PerceptualLossConfig, style_preset_name
from perceptual_studio.networks.vgg import LossNetworkWeights
from perceptual_studio.registry import TrainingRecord


def objective_config(record: TrainingRecord, weights: LossNetworkWeights) -> PerceptualLossConfig:
    """The perceptual objective a style model was trained on (or, for a fast variant, its teacher was)."""
    extra = record.extra
    normalize = bool(extra.get("normalize_layers", False))
    return PerceptualLossConfig.style_transfer(
        style_preset_name(weights, normalize), content_layers={name: 1.0 for name in record.content_layers},
        style_layers=dict(extra["style_layer_weights"]), content_weight=record.content_weight,
        style_weight=record.style_weight, tv_weight=record.tv_weight, normalize_layers=normalize)


@dataclass(frozen=True)
class ObjectiveEvaluation:
    """Objective terms per photo and network (``terms[photo][network]``: total, content, style, tv)."""

    photos: tuple[str, ...]
    networks: tuple[str, ...]
    loss_network: str
    terms: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def mean(self, network: str, term: str = "total") -> float:
        return sum(self.terms[photo][network][term] for photo in self.photos) / len(self.photos)

    def excess(self, network: str, reference: str) -> float:
        """How much higher ``network``'s mean total objective is than ``reference``'s (0.05 = 5% higher)."""
        return self.mean(network) / self.mean(reference) - 1.0

    def markdown(self) -> str:
        lines = ["| photo | network | total | content | style | TV |", "|---|---|---:|---:|---:|---:|"]
        for photo in (*self.photos, None):
            for network in self.networks:
                if photo is None:
                    row = {t: self.mean(network, t) for t in ("total", "content", "style", "tv")}
                    label = f"**mean of {len(self.photos)}**"
                else:
                    row, label = self.terms[photo][network], photo
                lines.append(f"| {label} | {network} | {row['total']:.4g} | {row['content']:.4g} | "
                             f"{row['style']:.4g} | {row['tv']:.4g} |")
        return "\n".join(lines)


@torch.no_grad()
def held_out_objective(networks: dict[str, nn.Module], record: TrainingRecord, style: torch.Tensor,
                       photos: list[tuple[str, Image.Image]], weights: LossNetworkWeights,
                       device: str | torch.device = "cpu") -> ObjectiveEvaluation:
    """Each network's (in eval mode, on ``device``) value of ``record``'s objective (style image ``style``, a
    (1, 3, H, W) tensor at the record's style size) on each photo, in float32."""
    loss = PerceptualLoss(objective_config(record, weights), weights=weights).to(device)
    loss.set_style(style.to(device))
    terms: dict[str, dict[str, dict[str, float]]] = {}
    for name, photo in photos:
        content = image_to_tensor(photo).to(device)
        terms[name] = {label: loss(network(content).float(), content).as_floats() for label, network in networks.items()}
    return ObjectiveEvaluation(tuple(n for n, _ in photos), tuple(networks), weights.identity, terms)
