"""Train single-image super-resolution networks with a feature (perceptual) or per-pixel loss: Johnson, Alahi &
Fei-Fei (ECCV 2016), Sec. 5, the comparison behind the paper's second result.

    python -m train.sr --scale 4|8 --loss pixel|feature --data FOLDER_OR_HF_DATASET --out NAME_OR_FOLDER [options]

Paper recipe by default: 288x288 patches, low-resolution input by Gaussian blur (sigma 1.0) then bicubic
downsampling, batch 4, Adam 1e-3, feature loss at relu2_2 (``--loss feature``) or the per-pixel loss
(``--loss pixel``). After training the model is evaluated on held-out images (``--eval-data``, else the last
``--holdout`` images of ``--data``): PSNR and SSIM on Y, for the model and for bicubic upsampling, go into the
model card. Choices: the degradation runs on the training device (``imaging.degrade.degrade``); the paper
histogram-matches outputs to the input for display, which the figures here do not do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

import settings
from imaging.degrade import bicubic_upscale, degrade
from imaging.io import ImageInputError, image_to_tensor, load_image, resize_to_max_side
from imaging.metrics import psnr_y, ssim_y
from losses import PerceptualLoss
from losses.perceptual import PerceptualLossConfig
from networks import SuperResolutionNet

from . import data as data_mod
from .cli import ProgressBar, build_parser, config_from_args, run_cli
from .config import ConfigError, SRTrainConfig
from .driver import TaskReport, TaskSetup, start_model, train
from .loop import ProgressCallback, StopRequest
from .run import loss_network_weights

logger = logging.getLogger(__name__)


def loss_config_for(config: SRTrainConfig) -> PerceptualLossConfig:
    if config.loss == "feature":
        overrides = dict(content_layers={name: 1.0 for name in config.content_layers},
                         content_weight=config.content_weight, tv_weight=config.tv_weight)
    else:
        overrides = dict(pixel_weight=config.pixel_weight, tv_weight=config.tv_weight)
    try:
        return PerceptualLossConfig.super_resolution(config.loss, **overrides)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def crop_to_multiple(image, scale: int, max_side: int | None):
    """Centre-crop to at most ``max_side`` and to a multiple of ``scale`` (the ground truth is never resized)."""
    width, height = image.size
    w = min(width, max_side or width) // scale * scale
    h = min(height, max_side or height) // scale * scale
    left, top = (width - w) // 2, (height - h) // 2
    return image.crop((left, top, left + w, top + h))


@dataclass
class SREvaluation:
    """Mean PSNR / SSIM on Y over the evaluation images, for the model and for bicubic upsampling."""

    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    images: int
    per_image: list[dict] = field(default_factory=list)

    def as_figures(self) -> dict[str, float]:
        return {"psnr_y": round(self.psnr, 3), "ssim_y": round(self.ssim, 4), "bicubic_psnr_y": round(self.bicubic_psnr, 3),
                "bicubic_ssim_y": round(self.bicubic_ssim, 4), "eval_images": self.images}

    def markdown(self, scale: int) -> str:
        lines = [f"| image | x{scale} model PSNR | SSIM | bicubic PSNR | SSIM |", "|---|---:|---:|---:|---:|"]
        for row in self.per_image:
            lines.append(f"| {row['image']} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['bicubic_psnr']:.2f} | "
                         f"{row['bicubic_ssim']:.4f} |")
        lines.append(f"| **mean** | **{self.psnr:.2f}** | **{self.ssim:.4f}** | {self.bicubic_psnr:.2f} | {self.bicubic_ssim:.4f} |")
        return "\n".join(lines)


@torch.no_grad()
def evaluate_sr(model: nn.Module, images: Sequence[Path], *, scale: int, blur_sigma: float = 1.0,
                border: int | None = None, max_side: int | None = 512, device: torch.device | str = "cpu") -> SREvaluation | None:
    """PSNR / SSIM on Y of ``model`` and of bicubic upsampling against the ground truth (module docstring)."""
    border = scale if border is None else border
    was_training = model.training
    model.eval()
    rows = []
    try:
        for path in images:
            try:
                image = crop_to_multiple(load_image(path), scale, max_side)
            except ImageInputError as exc:
                logger.warning("skipping evaluation image %s: %s", path, exc)
                continue
            if min(image.size) < max(2 * border + 7, 8 * scale):
                logger.warning("skipping evaluation image %s: %dx%d is too small for x%d", path, *image.size, scale)
                continue
            hr = image_to_tensor(image).to(device)
            lr = degrade(hr, scale, blur_sigma)
            output = model(lr).float().clamp(0, 1)
            bicubic = bicubic_upscale(lr, scale)
            rows.append({"image": Path(path).name,
                         "psnr": psnr_y(output, hr, border), "ssim": ssim_y(output, hr, border),
                         "bicubic_psnr": psnr_y(bicubic, hr, border), "bicubic_ssim": ssim_y(bicubic, hr, border)})
    finally:
        model.train(was_training)
    if not rows:
        return None
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")}
    return SREvaluation(mean["psnr"], mean["ssim"], mean["bicubic_psnr"], mean["bicubic_ssim"], len(rows), rows)


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
            lambda: SuperResolutionNet(config.scale, config.channels, config.num_residual, config.norm, config.upsample))
        if architecture_args.get("scale") != config.scale:
            raise ConfigError(f"--init {config.init} is a x{architecture_args.get('scale')} model, not x{config.scale}")
        return TaskSetup(
            model=model.to(device), architecture=architecture, architecture_args=architecture_args,
            loss=PerceptualLoss(loss_config, weights=weights).to(device),
            dataset=data_mod.ImageFolderDataset(train_paths, config.patch_size, crop="random", seed=config.seed),
            dataset_label=dataset_label, prepare=lambda hr: (degrade(hr, config.scale, config.blur_sigma), hr),
            preview_input=preview,
            details={"loss_network_source": weights.source if weights else None,
                     "eval_images": [p.name for p in self.eval_paths]},
            summary=(f"training x{config.scale} {config.loss}-loss SR on {len(train_paths)} images "
                     f"({len(self.eval_paths)} held out) from {dataset_label}"))

    def report(self, config: SRTrainConfig, setup: TaskSetup, model: nn.Module, device: torch.device) -> TaskReport:
        evaluation = evaluate_sr(model, self.eval_paths, scale=config.scale, blur_sigma=config.blur_sigma,
                                 border=config.eval_border, max_side=config.eval_max_side, device=device)
        loss = setup.loss.config
        degradation = f"Gaussian blur sigma {config.blur_sigma:g}, bicubic x1/{config.scale} (torch, no antialias), 8-bit"
        border = config.eval_border if config.eval_border is not None else config.scale
        report = TaskReport(record={
            "content_layers": list(loss.content_layers) if config.loss == "feature" else [], "style_layers": [],
            "content_weight": loss.content_weight if config.loss == "feature" else None,
            "tv_weight": loss.tv_weight, "pixel_weight": loss.pixel_weight if config.loss == "pixel" else None,
            "image_size": config.patch_size, "sr_loss": config.loss, "blur_sigma": config.blur_sigma,
            "degradation": degradation, "eval_border": border})
        if evaluation is not None:
            logger.info("evaluation on %d held-out images: PSNR-Y %.2f dB (bicubic %.2f), SSIM-Y %.4f (bicubic %.4f)",
                        evaluation.images, evaluation.psnr, evaluation.bicubic_psnr, evaluation.ssim,
                        evaluation.bicubic_ssim)
            report.figures = evaluation.as_figures()
            report.card_lines = [f"Held-out evaluation (PSNR in dB and SSIM on the Y channel, {border}-pixel border "
                                 f"shaved; low-resolution input: {degradation}):", "",
                                 evaluation.markdown(config.scale), ""]
        return report

    def plot_title(self, config: SRTrainConfig) -> str:
        return f"x{config.scale} {config.loss} loss: training loss"


def train_sr(config: SRTrainConfig, progress: ProgressCallback | None = None, should_stop: StopRequest = None,
             *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a super-resolution model, evaluate it, and write it as a registry model folder (``train.driver.train``)."""
    return train(config, SuperResolutionTask(), progress, should_stop, resume=resume, overwrite=overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(SRTrainConfig, "python -m train.sr", __doc__.split("\n\n")[0]).parse_args(argv)

    def run(stop):
        config = config_from_args(args, SRTrainConfig)
        bar = ProgressBar(config.iterations, enabled=not args.quiet and settings.torchrun_rank() == 0)
        try:
            return train_sr(config, bar, stop, resume=args.resume, overwrite=args.overwrite)
        finally:
            bar.close()

    return run_cli(run, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
