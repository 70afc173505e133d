"""The loss network: VGG-16 with named feature taps (Johnson et al. 2016, Sec. 3; Simonyan & Zisserman 2015).

Truncated after the deepest requested tap, frozen, in eval mode, with ImageNet normalisation built in as
buffers (pytorch/examples ``fast_neural_style/vgg.py``, BasicSR ``VGGFeatureExtractor``). Its layers keep
torchvision's ``features.N`` indices so every weight source below loads with strict key matching.

Weight sources, tried in order, and reported (``LossNetworkWeights.source``):
1. an explicit local safetensors file (argument or ``PERCEPTUAL_VGG16_WEIGHTS``);
2. the Hugging Face Hub, ``timm/vgg16.tv_in1k``, through the normal HF cache (works offline once cached);
3. torchvision's own cache (``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``), never downloaded here;
4. a seeded random-weight VGG-16, which random-feature work (He et al. 2016, Ustyuzhaninov et al. 2017)
   shows is a usable loss network when each layer's loss is normalised by its own scale. It is announced
   loudly and its identity, ``vgg16:random(seed=N)``, travels with every result and model card.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

HUB_REPO_ID = "timm/vgg16.tv_in1k"
HUB_FILENAME = "model.safetensors"
TORCHVISION_FILENAME = "vgg16-397923af.pth"
PRETRAINED_IDENTITY = "vgg16:imagenet"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# A bounded wait for the Hub: an unreachable network must cost seconds, not a hang.
HUB_TIMEOUT_S = 3.0

# torchvision's vgg16 "D" configuration; "M" is a 2x2 max-pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_BLOCK_LAYER_COUNTS = (2, 2, 3, 3, 3)


def _layer_names() -> list[str]:
    """Names for torchvision's ``features`` indices: conv1_1, relu1_1, ..., pool5."""
    names: list[str] = []
    for block, count in enumerate(_BLOCK_LAYER_COUNTS, start=1):
        for i in range(1, count + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())
TAP_NAMES: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("relu"))
STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYERS: tuple[str, ...] = ("relu2_2",)


