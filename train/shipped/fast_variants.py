"""The fast variants of the shipped styles: for each gallery style, a smaller network that a CPU runs several
times faster, judged by its paper-size network's own objective on the gallery's held-out photos.

``train/shipped/gallery.toml``'s ``[fast]`` table says how (``python -m train.shipped.gallery`` trains them after the styles),
in two steps per style: the paper-size network is distilled into the small one (:mod:`train.distill`,
per-pixel error to its output: the student of the style trained from scratch starts from scratch, the others
from that student, as the paper-size styles start from stained-glass), then the student trains with the
style's own objective (``train.style --init <student> --variant-of <style>``). Distillation alone washes the
colours out (+102% objective for mosaic); the objective step brings it within a few percent.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from perceptual_studio.imaging.io import resize_to_max_side
from perceptual_studio.networks.vgg import LossNetworkWeights
from perceptual_studio.registry import load_model_folder

from .shipping import option_flags
from ..style import load_style_image
from .style_eval import ObjectiveEvaluation, held_out_objective

FAST_HEADING = "## The fast variant of a shipped style"
# A fast variant ships only if its objective on the held-out photos is at most this much above its teacher's.
MAX_OBJECTIVE_EXCESS = 0.10
# Held-out photos are scored at the app's default output size.
EVAL_SIDE = 512
NETWORK_LABELS = ("paper-size", "fast variant")


@dataclass(frozen=True)
class FastSpec:
    """The manifest's ``[fast]`` table."""

    suffix: str
    scratch_iterations: int  # distillation of the first style's student, from scratch
    finetune_iterations: int  # distillation of the others, from the first style's student
    objective_iterations: int  # then each style's own objective (train.style), from its distilled student
    # train.distill options (CLI names without the dashes): width, num-residual, image-size, lr...
    options: dict[str, Any] = field(default_factory=dict)
    # Where every student starts (a shipped fast variant: "builtin:stained-glass-fast"); None: the first style's
    # student trains from scratch and the others start from it.
    init: str | None = None

    def name(self, style: str) -> str:
        """The shipped fast variant of ``style``."""
        return f"{style}{self.suffix}"

    def student_name(self, style: str) -> str:
        """Its distilled student (a work folder, not shipped)."""
        return f"{self.name(style)}-distilled"


def read_fast_spec(raw: dict[str, Any]) -> FastSpec | None:
    """The ``[fast]`` table of a gallery manifest, or None when it has none."""
    if "fast" not in raw:
        return None
    options = dict(raw["fast"])
    return FastSpec(str(options.pop("suffix", "-fast")), int(options.pop("scratch-iterations")),
                    int(options.pop("finetune-iterations")), int(options.pop("objective-iterations")), options,
                    options.pop("init", None))


def distill_command(style: str, seed: int, *, spec: FastSpec, first_style: str | None, teacher: str, init: str | None,
                    content: Path, preview: Path, out: Path, run_dir: Path, extra: list[str]) -> list[str]:
    """``python -m train.distill`` for the student of ``style``'s fast variant (resumable); ``init``: the first
    style's student."""
    iterations = spec.finetune_iterations if style != first_style else spec.scratch_iterations
    command = [sys.executable, "-m", "perceptual_studio.train.distill", "--teacher", teacher, "--content", str(content),
               "--out", str(out), "--run-dir", str(run_dir), "--iterations", str(iterations), "--seed", str(seed),
               "--preview-image", str(preview), "--resume", "--quiet"]
    if init is not None and style != first_style:
        command += ["--init", init]
    return command + option_flags(spec.options) + extra


def evaluate_fast_variant(fast_folder: Path, teacher_folder: Path, style_image: Path,
                          photos: dict[str, Image.Image], device: str = "cpu",
                          weights: LossNetworkWeights | None = None) -> ObjectiveEvaluation:
    """The teacher's objective for the teacher and its fast variant on ``photos`` (longest side
    :data:`EVAL_SIDE`). ``weights``: the loss network (default: the process's), which must be the teacher's."""
    from ..run import loss_network_weights

    teacher = load_model_folder(teacher_folder, device)
    fast = load_model_folder(fast_folder, device)
    record = teacher.config.training
    weights = weights if weights is not None else loss_network_weights(None)
    if weights.identity != record.loss_network:  # never score one loss network's objective with another
        raise ValueError(f"{teacher_folder.name} was trained against {record.loss_network}, not {weights.identity}: "
                         "its objective cannot be evaluated with that loss network")
    style = load_style_image(str(style_image), int(record.extra.get("style_size") or record.image_size))
    scaled = [(name, resize_to_max_side(photo, EVAL_SIDE)) for name, photo in photos.items()]
    return held_out_objective(dict(zip(NETWORK_LABELS, (teacher.network, fast.network))), record, style, scaled,
                              weights, device)


def fast_card_section(evaluation: ObjectiveEvaluation, spec: FastSpec, teacher_id: str, photos: str,
                      objective_iterations: int, manifest_file: str = "gallery.toml") -> str:
    """What a shipped fast variant's card adds: how it was made and its objective against its teacher's."""
    excess = evaluation.excess(NETWORK_LABELS[1], NETWORK_LABELS[0])
    verdict = "within" if excess <= MAX_OBJECTIVE_EXCESS else "NOT within"
    options = ", ".join(f"`--{k} {v}`" for k, v in spec.options.items())
    return "\n".join([
        "", FAST_HEADING, "",
        f"The app runs this network instead of `{teacher_id}` on a CPU (the Network choice of the Stylize tab, "
        f"`--network` of `python -m webapp.cli stylize`). Made in two steps: distilled from `{teacher_id}` "
        f"(`python -m train.distill`: per-pixel error to its output; " + (
            f"{spec.finetune_iterations} steps from `{spec.init}`" if spec.init else
            f"{spec.scratch_iterations} steps for the gallery's first style, {spec.finetune_iterations} from that "
            "style's student for the others") + f"; {options}), "
        f"then trained for {objective_iterations} steps with `{teacher_id}`'s own objective (the run above).",
        "",
        f"Its objective (the teacher's: loss network `{evaluation.loss_network}`) on held-out photos at "
        f"{EVAL_SIDE} px is {excess:+.1%} against the paper-size network's: {verdict} the "
        f"{MAX_OBJECTIVE_EXCESS:.0%} the gallery allows.", "",
        evaluation.markdown(), "",
        "Held-out photos:", "", photos, "",
        f"Reproduce: `python -m train.shipped.gallery --manifest train/shipped/{manifest_file}` (resumable; its "
        "table `[fast]`).", "",
    ])
