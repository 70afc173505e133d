"""Train (or fine-tune) a fast style transfer network for one style image: Johnson, Alahi & Fei-Fei (ECCV 2016),
Sec. 4, with the paper's recipe by default (256x256 content, batch 4, 40k iterations, Adam 1e-3, content at
relu2_2, style at relu1_2..relu4_3).

    python -m train.style --style STYLE_IMAGE --content FOLDER_OR_HF_DATASET --out NAME_OR_FOLDER [options]
    torchrun --nproc_per_node N -m train.style ...            (DistributedDataParallel, same options)

Deviations and choices: content images are resized (shorter side) and centre-cropped rather than squashed; the
style image's longer side is resized to ``--style-size`` (default: the training size, as in the authors'
code); loss weights the paper leaves open come from the loss network's preset (``losses.perceptual.STYLE_PRESETS``:
calibrated for the Oxford VGG-16, per-layer normalised for the random-weight fallback). ``--init`` warm-starts from any registry style
model, which reaches a new style in a fraction of the iterations.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from perceptual_studio.imaging.io import image_to_tensor, load_image, resize_to_max_side
from perceptual_studio.losses import PerceptualLoss, TemporalLoss
from perceptual_studio.losses.perceptual import STYLE_PRESETS, PerceptualLossConfig, style_preset_name
from perceptual_studio.networks import StyleTransformNet
from perceptual_studio.networks.vgg import LossNetworkWeights

from . import data as data_mod
from .cli import trainer_main
from .config import MIN_IMAGE_SIZE, ConfigError, StyleTrainConfig
from .driver import TaskReport, TaskSetup, start_model, train
from .loop import ProgressCallback, StopRequest
from .run import loss_network_weights

logger = logging.getLogger(__name__)


def loss_config_for(config: StyleTrainConfig, weights: LossNetworkWeights) -> PerceptualLossConfig:
    """The objective: the config's layers and weights, with the loss network's preset where not given."""
    preset = style_preset_name(weights, config.normalize_layers)
    overrides = {k: getattr(config, k) for k in ("content_weight", "style_weight", "tv_weight") if getattr(config, k) is not None}
    try:
        return PerceptualLossConfig.style_transfer(
            preset, content_layers={name: 1.0 for name in config.content_layers},
            style_layers=STYLE_PRESETS[preset].style_layer_weights(config.style_layers), **overrides)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def load_style_image(path: str | Image.Image, size: int) -> torch.Tensor:
    """The style image (a file, or one already decoded) as a (1, 3, H, W) tensor with its longer side ``size``;
    too thin images are refused."""
    image = path if isinstance(path, Image.Image) else load_image(path)
    name = "" if isinstance(path, Image.Image) else f" {Path(path).name}"
    width, height = image.size
    scale = size / max(width, height)
    resized = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BICUBIC) if scale != 1 else image
    if min(resized.size) < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"the style image{name} ({width}x{height}) becomes {resized.width}x{resized.height} at "
            f"--style-size {size}: too small for the loss network (at least {MIN_IMAGE_SIZE} px a side); use a "
            f"less elongated image or a larger --style-size"
        )
    return image_to_tensor(resized)


def load_preview_input(path: Path | str, size: int) -> torch.Tensor:
    image = resize_to_max_side(load_image(path), size)
    if min(image.size) < MIN_IMAGE_SIZE:
        raise ConfigError(f"the preview image {Path(path).name} is smaller than {MIN_IMAGE_SIZE} px at --preview-size {size}")
    return image_to_tensor(image)


class StyleTask:
    """Sec. 4: a feed-forward network trained against the content and style losses of one style image."""

    task = "style-transfer"

    def __init__(self, style_image: Image.Image | None = None) -> None:
        # The style image decoded once: by the caller when it has already read it (the app checks each upload),
        # else here; the loss targets and the model folder's style.jpg both come from this one copy.
        self.style_image = style_image

    def setup(self, config: StyleTrainConfig, device: torch.device) -> TaskSetup:
        self.style_size = config.style_size or config.image_size
        if self.style_image is None:
            self.style_image = load_image(config.style)
        style_tensor = load_style_image(self.style_image, self.style_size)
        paths, dataset_label = data_mod.list_training_images(config.content, what="content")
        preview = load_preview_input(config.preview_image or paths[0], config.preview_size)
        weights = loss_network_weights(config.vgg_weights)
        loss_config = loss_config_for(config, weights)
        model, architecture, architecture_args = start_model(
            config, self.task, lambda: StyleTransformNet(config.norm, config.upsample, config.width, config.num_residual))
        loss = PerceptualLoss(loss_config, weights=weights).to(device)
        loss.set_style(style_tensor.to(device))
        return TaskSetup(
            model=model.to(device), architecture=architecture, architecture_args=architecture_args, loss=loss,
            dataset=data_mod.ImageFolderDataset(paths, config.image_size, crop="center", seed=config.seed),
            dataset_label=dataset_label, prepare=lambda batch: (batch, batch), preview_input=preview,
            details={"loss_network_source": weights.source},
            summary=f"training {config.name} on {len(paths)} images from {dataset_label}"
                    + (f", temporal loss {config.temporal_weight:g}" if config.temporal_weight else "")
                    + (f" (and {config.temporal_flat_share:.0%} more pairs, flat)" if config.temporal_flat_share else ""),
            temporal=(TemporalLoss(config.temporal_weight, flat_share=config.temporal_flat_share)
                      if config.temporal_weight else None))

    def report(self, config: StyleTrainConfig, setup: TaskSetup, model, device) -> TaskReport:
        loss = setup.loss.config
        return TaskReport(
            record={"style_layers": list(loss.style_layers), "content_weight": loss.content_weight,
                    "style_weight": loss.style_weight, "tv_weight": loss.tv_weight, "image_size": config.image_size,
                    "normalize_layers": loss.normalize_layers, "style_layer_weights": dict(loss.style_layers),
                    "style_size": self.style_size,
                    **({"variant_of": config.variant_of} if config.variant_of else {}),
                    **({"temporal_weight": config.temporal_weight} if config.temporal_weight else {}),
                    **({"temporal_flat_share": config.temporal_flat_share} if config.temporal_flat_share else {})},
            folder_options={"style": config.name, "style_image": self.style_image})

    def plot_title(self, config: StyleTrainConfig) -> str:
        return f"{config.name}: training loss"


def train_style(config: StyleTrainConfig, progress: ProgressCallback | None = None, should_stop: StopRequest = None,
                *, resume: bool = False, overwrite: bool = False, style_image: Image.Image | None = None) -> Path:
    """Train a style model and write it as a registry model folder; returns the folder (``train.driver.train``).

    ``style_image``: ``config.style`` already decoded (RGB), so it is not read again."""
    return train(config, StyleTask(style_image), progress, should_stop, resume=resume, overwrite=overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    return trainer_main(argv, StyleTrainConfig, "python -m train.style", __doc__.split("\n\n")[0], train_style)


if __name__ == "__main__":
    raise SystemExit(main())
