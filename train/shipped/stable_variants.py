"""The stable variants of the shipped styles: each style's fast variant fine-tuned with the temporal loss
(``losses.temporal``: random smooth motion of the training photos, Wang et al. 2020), which video and the webcam run
so that the brush strokes move with the picture. A gallery manifest's ``[stable]`` table says how
(``python -m train.shipped.gallery`` trains them after the fast variants). Each is judged twice: its warping error
on clips of a camera panning, zooming and turning over the gallery's held-out photos, and on a still, noisy scene
(a webcam on a subject that sits still), must be at most half its fast variant's on every clip; and its style
objective (the paper-size style's) on those photos within 10% of the fast variant's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from perceptual_studio.imaging.io import image_to_tensor, resize_to_max_side
from perceptual_studio.imaging.motion import camera_clips, noisy_still_scene, warping_error
from perceptual_studio.registry import load_model_folder

from ..style import load_style_image
from .fast_variants import EVAL_SIDE
from .style_eval import ObjectiveEvaluation, held_out_objective

STABLE_HEADING = "## The stable variant of a shipped style"
MAX_OBJECTIVE_EXCESS = 0.10  # against the fast variant it starts from
MAX_WARPING_RATIO = 0.50  # its warping error against the fast variant's
CLIP_FRAMES, CLIP_SIDE = 16, 256
STILL_SCENE = "still, noisy scene"  # the clip without a photo: nothing moves but a square, sensor noise everywhere
NETWORK_LABELS = ("fast variant", "stable variant")


@dataclass(frozen=True)
class StableSpec:
    """The manifest's ``[stable]`` table."""

    suffix: str
    temporal_weight: float
    iterations: int
    options: dict[str, Any]  # train.style options (CLI names without the dashes), e.g. lr
    flat_share: float = 0.0  # the temporal loss's share of flat pairs (losses/temporal.py)
    # Crops per corpus photo where a style's stable variant learns on the corpus (its ``stable-content``).
    corpus_crops_per_photo: int = 8
    content: str | None = None  # a style's own: "corpus", or None for its manifest's content
    table_iterations: int | None = None  # the table's own steps, where a style sets other ones

    def name(self, style: str) -> str:
        return f"{style}{self.suffix}"

    def for_style(self, temporal_weight: float | None, flat_share: float | None = None,
                  content: str | None = None, iterations: int | None = None) -> "StableSpec":
        """This table with a style's own temporal weight, flat share, content and steps (a manifest's
        ``stable-temporal-weight``, ``stable-temporal-flat-share``, ``stable-content`` and ``stable-iterations``),
        where it sets them."""
        spec = self if temporal_weight is None else replace(self, temporal_weight=float(temporal_weight))
        spec = spec if flat_share is None else replace(spec, flat_share=float(flat_share))
        if iterations is not None and int(iterations) != self.iterations:
            spec = replace(spec, iterations=int(iterations), table_iterations=self.iterations)
        return replace(spec, content=content)

    def flags(self) -> list[str]:
        """The train.style options of the temporal loss."""
        return ["--temporal-weight", f"{self.temporal_weight:g}",
                *(["--temporal-flat-share", f"{self.flat_share:g}"] if self.flat_share else [])]

    def run_suffix(self) -> str:
        """What tells this table's runs apart from a style's other tries: ``-tw1.5e07``, ``-tw1.5e07-flat0.25``,
        ``-tw1e07-flat0.25-corpus``, ``-tw1e07-flat0.25-corpus-600steps`` (steps other than the table's)."""
        suffix = f"-tw{self.temporal_weight:g}".replace("+", "")
        suffix += (f"-flat{self.flat_share:g}" if self.flat_share else "") + (f"-{self.content}" if self.content else "")
        return suffix + (f"-{self.iterations}steps" if self.table_iterations is not None else "")


def read_stable_spec(raw: dict[str, Any]) -> StableSpec | None:
    if "stable" not in raw:
        return None
    options = dict(raw["stable"])
    return StableSpec(str(options.pop("suffix", "-stable")), float(options.pop("temporal-weight")),
                      int(options.pop("iterations")), options, float(options.pop("temporal-flat-share", 0.0)),
                      int(options.pop("corpus-crops-per-photo", 8)))


@dataclass(frozen=True)
class StableEvaluation:
    """Warping errors per clip (input, fast, stable) and the objectives of both networks."""

    clips: dict[str, tuple[float, float, float]]
    objective: ObjectiveEvaluation

    def warping_ratio(self) -> float:
        """The stable network's mean warping error over the fast one's."""
        return float(np.mean([s for _, _, s in self.clips.values()]) / np.mean([f for _, f, _ in self.clips.values()]))

    def worst_ratio(self) -> float:
        return max(s / f for _, f, s in self.clips.values())

    def excess(self) -> float:
        return self.objective.excess(NETWORK_LABELS[1], NETWORK_LABELS[0])

    def passes(self) -> bool:
        return self.worst_ratio() <= MAX_WARPING_RATIO and self.excess() <= MAX_OBJECTIVE_EXCESS

    def markdown(self) -> str:
        rows = ["| clip | input | fast variant | stable variant |", "|---|---|---|---|"]
        rows += [f"| {name} | {i:.5f} | {f:.5f} | {s:.5f} ({s / f:.0%}) |" for name, (i, f, s) in self.clips.items()]
        return "\n".join(rows)


