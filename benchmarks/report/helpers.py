"""What several report sections share: saved test photos, the loss network's description, quiet logging."""
from __future__ import annotations

import logging
from pathlib import Path

from benchmarks.common import skimage_photo


def save_photos(folder: Path, names: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        skimage_photo(name).save(folder / f"{name}.png")
    return folder


def loss_network_info() -> dict:
    from perceptual_studio.networks.vgg import default_vgg16_weights

    weights = default_vgg16_weights()
    kind = f"ImageNet-pretrained VGG-16: {weights.description}" if weights.is_pretrained else (
        "random-weight VGG-16 fallback, NOT ImageNet-pretrained: no pretrained weights were available; see He et al. 2016")
    return {"identity": weights.identity, "source": weights.source, "pretrained": weights.is_pretrained, "kind": kind}


def fmt_s(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


class Quiet:
    """Silences the training loop's INFO chatter and repeated random-loss-network warnings while a section runs."""

    def __enter__(self) -> None:
        self.level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().setLevel(self.level)

