"""Distil a trained style network into a smaller one: the fast variants a CPU runs.

    python -m train.distill --teacher builtin:mosaic --content FOLDER_OR_HF_DATASET --out mosaic-fast \
        [--width 0.5] [--num-residual 5] [--init builtin:stained-glass-fast]

The student, a ``johnson-style`` network of ``--width`` and ``--num-residual``, learns to give the teacher's
output on the content crops (per-pixel mean squared error: knowledge distillation, Hinton et al. 2015, for an
image-to-image network). Training needs no loss network, so a step costs the student's pass and the teacher's
forward only: a fraction of a style-training step. The student is judged by the teacher's own objective
(content and style losses against the Oxford VGG-16) on held-out photos: :mod:`train.shipped.style_eval`.
"""
from __future__ import annotations

import copy
import logging
from typing import Sequence

import torch

from perceptual_studio.losses import PerceptualLoss
from perceptual_studio.losses.perceptual import PerceptualLossConfig
from perceptual_studio.networks import StyleTransformNet
from perceptual_studio.networks.plan import choose_plan, run_network

from . import data as data_mod
from .cli import trainer_main
from .config import DistillTrainConfig
from .driver import TaskReport, TaskSetup, start_model, train
from .loop import ProgressCallback, StopRequest
from .run import load_source_model
from .style import load_preview_input

logger = logging.getLogger(__name__)
TASK = "style-transfer"


def parameter_count(network: torch.nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


class DistillTask:
    """A student network trained to reproduce a teacher style network's outputs."""

    task = TASK

    def setup(self, config: DistillTrainConfig, device: torch.device) -> TaskSetup:
        self.teacher = load_source_model(config.teacher, TASK, "--teacher")
        self.teacher_id = self.teacher.model_id or config.teacher  # a folder path has no registry id
        teacher = copy.deepcopy(self.teacher.network).float().eval().requires_grad_(False).to(device)
        paths, dataset_label = data_mod.list_training_images(config.content, what="content")
        preview = load_preview_input(config.preview_image or paths[0], config.preview_size)
        model, architecture, architecture_args = start_model(
            config, self.task, lambda: StyleTransformNet(config.norm, config.upsample, config.width, config.num_residual))

        plan = choose_plan(teacher, device)  # the fast inference plan: the targets need no gradient

        def prepare(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return batch, run_network(teacher, batch, plan)

        return TaskSetup(
            model=model.to(device), architecture=architecture, architecture_args=architecture_args,
            loss=PerceptualLoss(PerceptualLossConfig.super_resolution("pixel")).to(device),
            dataset=data_mod.ImageFolderDataset(paths, config.image_size, crop="center", seed=config.seed),
            dataset_label=dataset_label, prepare=prepare, preview_input=preview,
            details={"teacher": self.teacher_id, "teacher_parameters": parameter_count(teacher)},
            summary=(f"distilling {self.teacher_id} ({parameter_count(teacher):,} parameters) into "
                     f"{parameter_count(model):,} parameters on {len(paths)} images from {dataset_label}"))

    def report(self, config: DistillTrainConfig, setup: TaskSetup, model, device) -> TaskReport:
        teacher = self.teacher.config
        record = teacher.training
        teacher_id = self.teacher_id
        # The student is judged by the teacher's objective, so its record carries that objective's settings.
        objective = {"content_layers": list(record.content_layers), "style_layers": list(record.style_layers),
                     "content_weight": record.content_weight, "style_weight": record.style_weight,
                     "tv_weight": record.tv_weight, "image_size": config.image_size,
                     **{k: record.extra[k] for k in ("normalize_layers", "style_layer_weights", "style_size")
                        if k in record.extra}}
        lines = [f"Distilled from `{teacher_id}` ({parameter_count(self.teacher.network):,} parameters, "
                 f"trained against `{record.loss_network}`) into a johnson-style network of width {config.width:g} "
                 f"and {config.num_residual} residual blocks ({parameter_count(model):,} parameters): per-pixel "
                 f"error to the teacher's output on {config.image_size} px content crops, no loss network while "
                 "training. Judge it by the teacher's objective on held-out photos (`train/shipped/style_eval.py`).", ""]
        return TaskReport(record={**objective, "variant_of": teacher_id,
                                  "teacher_loss_network": record.loss_network},
                          card_lines=lines, folder_options={"style": teacher.style})

    def plot_title(self, config: DistillTrainConfig) -> str:
        return f"{config.out}: distillation loss (per-pixel, to {config.teacher})"


def train_distilled(config: DistillTrainConfig, progress: ProgressCallback | None = None,
                    should_stop: StopRequest = None, *, resume: bool = False, overwrite: bool = False):
    """Distil ``config.teacher`` into a smaller style network and write its model folder (``train.driver.train``)."""
    return train(config, DistillTask(), progress, should_stop, resume=resume, overwrite=overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    return trainer_main(argv, DistillTrainConfig, "python -m train.distill", __doc__.split("\n\n")[0], train_distilled)


if __name__ == "__main__":
    raise SystemExit(main())
