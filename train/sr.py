"""Train single-image super-resolution networks with a feature (perceptual) or per-pixel loss: Johnson, Alahi &
Fei-Fei (ECCV 2016), Sec. 5, the comparison behind the paper's second result.

    python -m train.sr --scale 4|8 --loss pixel|feature --data FOLDER_OR_HF_DATASET --out NAME_OR_FOLDER [options]

Paper recipe by default: 288x288 patches, low-resolution input by Gaussian blur (sigma 1.0) then bicubic
downsampling, batch 4, Adam 1e-3, feature loss at relu2_2 (``--loss feature``) or the per-pixel loss
(``--loss pixel``). After training the model is evaluated on held-out images (``--eval-data``, else the last
``--holdout`` images of ``--data``): PSNR and SSIM on Y, for the model and for bicubic upsampling, go into the
model card, with the detail and cross-hatch measures of ``train/sr_eval.py``. Choices: the degradation runs on the
training device (``imaging.degrade.degrade``); the paper histogram-matches outputs to the input for display,
which the card's figures do not do (``python -m benchmarks.report --sections 3`` reports both, the app offers it).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from perceptual_studio.imaging.degrade import degrade
from perceptual_studio.imaging.io import image_to_tensor, load_image, resize_to_max_side
from perceptual_studio.losses import PerceptualLoss
from perceptual_studio.losses.perceptual import PerceptualLossConfig
from perceptual_studio.networks import SuperResolutionNet

from . import data as data_mod
from .cli import trainer_main
from .config import ConfigError, SRTrainConfig
from .driver import TaskReport, TaskSetup, start_model, train
from .loop import ProgressCallback, StopRequest
from .run import loss_network_weights
from .sr_eval import crop_to_multiple, degradation_label, evaluate_sr

logger = logging.getLogger(__name__)

# Decoded training photos kept in memory (train/data.py): the corpus's ~130 photos take about 0.6 GB.
IMAGE_CACHE_BYTES = 4 << 30


def loss_config_for(config: SRTrainConfig) -> PerceptualLossConfig:
    if config.loss == "feature":
        overrides = dict(content_layers={name: 1.0 for name in config.content_layers},
                         content_weight=config.content_weight, tv_weight=config.tv_weight,
                         grid_weight=config.grid_weight, grid_period=config.scale)
    else:
        overrides = dict(pixel_weight=config.pixel_weight, tv_weight=config.tv_weight)
    try:
        return PerceptualLossConfig.super_resolution(config.loss, **overrides)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def split_images(config: SRTrainConfig) -> tuple[list[Path], list[Path], str]:
    """Training images, held-out evaluation images, and the dataset label."""
    paths, label = data_mod.list_training_images(config.data, what="training")
    if config.eval_data:
        eval_paths, _ = data_mod.list_training_images(config.eval_data, what="evaluation")
        return paths, eval_paths, label
    if config.holdout == 0:
        logger.warning("no evaluation images (--holdout 0 and no --eval-data): the card will have no PSNR/SSIM")
        return paths, [], label
    if len(paths) <= config.holdout:
        raise data_mod.DataError(
            f"the training folder has {len(paths)} usable image(s), not enough to hold out {config.holdout} for "
            f"evaluation and train on the rest; add images, lower --holdout or give --eval-data"
        )
    return paths[:-config.holdout], paths[-config.holdout:], label


def load_preview_input(path: Path | str, config: SRTrainConfig) -> torch.Tensor:
    image = crop_to_multiple(resize_to_max_side(load_image(path), config.preview_size), config.scale, None)
    if min(image.size) < 8 * config.scale:
        raise ConfigError(f"the preview image {Path(path).name} is too small for x{config.scale} at --preview-size {config.preview_size}")
    return degrade(image_to_tensor(image), config.scale, config.blur_sigma)


class SuperResolutionTask:
    """Sec. 5: x4 / x8 super-resolution trained with the feature loss (the paper's model) or the pixel loss,
    evaluated on held-out images against bicubic."""

    task = "super-resolution"

    def setup(self, config: SRTrainConfig, device: torch.device) -> TaskSetup:
        train_paths, self.eval_paths, dataset_label = split_images(config)
        preview = load_preview_input(config.preview_image or (self.eval_paths or train_paths)[0], config)
        loss_config = loss_config_for(config)
        weights = loss_network_weights(config.vgg_weights) if loss_config.uses_loss_network else None
        model, architecture, architecture_args = start_model(
            config, self.task,
            lambda: SuperResolutionNet(config.scale, config.channels, config.num_residual, config.norm, config.upsample,
                               config.residual, config.degrid))
        if architecture_args.get("scale") != config.scale:
            raise ConfigError(f"--init {config.init} is a x{architecture_args.get('scale')} model, not x{config.scale}")
        if config.degrid and architecture_args.get("degrid", 0) != config.degrid:
            model.set_degrid(config.degrid)  # weight-free: it can be switched on for the model fine-tuned from
            architecture_args = dict(model.config)
            logger.info("lattice filter on (degrid %d) for the network fine-tuned from %s", config.degrid, config.init)
        return TaskSetup(
            model=model.to(device), architecture=architecture, architecture_args=architecture_args,
            loss=PerceptualLoss(loss_config, weights=weights).to(device),
            dataset=data_mod.ImageFolderDataset(train_paths, config.patch_size, crop="random", seed=config.seed,
                                                 augment=config.augment, cache_bytes=IMAGE_CACHE_BYTES),
            dataset_label=dataset_label, prepare=lambda hr: (degrade(hr, config.scale, config.blur_sigma), hr),
            preview_input=preview,
            details={"loss_network_source": weights.source if weights else None,
                     "eval_images": [p.name for p in self.eval_paths]},
            summary=(f"training x{config.scale} {config.loss}-loss SR on {len(train_paths)} images "
                     f"({len(self.eval_paths)} held out) from {dataset_label}"))

    def report(self, config: SRTrainConfig, setup: TaskSetup, model: nn.Module, device: torch.device) -> TaskReport:
        method = f"{config.loss} loss"
        evaluation = evaluate_sr({method: model}, self.eval_paths, scale=config.scale, blur_sigma=config.blur_sigma,
                                 border=config.eval_border, max_side=config.eval_max_side, device=device)
        loss = setup.loss.config
        degradation = degradation_label(config.scale, config.blur_sigma)
        border = config.eval_border if config.eval_border is not None else config.scale
        report = TaskReport(record={
            "content_layers": list(loss.content_layers) if config.loss == "feature" else [], "style_layers": [],
            "content_weight": loss.content_weight if config.loss == "feature" else None,
            "tv_weight": loss.tv_weight, "pixel_weight": loss.pixel_weight if config.loss == "pixel" else None,
            "grid_weight": loss.grid_weight if config.loss == "feature" else None,
            "image_size": config.patch_size, "sr_loss": config.loss, "blur_sigma": config.blur_sigma,
            "degradation": degradation, "eval_border": border})
        if evaluation is not None:
            mine, bicubic = evaluation.mean(method), evaluation.mean("bicubic")
            logger.info("evaluation on %d held-out images: PSNR-Y %.2f dB (bicubic %.2f), SSIM-Y %.4f (bicubic %.4f)",
                        len(evaluation.images), mine.psnr, bicubic.psnr, mine.ssim, bicubic.ssim)
            report.figures = evaluation.as_figures(method)
            report.card_lines = [f"Held-out evaluation (PSNR in dB and SSIM on the Y channel, {border}-pixel border "
                                 f"shaved; low-resolution input: {degradation}; gradient energy / original: recovered "
                                 f"detail, 1 = the original's; cross-hatch: grid-locked periodic pattern added, "
                                 f"`train/sr_eval.py`):", "", evaluation.markdown(), ""]
        return report

    def plot_title(self, config: SRTrainConfig) -> str:
        return f"x{config.scale} {config.loss} loss: training loss"


def train_sr(config: SRTrainConfig, progress: ProgressCallback | None = None, should_stop: StopRequest = None,
             *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a super-resolution model, evaluate it, and write it as a registry model folder (``train.driver.train``)."""
    return train(config, SuperResolutionTask(), progress, should_stop, resume=resume, overwrite=overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    return trainer_main(argv, SRTrainConfig, "python -m train.sr", __doc__.split("\n\n")[0], train_sr)


if __name__ == "__main__":
    raise SystemExit(main())
