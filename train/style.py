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

import argparse
import logging
import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from imaging.io import image_to_tensor, load_image, resize_to_max_side
from losses import PerceptualLoss
from losses.perceptual import STYLE_PRESETS, PerceptualLossConfig, style_preset_name
from networks.vgg import LossNetworkWeights
from networks import StyleTransformNet

from . import data as data_mod
from .cli import COMMON_FIELDS, ProgressBar, add_common_arguments, pick, run_cli
from .config import MIN_IMAGE_SIZE, ConfigError, StyleTrainConfig
from .distributed import DistContext, barrier, init_distributed, shutdown
from .export import write_model_folder
from .loop import (LoopResult, LoopSpec, ProgressCallback, StopRequest, TrainEvent, configure_determinism, emit,
                   render_preview, resolve_numerics, run_loop)
from .plot import evolution_strip, plot_losses
from .run import (device_label, loss_network_weights, loss_table, plan_run, public_config, requested_device,
                  summarise_losses, warm_start, write_details)

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


def load_style_image(path: str, size: int) -> torch.Tensor:
    """The style image as a (1, 3, H, W) tensor with its longer side ``size``; too thin images are refused."""
    image = load_image(path)
    width, height = image.size
    scale = size / max(width, height)
    resized = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BICUBIC) if scale != 1 else image
    if min(resized.size) < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"the style image {Path(path).name} ({width}x{height}) becomes {resized.width}x{resized.height} at "
            f"--style-size {size}: too small for the loss network (at least {MIN_IMAGE_SIZE} px a side); use a "
            f"less elongated image or a larger --style-size"
        )
    return image_to_tensor(resized)


def load_preview_input(path: Path | str, size: int) -> torch.Tensor:
    image = resize_to_max_side(load_image(path), size)
    if min(image.size) < MIN_IMAGE_SIZE:
        raise ConfigError(f"the preview image {Path(path).name} is smaller than {MIN_IMAGE_SIZE} px at --preview-size {size}")
    return image_to_tensor(image)


