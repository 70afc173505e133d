"""Train single-image super-resolution networks with a feature (perceptual) or per-pixel loss: Johnson, Alahi &
Fei-Fei (ECCV 2016), Sec. 5, the comparison behind the paper's second result.

    python -m train.sr --scale 4|8 --loss pixel|feature --data FOLDER_OR_HF_DATASET --out NAME_OR_FOLDER [options]

Paper recipe by default: 288x288 patches, low-resolution input by Gaussian blur (sigma 1.0) then bicubic
downsampling, batch 4, Adam 1e-3, feature loss at relu2_2 (``--loss feature``) or the per-pixel loss
(``--loss pixel``). After training the model is evaluated on held-out images (``--eval-data``, else the last
``--holdout`` images of ``--data``): PSNR and SSIM on Y, for the model and for bicubic upsampling, go into the
model card. Choices: the degradation runs on the training device (``train.data.degrade``); the paper
histogram-matches outputs to the input for display, which the figures here do not do.
"""
from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from imaging.io import ImageInputError, image_to_tensor, load_image, resize_to_max_side
from losses import PerceptualLoss
from losses.perceptual import PerceptualLossConfig
from networks import SuperResolutionNet

from . import data as data_mod
from .cli import COMMON_FIELDS, ProgressBar, add_common_arguments, pick, run_cli
from .config import ConfigError, SRTrainConfig
from .distributed import DistContext, barrier, init_distributed, shutdown
from .export import write_model_folder
from .loop import (LoopSpec, ProgressCallback, StopRequest, TrainEvent, configure_determinism, emit, render_preview,
                   resolve_numerics, run_loop)
from .metrics import psnr_y, ssim_y
from .plot import evolution_strip, plot_losses
from .run import (device_label, loss_network_weights, loss_table, plan_run, public_config, requested_device,
                  summarise_losses, warm_start, write_details)

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
            lr = data_mod.degrade(hr, scale, blur_sigma)
            output = model(lr).float().clamp(0, 1)
            bicubic = data_mod.bicubic_upscale(lr, scale)
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
    return data_mod.degrade(image_to_tensor(image), config.scale, config.blur_sigma)