def _build_features(depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            # Not in-place: taps are returned to callers, and in-place ReLUs would overwrite them.
            layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = item
    return nn.Sequential(*layers[:depth])


@dataclass(frozen=True)
class LossNetworkWeights:
    """Resolved VGG-16 ``features`` weights and where they came from."""

    state_dict: dict[str, torch.Tensor] = field(repr=False)
    identity: str  # e.g. "vgg16:imagenet" or "vgg16:random(seed=0)"; recorded in results and model cards
    source: str  # human-readable: "hub:timm/vgg16.tv_in1k", "file:/path", "torchvision-cache:/path", "random"
    tried: tuple[str, ...] = ()  # what was tried before this source, and why it failed

    @property
    def is_pretrained(self) -> bool:
        return not self.identity.startswith("vgg16:random")

    @property
    def warning(self) -> str | None:
        if self.is_pretrained:
            return None
        return (
            f"No pretrained VGG-16 could be loaded, so the loss network is a seeded RANDOM-weight VGG-16 "
            f"({self.identity}). Losses and results use random features (He et al. 2016), not ImageNet ones. "
            f"Put the weights in the HF cache ({HUB_REPO_ID}) or set PERCEPTUAL_VGG16_WEIGHTS to a safetensors file."
        )


def _features_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep ``features.N.*`` tensors (timm and torchvision share them; their heads differ)."""
    feats = {k: v for k, v in state.items() if k.startswith("features.")}
    if not feats:  # a file saved from a bare ``features`` Sequential
        feats = {f"features.{k}": v for k, v in state.items() if k.split(".")[0].isdigit()}
    expected = {f"features.{i}.{p}" for i, n in enumerate(LAYER_NAMES) if n.startswith("conv") for p in ("weight", "bias")}
    missing = expected - feats.keys()
    if missing:
        raise ValueError(f"not a VGG-16 checkpoint: missing {len(missing)} tensors, e.g. {sorted(missing)[0]}")
    reference = _build_features(len(LAYER_NAMES)).state_dict()
    for key in expected:
        if tuple(feats[key].shape) != tuple(reference[key[len('features.'):]].shape):
            raise ValueError(f"not a VGG-16 checkpoint: {key} has shape {tuple(feats[key].shape)}")
    return {k: feats[k].float() for k in sorted(expected)}


def _from_safetensors_file(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys() if k.startswith("features.") or k.split(".")[0].isdigit()}
    # A file we wrote ourselves says what it is; for any other file we cannot know, so we say so instead
    # of calling it ImageNet weights.
    identity = metadata.get("identity")
    if not identity:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        identity = f"vgg16:file(sha256={digest})"
    return _features_only(state), identity


def _from_hub(offline: bool) -> tuple[dict[str, torch.Tensor], str]:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(
        HUB_REPO_ID, HUB_FILENAME, local_files_only=offline, etag_timeout=HUB_TIMEOUT_S
    )
    state, _ = _from_safetensors_file(Path(path))
    return state, PRETRAINED_IDENTITY


def _torchvision_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILENAME


def _from_torchvision_cache() -> tuple[dict[str, torch.Tensor], str]:
    path = _torchvision_cache_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return _features_only(state), PRETRAINED_IDENTITY


def random_vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's VGG initialisation (Kaiming normal, fan_out, zero bias) from a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    features = _build_features(len(LAYER_NAMES))
    state = {}
    for index, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            out_ch, _, kh, kw = layer.weight.shape
            std = (2.0 / (out_ch * kh * kw)) ** 0.5
            state[f"features.{index}.weight"] = torch.randn(layer.weight.shape, generator=generator) * std
            state[f"features.{index}.bias"] = torch.zeros(out_ch)
    return state


def resolve_vgg16_weights(
    weights_file: str | os.PathLike | None = None,
    *,
    use_hub: bool = True,
    use_torchvision_cache: bool = True,
    random_seed: int = 0,
    allow_random: bool = True,
) -> LossNetworkWeights:
    """Find VGG-16 weights, trying each source in order (module docstring); never hangs on the network.

    ``PERCEPTUAL_LOSS_NETWORK=random`` skips straight to the random fallback (for tests and benchmarks).
    """
    weights_file = weights_file or os.environ.get("PERCEPTUAL_VGG16_WEIGHTS") or None
    tried: list[str] = []
    if os.environ.get("PERCEPTUAL_LOSS_NETWORK", "").lower() == "random":
        tried.append("PERCEPTUAL_LOSS_NETWORK=random asked for the random fallback")
    else:
        if weights_file:
            path = Path(weights_file).expanduser()
            try:
                state, identity = _from_safetensors_file(path)
                return LossNetworkWeights(state, identity, f"file:{path}", tuple(tried))
            except Exception as exc:  # noqa: BLE001 - any failure means "try the next source"
                tried.append(f"file {path}: {exc}")
        if use_hub:
            # Cache first (instant), then the network only if a quick retry-free probe gets an answer.
            from registry.hub_probe import probe_hub

            for offline in (True, False):
                if not offline:
                    reachable, reason = probe_hub(timeout=HUB_TIMEOUT_S)
                    if not reachable:
                        tried.append(f"Hub: {reason}")
                        break
                try:
                    state, identity = _from_hub(offline)
                    where = "hub-cache" if offline else "hub"
                    return LossNetworkWeights(state, identity, f"{where}:{HUB_REPO_ID}", tuple(tried))
                except Exception as exc:  # noqa: BLE001
                    tried.append(f"{'HF cache' if offline else 'Hub'} {HUB_REPO_ID}: {type(exc).__name__}: {exc}".splitlines()[0])
        if use_torchvision_cache:
            try:
                state, identity = _from_torchvision_cache()
                return LossNetworkWeights(state, identity, f"torchvision-cache:{_torchvision_cache_path()}", tuple(tried))
            except Exception as exc:  # noqa: BLE001
                tried.append(f"torchvision cache: {exc}")
    if not allow_random:
        raise RuntimeError("no pretrained VGG-16 weights could be loaded:\n- " + "\n- ".join(tried))
    weights = LossNetworkWeights(
        random_vgg16_state(random_seed), f"vgg16:random(seed={random_seed})", "random", tuple(tried)
    )
    logger.warning("%s\nTried:\n- %s", "!" * 20 + " " + weights.warning, "\n- ".join(tried))
    return weights


_DEFAULT_WEIGHTS: LossNetworkWeights | None = None
_DEFAULT_LOCK = threading.Lock()


def default_vgg16_weights() -> LossNetworkWeights:
    """The process-wide weights, resolved once (the app, training and benchmarks share them)."""
    global _DEFAULT_WEIGHTS
    with _DEFAULT_LOCK:
        if _DEFAULT_WEIGHTS is None:
            _DEFAULT_WEIGHTS = resolve_vgg16_weights()
            logger.info("loss network: %s from %s", _DEFAULT_WEIGHTS.identity, _DEFAULT_WEIGHTS.source)
        return _DEFAULT_WEIGHTS


class LossNetwork(nn.Module):
    """Frozen VGG-16 returning ``{tap_name: activation}`` for the requested taps.

    Inputs are images in [0, 1]; ImageNet normalisation happens inside.
    """

    def __init__(self, layers: tuple[str, ...] | list[str] = STYLE_LAYERS, weights: LossNetworkWeights | None = None):
        super().__init__()
        layers = tuple(dict.fromkeys(layers))
        if not layers:
            raise ValueError("at least one layer must be requested")
        unknown = [name for name in layers if name not in LAYER_NAMES]
        if unknown:
            raise ValueError(f"unknown VGG-16 layer(s) {unknown}; available: {', '.join(TAP_NAMES)}")
        weights = weights if weights is not None else default_vgg16_weights()
        self.layers = layers
        self.identity = weights.identity
        self.weights_source = weights.source
        self.is_pretrained = weights.is_pretrained
        self._index_to_name = {LAYER_NAMES.index(name): name for name in layers}
        depth = max(self._index_to_name) + 1
        self.features = _build_features(depth)
        own = self.features.state_dict()
        self.features.load_state_dict({k: weights.state_dict[f"features.{k}"] for k in own}, strict=True)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LossNetwork":
        # Always in eval mode: it is a fixed loss definition, not a trainable part.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        taps: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in self._index_to_name:
                taps[self._index_to_name[index]] = h
        return taps