def known_motion_clips(photos: dict[str, Image.Image], frames: int = CLIP_FRAMES, side: int = CLIP_SIDE,
                       count: int = 2) -> dict[str, tuple[list[torch.Tensor], list[torch.Tensor], list | None]]:
    """A camera panning, zooming and turning over ``count`` of ``photos`` (evenly spaced), then the still, noisy
    scene: (frames, exact flows, occlusion masks; None for the camera clips, whose only occlusion is the frame's
    border, which :func:`warping_error` masks itself)."""
    names = list(photos)
    step = (len(names) - 1) / max(1, count - 1)
    chosen = dict.fromkeys(names[round(i * step)] for i in range(min(count, len(names))))
    stills = {name: image_to_tensor(resize_to_max_side(photos[name], round(side * 1.6))) for name in chosen}
    clips = {name: (clip, flows, None) for name, (clip, flows) in camera_clips(stills, frames, side).items()}
    clips[STILL_SCENE] = noisy_still_scene(frames, side)
    return clips


@torch.no_grad()
def _stylised(network: torch.nn.Module, clip: list[torch.Tensor]) -> list[torch.Tensor]:
    return [network(frame).float().clamp(0, 1) for frame in clip]


def evaluate_stable_variant(stable_folder: Path, fast_folder: Path, teacher_folder: Path, style_image: Path,
                            photos: dict[str, Image.Image], device: str = "cpu", weights=None) -> StableEvaluation:
    """Warping errors (input, fast, stable) on known-motion clips over ``photos``, and the teacher's objective
    for the fast and the stable network on them at :data:`EVAL_SIDE`."""
    from ..run import loss_network_weights

    teacher = load_model_folder(teacher_folder, device)
    fast = load_model_folder(fast_folder, device).network.eval()
    stable = load_model_folder(stable_folder, device).network.eval()
    clips = {}
    for name, (frames, flows, masks) in known_motion_clips(photos).items():
        clips[name] = (warping_error(frames, flows, masks), warping_error(_stylised(fast, frames), flows, masks),
                       warping_error(_stylised(stable, frames), flows, masks))
    record = teacher.config.training
    weights = weights if weights is not None else loss_network_weights(None)
    style = load_style_image(str(style_image), int(record.extra.get("style_size") or record.image_size))
    scaled = [(name, resize_to_max_side(photo, EVAL_SIDE)) for name, photo in photos.items()]
    objective = held_out_objective(dict(zip(NETWORK_LABELS, (fast, stable))), record, style, scaled, weights, device)
    return StableEvaluation(clips, objective)


def stable_card_section(evaluation: StableEvaluation, spec: StableSpec, fast_id: str, teacher_id: str, photos: str,
                        manifest_file: str, trained_on: list[str] | None = None) -> str:
    """The card's account of a judged stable variant; ``trained_on``: markdown lines naming its training photos
    where they are not its style's (a pattern's stable variant that learns on the corpus)."""
    verdict = "meets" if evaluation.passes() else "does NOT meet"
    return "\n".join([
        "", STABLE_HEADING, "",
        f"Video and the webcam run this network instead of `{fast_id}` (the fast variant of `{teacher_id}`): "
        f"`{fast_id}` fine-tuned for {spec.iterations} steps with `{teacher_id}`'s objective plus the temporal "
        f"loss (weight {spec.temporal_weight:g}; `losses/temporal.py`: random smooth motion of the training photos, "
        "Wang et al. 2020" + (f"; plus {spec.flat_share:.0%} as many pairs of photos smoothed flat, with noise in "
                              "both frames, so that flat areas hold still too" if spec.flat_share else "")
        + "), so that what it paints moves with the picture instead of flickering.", "",
        *([*trained_on, ""] if trained_on else []),
        f"Warping error (Lai et al. 2018; lower is steadier) on {CLIP_FRAMES}-frame clips of a camera moving over "
        f"held-out photos and of a still scene with fresh sensor noise in every frame (a square moving over a "
        f"gradient), at {CLIP_SIDE} px, with their exact flow: the stable network's is "
        f"{evaluation.warping_ratio():.0%} of the fast one's on average (at most {evaluation.worst_ratio():.0%} on "
        f"a clip; the gallery's bar: {MAX_WARPING_RATIO:.0%} on every clip).", "",
        evaluation.markdown(), "",
        f"Its objective (`{teacher_id}`'s; loss network `{evaluation.objective.loss_network}`) on held-out photos at "
        f"{EVAL_SIDE} px is {evaluation.excess():+.1%} against the fast variant's (bar: within "
        f"{MAX_OBJECTIVE_EXCESS:.0%}). Together: it {verdict} the gallery's bars.", "",
        evaluation.objective.markdown(), "",
        "Held-out photos:", "", photos, "",
        f"Reproduce: `python -m train.shipped.gallery --manifest train/shipped/{manifest_file}` (resumable; its "
        "table `[stable]`).", "",
    ])