def train_sr(config: SRTrainConfig, progress: ProgressCallback | None = None, should_stop: StopRequest = None,
             *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a super-resolution model, evaluate it, and write it as a registry model folder (see ``train_style``)."""
    ctx = init_distributed(requested_device(config))
    try:
        return _train_sr(config, ctx, progress, should_stop, resume=resume, overwrite=overwrite)
    finally:
        shutdown(ctx)


def _train_sr(config: SRTrainConfig, ctx: DistContext, progress: ProgressCallback | None, should_stop: StopRequest,
              *, resume: bool, overwrite: bool) -> Path:
    device = ctx.device
    plan = plan_run(config, resume=resume, overwrite=overwrite)
    train_paths, eval_paths, dataset_label = split_images(config)
    preview_lr = load_preview_input(config.preview_image or (eval_paths or train_paths)[0], config)

    loss_config = loss_config_for(config)
    weights = loss_network_weights(config.vgg_weights) if loss_config.uses_loss_network else None
    numerics = resolve_numerics(config, device)
    configure_determinism(config, device)

    torch.manual_seed(config.seed)
    if config.init:
        model, architecture, architecture_args = warm_start(config.init, "super-resolution")
        if architecture_args.get("scale") != config.scale:
            raise ConfigError(f"--init {config.init} is a x{architecture_args.get('scale')} model, not x{config.scale}")
    else:
        model = SuperResolutionNet(config.scale, config.channels, config.num_residual, config.norm, config.upsample)
        architecture, architecture_args = "johnson-sr", dict(model.config)
    model = model.to(device)
    loss = PerceptualLoss(loss_config, weights=weights).to(device)
    if numerics.channels_last and loss.loss_network is not None:
        loss.loss_network.to(memory_format=torch.channels_last)

    dataset = data_mod.ImageFolderDataset(train_paths, config.patch_size, crop="random", seed=config.seed)
    workers = config.num_workers if config.num_workers is not None else (4 if device.type == "cuda" else 0)

    def make_batches(start_step: int):
        sampler = data_mod.StepBatchSampler(len(dataset), config.batch_size, start_step, config.iterations,
                                            config.seed, ctx.rank, ctx.world_size)
        return data_mod.make_loader(dataset, sampler, num_workers=workers, pin_memory=device.type == "cuda")

    def prepare(hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return data_mod.degrade(hr, config.scale, config.blur_sigma), hr

    spec = LoopSpec(model=model, loss=loss, make_batches=make_batches, prepare=prepare, preview_input=preview_lr.to(device))
    identity = loss.identity
    plan.start(config, ctx)
    if ctx.is_main:
        write_details(plan.paths, {
            "task": "super-resolution", "loss_network": identity,
            "loss_network_source": weights.source if weights else None, "loss": loss_config.to_dict(),
            "architecture": architecture, "architecture_args": architecture_args, "dataset": dataset_label,
            "images": len(train_paths), "eval_images": [p.name for p in eval_paths], "world_size": ctx.world_size,
            "device": device_label(device), "numerics": numerics.label, "model_folder": str(plan.out),
        })
        logger.info("training x%d %s-loss SR on %d images (%d held out) from %s: %d iterations, %s, %s",
                    config.scale, config.loss, len(train_paths), len(eval_paths), dataset_label, config.iterations,
                    device_label(device), numerics.label)
    result = run_loop(spec, config, plan.paths, ctx, numerics=numerics, resume_from=plan.resume_from,
                      progress=progress, should_stop=should_stop)
    if not ctx.is_main:
        barrier(ctx)
        return plan.out

    history = result.history
    plot_losses(history, plan.paths.loss_plot, title=f"x{config.scale} {config.loss} loss: training loss")
    preview = render_preview(model, spec.preview_input, device, numerics)
    evolution = evolution_strip(sorted(plan.paths.previews.glob("step_*.jpg")), plan.paths.evolution)
    evaluation = evaluate_sr(model, eval_paths, scale=config.scale, blur_sigma=config.blur_sigma,
                             border=config.eval_border, max_side=config.eval_max_side, device=device)
    if evaluation is not None:
        logger.info("evaluation on %d held-out images: PSNR-Y %.2f dB (bicubic %.2f), SSIM-Y %.4f (bicubic %.4f)",
                    evaluation.images, evaluation.psnr, evaluation.bicubic_psnr, evaluation.ssim, evaluation.bicubic_ssim)
    completed = result.step >= config.iterations
    figures = summarise_losses(history, result.last_losses)
    if evaluation is not None:
        figures.update(evaluation.as_figures())
    training = {
        "loss_network": identity,
        "content_layers": list(loss_config.content_layers) if config.loss == "feature" else [],
        "style_layers": [],
        "content_weight": loss_config.content_weight if config.loss == "feature" else None,
        "tv_weight": loss_config.tv_weight,
        "pixel_weight": loss_config.pixel_weight if config.loss == "pixel" else None,
        "dataset": dataset_label,
        "image_size": config.patch_size,
        "batch_size": config.batch_size * ctx.world_size,
        "iterations": result.step,
        "learning_rate": config.learning_rate,
        "seconds": round(result.elapsed_s, 2),
        "device": device_label(device),
        "evaluation": figures,
        "sr_loss": config.loss,
        "blur_sigma": config.blur_sigma,
        "degradation": f"Gaussian blur sigma {config.blur_sigma:g}, bicubic x1/{config.scale} (torch, no antialias), 8-bit",
        "completed": completed,
        "target_iterations": config.iterations,
        "seed": config.seed,
        "numerics": numerics.label,
        "world_size": ctx.world_size,
        "training_images": len(train_paths),
        "eval_border": config.eval_border if config.eval_border is not None else config.scale,
        "train_config": public_config(config),
    }
    if config.init:
        training["init"] = config.init
    if config.renorm_radius is not None:
        training["renorm_radius"] = config.renorm_radius
    extra = ["## Training run", ""]
    if not completed:
        extra += [f"> Training was stopped early, at step {result.step} of {config.iterations}.", ""]
    if evaluation is not None:
        extra += [f"Held-out evaluation (PSNR in dB and SSIM on the Y channel, {training['eval_border']}-pixel border "
                  f"shaved; low-resolution input: {training['degradation']}):", "", evaluation.markdown(config.scale), ""]
    extra += ["![loss curve](loss_curve.png)", "", "![evolution](evolution.jpg)", "", loss_table(history), ""]
    folder = write_model_folder(
        model, plan.out, architecture=architecture, architecture_args=architecture_args, training=training,
        preview=preview, title=plan.out.name, card_extra="\n".join(extra), loss_curve=plan.paths.loss_plot,
        evolution=evolution,
    )
    emit(progress, TrainEvent(result.step, config.iterations, result.last_losses, 0.0, result.elapsed_s, preview=preview,
                              done=completed, cancelled=result.cancelled, model_folder=folder,
                              message=None if completed else f"stopped at step {result.step} of {config.iterations}; "
                                                             f"the model so far is in {folder}"))
    barrier(ctx)
    return folder


# ------------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.sr", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scale", type=int, choices=(4, 8), default=4)
    parser.add_argument("--loss", choices=("feature", "pixel"), default="feature")
    parser.add_argument("--data", required=True, help="folder of training images (recursive) or HF dataset id")
    add_common_arguments(parser, iterations=200_000)
    parser.add_argument("--patch-size", type=int, default=288, help="high-resolution patch side (paper: 288)")
    parser.add_argument("--blur-sigma", type=float, default=1.0, help="Gaussian blur before downsampling (paper: 1.0)")
    parser.add_argument("--content-layers", nargs="+", default=["relu2_2"], help="feature loss taps (paper: relu2_2)")
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--pixel-weight", type=float, default=1.0)
    parser.add_argument("--tv-weight", type=float, default=0.0)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--num-residual", type=int, default=4)
    parser.add_argument("--norm", choices=("instance", "batch", "none"), default="batch")
    parser.add_argument("--upsample", choices=("resize", "transpose"), default="resize")
    parser.add_argument("--eval-data", help="held-out evaluation images (e.g. Set5); default: the last --holdout of --data")
    parser.add_argument("--holdout", type=int, default=5)
    parser.add_argument("--eval-max-side", type=int, default=512, help="centre-crop larger evaluation images")
    parser.add_argument("--eval-border", type=int, help="pixels shaved before PSNR/SSIM (default: the scale)")
    return parser


SR_FIELDS = ("data", "scale", "loss", "patch_size", "blur_sigma", "content_layers", "content_weight", "pixel_weight",
             "tv_weight", "channels", "num_residual", "norm", "upsample", "eval_data", "holdout", "eval_max_side",
             "eval_border")


def config_from_args(args: argparse.Namespace) -> SRTrainConfig:
    values = pick(args, COMMON_FIELDS + SR_FIELDS)
    values["content_layers"] = tuple(values["content_layers"])
    return SRTrainConfig(**values)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def train(stop):
        config = config_from_args(args)
        show = not args.quiet and int(os.environ.get("RANK", "0")) == 0
        bar = ProgressBar(config.iterations, enabled=show)
        try:
            return train_sr(config, bar, stop, resume=args.resume, overwrite=args.overwrite)
        finally:
            bar.close()

    return run_cli(train, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