def train_style(config: StyleTrainConfig, progress: ProgressCallback | None = None, should_stop: StopRequest = None,
                *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a style model and write it as a registry model folder; returns the folder.

    ``progress`` receives a :class:`~train.loop.TrainEvent` after every step (with a preview image at preview
    steps, ``done`` / ``cancelled`` on the last one). ``should_stop`` (a ``threading.Event`` or a callable)
    stops the run cleanly: a checkpoint and a usable model are still written. A diverging loss raises
    :class:`~train.loop.TrainingDivergedError` and keeps the last good checkpoint.
    """
    ctx = init_distributed(requested_device(config))
    try:
        return _train_style(config, ctx, progress, should_stop, resume=resume, overwrite=overwrite)
    finally:
        shutdown(ctx)


def _train_style(config: StyleTrainConfig, ctx: DistContext, progress: ProgressCallback | None, should_stop: StopRequest,
                 *, resume: bool, overwrite: bool) -> Path:
    device = ctx.device
    plan = plan_run(config, resume=resume, overwrite=overwrite)
    # Inputs first: a bad style image or content folder must fail before any heavy setup.
    style_size = config.style_size or config.image_size
    style_tensor = load_style_image(config.style, style_size)
    paths, dataset_label = data_mod.list_training_images(config.content, what="content")
    preview_tensor = load_preview_input(config.preview_image or paths[0], config.preview_size)

    weights = loss_network_weights(config.vgg_weights)
    loss_config = loss_config_for(config, weights)
    numerics = resolve_numerics(config, device)
    configure_determinism(config, device)

    torch.manual_seed(config.seed)
    if config.init:
        model, architecture, architecture_args = warm_start(config.init, "style-transfer")
        logger.info("fine-tuning from %s (%s %s); the architecture options are taken from it", config.init, architecture, architecture_args)
    else:
        model = StyleTransformNet(config.norm, config.upsample, config.width, config.num_residual)
        architecture, architecture_args = "johnson-style", dict(model.config)
    model = model.to(device)

    loss = PerceptualLoss(loss_config, weights=weights).to(device)
    loss.set_style(style_tensor.to(device))
    if numerics.channels_last and loss.loss_network is not None:
        loss.loss_network.to(memory_format=torch.channels_last)

    dataset = data_mod.ImageFolderDataset(paths, config.image_size, crop="center", seed=config.seed)
    workers = config.num_workers if config.num_workers is not None else (4 if device.type == "cuda" else 0)

    def make_batches(start_step: int):
        sampler = data_mod.StepBatchSampler(len(dataset), config.batch_size, start_step, config.iterations,
                                            config.seed, ctx.rank, ctx.world_size)
        return data_mod.make_loader(dataset, sampler, num_workers=workers, pin_memory=device.type == "cuda")

    spec = LoopSpec(model=model, loss=loss, make_batches=make_batches, prepare=lambda batch: (batch, batch),
                    preview_input=preview_tensor.to(device))
    plan.start(config, ctx)
    if ctx.is_main:
        write_details(plan.paths, {
            "task": "style-transfer", "loss_network": weights.identity, "loss_network_source": weights.source,
            "loss": loss_config.to_dict(), "architecture": architecture, "architecture_args": architecture_args,
            "dataset": dataset_label, "images": len(paths), "world_size": ctx.world_size, "device": device_label(device),
            "numerics": numerics.label, "model_folder": str(plan.out),
        })
        logger.info("training %s on %d images from %s: %d iterations, batch %d x %d process(es), %s, %s, loss network %s",
                    config.name, len(paths), dataset_label, config.iterations, config.batch_size, ctx.world_size,
                    device_label(device), numerics.label, weights.identity)
    result = run_loop(spec, config, plan.paths, ctx, numerics=numerics, resume_from=plan.resume_from,
                      progress=progress, should_stop=should_stop)
    if not ctx.is_main:
        barrier(ctx)
        return plan.out

    history = result.history
    plot_losses(history, plan.paths.loss_plot, title=f"{config.name}: training loss")
    preview = render_preview(model, spec.preview_input, device, numerics)
    evolution = evolution_strip(sorted(plan.paths.previews.glob("step_*.jpg")), plan.paths.evolution)
    completed = result.step >= config.iterations
    training = {
        "loss_network": weights.identity,
        "content_layers": list(loss_config.content_layers),
        "style_layers": list(loss_config.style_layers),
        "content_weight": loss_config.content_weight,
        "style_weight": loss_config.style_weight,
        "tv_weight": loss_config.tv_weight,
        "dataset": dataset_label,
        "image_size": config.image_size,
        "batch_size": config.batch_size * ctx.world_size,
        "iterations": result.step,
        "learning_rate": config.learning_rate,
        "seconds": round(result.elapsed_s, 2),
        "device": device_label(device),
        "evaluation": summarise_losses(history, result.last_losses),
        "completed": completed,
        "target_iterations": config.iterations,
        "seed": config.seed,
        "numerics": numerics.label,
        "normalize_layers": loss_config.normalize_layers,
        "style_layer_weights": dict(loss_config.style_layers),
        "style_size": style_size,
        "world_size": ctx.world_size,
        "training_images": len(paths),
        "train_config": public_config(config),
    }
    if config.init:
        training["init"] = config.init
    if config.renorm_radius is not None:
        training["renorm_radius"] = config.renorm_radius
    folder = write_model_folder(
        model, plan.out, architecture=architecture, architecture_args=architecture_args, training=training,
        style=config.name, style_image=config.style, preview=preview, title=plan.out.name,
        card_extra=_card_extra(result, config, history), loss_curve=plan.paths.loss_plot, evolution=evolution,
    )
    emit(progress, TrainEvent(result.step, config.iterations, result.last_losses, 0.0, result.elapsed_s,
                              preview=preview, done=completed, cancelled=result.cancelled, model_folder=folder,
                              message=None if completed else f"stopped at step {result.step} of {config.iterations}; "
                                                             f"the model so far is in {folder}"))
    barrier(ctx)
    return folder


def _card_extra(result: LoopResult, config: StyleTrainConfig, history: list[dict]) -> str:
    lines = ["## Training run", ""]
    if result.step < config.iterations:
        lines += [f"> Training was stopped early, at step {result.step} of {config.iterations}.", ""]
    lines += ["Loss curve (log scale) and the output on a fixed validation image during training:", "",
              "![loss curve](loss_curve.png)", "", "![evolution](evolution.jpg)", ""]
    table = loss_table(history)
    if table:
        lines += [table, ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.style", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--style", required=True, help="the style image")
    parser.add_argument("--content", required=True, help="folder of content images (recursive) or HF dataset id")
    parser.add_argument("--style-name", help="style name in the registry (default: the style image's file name)")
    add_common_arguments(parser, iterations=40_000)
    parser.add_argument("--image-size", type=int, default=256, help="content crop size (paper: 256)")
    parser.add_argument("--style-size", type=int, help="style image longer side (default: --image-size)")
    parser.add_argument("--content-layers", nargs="+", default=["relu2_2"], help="paper: relu2_2")
    parser.add_argument("--style-layers", nargs="+", default=["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    parser.add_argument("--content-weight", type=float, help="default: from the loss network (losses/perceptual.py)")
    parser.add_argument("--style-weight", type=float)
    parser.add_argument("--tv-weight", type=float)
    normalize = parser.add_mutually_exclusive_group()
    normalize.add_argument("--normalize-layers", dest="normalize_layers", action="store_true", default=None,
                           help="per-layer normalised losses (default: on for a random-weight loss network)")
    normalize.add_argument("--no-normalize-layers", dest="normalize_layers", action="store_false")
    parser.add_argument("--norm", choices=("instance", "batch", "none"), default="instance")
    parser.add_argument("--upsample", choices=("resize", "transpose"), default="resize")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (authors' later code: 0.5)")
    parser.add_argument("--num-residual", type=int, default=5)
    return parser


STYLE_FIELDS = ("style", "content", "style_name", "image_size", "style_size", "content_layers", "style_layers",
                "content_weight", "style_weight", "tv_weight", "normalize_layers", "norm", "upsample", "width",
                "num_residual")


def config_from_args(args: argparse.Namespace) -> StyleTrainConfig:
    values = pick(args, COMMON_FIELDS + STYLE_FIELDS)
    values["content_layers"] = tuple(values["content_layers"])
    values["style_layers"] = tuple(values["style_layers"])
    return StyleTrainConfig(**values)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def train(stop):
        from .distributed import launched_by_torchrun

        config = config_from_args(args)
        show = not args.quiet and (not launched_by_torchrun() or int(os.environ.get("RANK", "0")) == 0)
        bar = ProgressBar(config.iterations, enabled=show)
        try:
            return train_style(config, bar, stop, resume=args.resume, overwrite=args.overwrite)
        finally:
            bar.close()

    return run_cli(train, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
