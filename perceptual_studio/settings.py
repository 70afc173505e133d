"""Configuration: every environment variable the project reads, parsed here and only here.

Each variable has one function below, read at call time (never cached at import: a deployment, or a test's
``monkeypatch.setenv``, changes it without re-importing anything). Values are parsed by one small set of
private parsers with one behaviour for a value they cannot use: a warning naming the variable and the value,
then the default (the same value as if the variable were unset). An empty or blank value counts as unset.
``tests/test_settings.py`` checks that no module outside this file reads the environment.

| variable | meaning | default |
|---|---|---|
| PERCEPTUAL_DATA_DIR | the project's data directory (models, runs, caches) | ``/data/perceptual-studio`` on a Space with persistent storage, else ``data/`` in a source checkout, else ``~/.cache/perceptual-studio`` |
| PERCEPTUAL_MODELS_DIR | the local models folder the registry lists | ``<data>/models`` |
| PERCEPTUAL_CACHE_DIR | converted files (the Oxford VGG-16 as safetensors) | ``<data>/cache`` |
| PERCEPTUAL_BUILTIN_MODELS_DIR | the shipped, read-only models (the ``builtin`` source) | the package's ``registry/builtin`` |
| PERCEPTUAL_HUB_TAG | the tag that marks this project's models on the Hub | ``perceptual-studio`` |
| PERCEPTUAL_HUB_AUTHORS | comma-separated Hub authors whose tagged models are listed | (any author) |
| PERCEPTUAL_HUB_MODELS | comma-separated extra Hub repo ids to list | (none) |
| PERCEPTUAL_DEVICE | ``cuda``, ``cpu``, ``cuda:1``... | ``cuda`` when available, else ``cpu`` |
| PERCEPTUAL_VGG16_WEIGHTS | a local safetensors file with VGG-16 weights | (none) |
| PERCEPTUAL_LOSS_NETWORK | which VGG-16 weights to prefer: ``auto``/``caffe`` (the paper's Oxford weights first; ``oxford`` is accepted for ``caffe``), ``torchvision``, or ``random`` (force the fallback) | ``auto`` |
| PERCEPTUAL_MAX_PIXELS | the largest input image accepted, in pixels | 40 000 000 |
| PERCEPTUAL_MAX_OUTPUT_PIXELS | the largest result the app computes (stylize, super-resolution) | 4096 x 4096 |
| PERCEPTUAL_MAX_SIDE | top of the app's output-size slider | 2048 |
| PERCEPTUAL_STYLE_TILE | style-network inputs longer than this run tile by tile | 1024 |
| PERCEPTUAL_MAX_MODEL_MB | the largest ``model.safetensors`` the registry reads, in MiB | 512 |
| PERCEPTUAL_MODEL_CACHE_MB | loaded models kept in memory, in MiB of their tensors (least recently used dropped first) | 256 |
| PERCEPTUAL_TRAIN_CONTENT | training content for the app: a folder or a Hub dataset id | bundled samples |
| PERCEPTUAL_CONCURRENCY | stylize / super-resolution requests run at once | 2 |
| PERCEPTUAL_QUEUE_SIZE | requests waiting before new ones are refused | 64 |
| PERCEPTUAL_MAX_UPLOAD | the app's upload size cap (``50mb``, ``1gb``, or a number of bytes) | 50mb |
| PERCEPTUAL_LOG_LEVEL | the app's log level (``DEBUG``, ``INFO``, ``WARNING``...) | ``INFO`` |
| PERCEPTUAL_MCP_SERVER | serve the app's API as an MCP server too (needs ``pip install "gradio[mcp]"``) | off |
| PERCEPTUAL_TORCH_COMPILE | on a CPU, also time ``torch.compile`` when choosing a style network's runtime (it costs tens of seconds of compiling per model) | off |
| GRADIO_SERVER_NAME | the address the app listens on (``0.0.0.0``: the network; a Space sets it) | ``127.0.0.1`` |

Read here as well, set by others (Hugging Face Spaces, huggingface_hub, torchrun, glibc):

| variable | meaning |
|---|---|
| SPACE_ID | set by Hugging Face Spaces: publishing then needs the visitor's own sign-in or typed token, and Hub reads are anonymous unless the visitor signed in (the owner's ``HF_TOKEN`` is never used for a visitor) |
| OAUTH_CLIENT_ID | set on a Space with ``hf_oauth: true``: the "Sign in with Hugging Face" button is offered |
| HF_TOKEN | off a Space: the token to publish with when none is given |
| HF_ENDPOINT, HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE | huggingface_hub's own settings, honoured at call time by the registry |
| RANK, WORLD_SIZE, LOCAL_RANK | set by ``torchrun`` for multi-process training |
| MALLOC_ARENA_MAX | when set, the app leaves glibc's malloc arenas as the operator chose |
| XDG_CACHE_HOME | the user's cache folder, where an installed copy keeps its data (default ``~/.cache``) |

Variables of third-party libraries that the project only *sets* (``HF_HUB_DISABLE_TELEMETRY``) are set where
they are needed, not here.
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
# A source checkout (the project's top level: pyproject.toml, registry/, networks/ ...), or None when installed.
CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None
SPACE_STORAGE = Path("/data")  # a Space's persistent storage, when the Space has it

# ------------------------------------------------------------------------------------------ variable names

DATA_DIR_ENV = "PERCEPTUAL_DATA_DIR"
MODELS_DIR_ENV = "PERCEPTUAL_MODELS_DIR"
CACHE_DIR_ENV = "PERCEPTUAL_CACHE_DIR"
BUILTIN_MODELS_DIR_ENV = "PERCEPTUAL_BUILTIN_MODELS_DIR"
HUB_TAG_ENV = "PERCEPTUAL_HUB_TAG"
HUB_AUTHORS_ENV = "PERCEPTUAL_HUB_AUTHORS"
HUB_MODELS_ENV = "PERCEPTUAL_HUB_MODELS"
DEVICE_ENV = "PERCEPTUAL_DEVICE"
VGG16_WEIGHTS_ENV = "PERCEPTUAL_VGG16_WEIGHTS"
LOSS_NETWORK_ENV = "PERCEPTUAL_LOSS_NETWORK"
MAX_PIXELS_ENV_VAR = "PERCEPTUAL_MAX_PIXELS"
MAX_OUTPUT_PIXELS_ENV = "PERCEPTUAL_MAX_OUTPUT_PIXELS"
MAX_SIDE_ENV = "PERCEPTUAL_MAX_SIDE"
STYLE_TILE_ENV = "PERCEPTUAL_STYLE_TILE"
MAX_MODEL_MB_ENV = "PERCEPTUAL_MAX_MODEL_MB"
MODEL_CACHE_MB_ENV = "PERCEPTUAL_MODEL_CACHE_MB"
TRAIN_CONTENT_ENV = "PERCEPTUAL_TRAIN_CONTENT"
CONCURRENCY_ENV = "PERCEPTUAL_CONCURRENCY"
QUEUE_SIZE_ENV = "PERCEPTUAL_QUEUE_SIZE"
MAX_UPLOAD_ENV = "PERCEPTUAL_MAX_UPLOAD"
LOG_LEVEL_ENV = "PERCEPTUAL_LOG_LEVEL"
TORCH_COMPILE_ENV = "PERCEPTUAL_TORCH_COMPILE"
MCP_SERVER_ENV = "PERCEPTUAL_MCP_SERVER"
SERVER_NAME_ENV = "GRADIO_SERVER_NAME"
# Set by others.
SPACE_ID_ENV = "SPACE_ID"
OAUTH_CLIENT_ID_ENV = "OAUTH_CLIENT_ID"
HF_TOKEN_ENV = "HF_TOKEN"
HF_ENDPOINT_ENV = "HF_ENDPOINT"
HF_HUB_CACHE_ENV = "HF_HUB_CACHE"
HF_HOME_ENV = "HF_HOME"
HF_HUB_OFFLINE_ENV = "HF_HUB_OFFLINE"
RANK_ENV = "RANK"
WORLD_SIZE_ENV = "WORLD_SIZE"
LOCAL_RANK_ENV = "LOCAL_RANK"
MALLOC_ARENA_MAX_ENV = "MALLOC_ARENA_MAX"

# ------------------------------------------------------------------------------------------ defaults

HUB_TAG_DEFAULT = "perceptual-studio"
LOSS_NETWORK_CHOICES = ("auto", "caffe", "torchvision", "random")
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_OUTPUT_PIXELS = 4096 * 4096
DEFAULT_MAX_SIDE = 2048
DEFAULT_STYLE_TILE = 1024
DEFAULT_MAX_MODEL_MB = 512
DEFAULT_MODEL_CACHE_MB = 256  # about 38 paper-size style networks in float32
DEFAULT_CONCURRENCY = 2
DEFAULT_QUEUE_SIZE = 64
DEFAULT_MAX_UPLOAD = "50mb"
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_SERVER_NAME = "127.0.0.1"

# ------------------------------------------------------------------------------------------ parsers

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?b)?$", re.IGNORECASE)
_warned: set[tuple[str, str]] = set()


def _raw(name: str) -> str | None:
    """The variable's value, stripped; ``None`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def _bad(name: str, raw: str, why: str, default: object) -> None:
    """The one behaviour for an unusable value: a warning (once per variable and value), then the default."""
    if (name, raw) not in _warned:
        _warned.add((name, raw))
        logger.warning("%s=%r %s; using the default %r", name, raw, why, default)


def _str(name: str, default: str | None = None) -> str | None:
    raw = _raw(name)
    return default if raw is None else raw


def _path(name: str, default: Path | None = None) -> Path | None:
    raw = _raw(name)
    if raw is not None:
        return Path(raw).expanduser()
    return default.expanduser() if default is not None else None


def _csv(name: str) -> list[str]:
    return [item.strip() for item in (_raw(name) or "").split(",") if item.strip()]


def _int(name: str, default: int, minimum: int | None = None) -> int:
    """A whole number (``4e7`` is accepted for 40 000 000); below ``minimum`` or not whole: the default."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            _bad(name, raw, "is not a whole number", default)
            return default
        value = int(number)
    if minimum is not None and value < minimum:
        _bad(name, raw, f"is below the minimum {minimum}", default)
        return default
    return value


def _float(name: str, default: float, minimum: float | None = None, *, positive: bool = False) -> float:
    """A finite number; below ``minimum`` (or not above 0 when ``positive``): the default."""
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        _bad(name, raw, "is not a number", default)
        return default
    if positive and value <= 0:
        _bad(name, raw, "is not above 0", default)
        return default
    if minimum is not None and value < minimum:
        _bad(name, raw, f"is below the minimum {minimum}", default)
        return default
    return value


def _bool(name: str, default: bool = False) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, any case."""
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    _bad(name, raw, "is not one of 1/true/yes/on or 0/false/no/off", default)
    return default


def _choice(name: str, default: str, choices: tuple[str, ...], aliases: dict[str, str] | None = None) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    value = (aliases or {}).get(raw.lower(), raw.lower())
    if value not in choices:
        _bad(name, raw, f"is not one of {', '.join(choices)}", default)
        return default
    return value


def _size(name: str, default: str) -> int:
    """A size in bytes: ``50mb``, ``1.5 GB``, ``512kb`` or a plain number of bytes (units are powers of 1024)."""
    parsed = _parse_size(default)
    assert parsed is not None, default
    raw = _raw(name)
    if raw is None:
        return parsed
    value = _parse_size(raw)
    if value is None or value <= 0:
        _bad(name, raw, "is not a size such as 50mb or 1gb", default)
        return parsed
    return value


def _parse_size(text: str) -> int | None:
    match = _SIZE.match(text.strip())
    if not match:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])


# ------------------------------------------------------------------------------------------ folders


def data_dir() -> Path:
    """Models, runs and caches: a Space's persistent storage, a checkout's ``data/``, else the user's cache."""
    return _path(DATA_DIR_ENV, _default_data_dir())


def _default_data_dir() -> Path:
    if space_id() and SPACE_STORAGE.is_dir() and os.access(SPACE_STORAGE, os.W_OK):
        return SPACE_STORAGE / "perceptual-studio"
    if CHECKOUT is not None:
        return CHECKOUT / "data"
    cache_home = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache_home) if cache_home else Path.home() / ".cache") / "perceptual-studio"


def models_dir() -> Path:
    return _path(MODELS_DIR_ENV, data_dir() / "models")


def runs_dir() -> Path:
    return data_dir() / "runs"


def builtin_models_dir() -> Path:
    """The shipped, read-only models (``registry/builtin``: ``styles/<name>``, ``sr/<name>``)."""
    return _path(BUILTIN_MODELS_DIR_ENV, _subpackage_dir("registry") / "builtin")


def _subpackage_dir(name: str) -> Path:
    """Where ``perceptual_studio.<name>`` lives: inside the installed package, or beside it in a checkout."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() or CHECKOUT is None else CHECKOUT / name


def cache_dir() -> Path:
    return _path(CACHE_DIR_ENV, data_dir() / "cache")


# ------------------------------------------------------------------------------------------ the Hub


def hub_tag() -> str:
    return _str(HUB_TAG_ENV, HUB_TAG_DEFAULT)


def hub_authors() -> list[str]:
    return _csv(HUB_AUTHORS_ENV)


def hub_extra_models() -> list[str]:
    return _csv(HUB_MODELS_ENV)


def hf_token() -> str | None:
    """``HF_TOKEN`` (never used for a Space's visitors: see ``registry/hub.py``)."""
    return _str(HF_TOKEN_ENV)


def hf_endpoint() -> str | None:
    """``HF_ENDPOINT`` as set (``None``: huggingface_hub's default endpoint)."""
    return _str(HF_ENDPOINT_ENV)


def hf_hub_cache() -> str | None:
    """``HF_HUB_CACHE`` as set (``None``: huggingface_hub's default cache folder)."""
    return _str(HF_HUB_CACHE_ENV)


def hf_hub_offline() -> bool:
    return _bool(HF_HUB_OFFLINE_ENV, False)


def hub_environment() -> tuple[str | None, ...]:
    """The raw huggingface_hub settings a model listing depends on (a cache key, not parsed)."""
    return tuple(os.environ.get(name) for name in (HF_HUB_CACHE_ENV, HF_HOME_ENV, HF_HUB_OFFLINE_ENV, HF_ENDPOINT_ENV))


def space_id() -> str | None:
    return _str(SPACE_ID_ENV)


def running_on_space() -> bool:
    """True on a Hugging Face Space (``SPACE_ID`` is set there), where visitors must never act as the owner."""
    return space_id() is not None


def oauth_client_id() -> str | None:
    """Set on a Space whose front matter enables Hugging Face OAuth (``hf_oauth: true``)."""
    return _str(OAUTH_CLIENT_ID_ENV)


# ------------------------------------------------------------------------------------------ compute


def device() -> torch.device:
    fallback = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    raw = _raw(DEVICE_ENV)
    if raw is None:
        return fallback
    try:
        return torch.device(raw)
    except (RuntimeError, ValueError):
        _bad(DEVICE_ENV, raw, "is not a torch device", str(fallback))
        return fallback


def loss_network_choice() -> str:
    """``PERCEPTUAL_LOSS_NETWORK``, one of :data:`LOSS_NETWORK_CHOICES`; ``oxford`` is accepted for ``caffe``."""
    return _choice(LOSS_NETWORK_ENV, "auto", LOSS_NETWORK_CHOICES, {"oxford": "caffe"})


def vgg16_weights_file() -> Path | None:
    return _path(VGG16_WEIGHTS_ENV)


def torchrun_rank() -> int:
    """``RANK`` (set by torchrun; 0 in a single process)."""
    return _int(RANK_ENV, 0, minimum=0)


def torchrun_world_size() -> int:
    """``WORLD_SIZE`` (set by torchrun; 1 in a single process)."""
    return _int(WORLD_SIZE_ENV, 1, minimum=1)


def torchrun_local_rank() -> int:
    return _int(LOCAL_RANK_ENV, 0, minimum=0)


# ------------------------------------------------------------------------------------------ limits


def max_pixels() -> int:
    """The largest input image accepted, in pixels."""
    return _int(MAX_PIXELS_ENV_VAR, DEFAULT_MAX_PIXELS, minimum=1)


def max_output_pixels() -> int:
    """The largest result the app computes, in pixels."""
    return _int(MAX_OUTPUT_PIXELS_ENV, DEFAULT_MAX_OUTPUT_PIXELS, minimum=1)


def max_side() -> int:
    """The largest output side the app's size sliders offer."""
    return _int(MAX_SIDE_ENV, DEFAULT_MAX_SIDE, minimum=1)


def style_tile() -> int:
    """Style-network inputs longer than this (px) run tile by tile."""
    return _int(STYLE_TILE_ENV, DEFAULT_STYLE_TILE, minimum=1)


def max_model_mb() -> float:
    """The largest ``model.safetensors`` the registry reads, in MiB (fractions allowed)."""
    return _float(MAX_MODEL_MB_ENV, float(DEFAULT_MAX_MODEL_MB), positive=True)


def model_cache_bytes() -> int:
    """How many bytes of loaded models' tensors stay in memory; the least recently used go first."""
    return int(_float(MODEL_CACHE_MB_ENV, float(DEFAULT_MODEL_CACHE_MB), positive=True) * 2**20)


def max_upload_bytes() -> int:
    """The app's upload size cap, in bytes (what Gradio's ``max_file_size`` takes)."""
    return _size(MAX_UPLOAD_ENV, DEFAULT_MAX_UPLOAD)


# ------------------------------------------------------------------------------------------ the app


def train_content() -> str | None:
    """The app's training content (a folder or a Hub dataset id); ``None``: the bundled samples."""
    return _str(TRAIN_CONTENT_ENV)


def concurrency() -> int:
    """Stylize / super-resolution requests run at once."""
    return _int(CONCURRENCY_ENV, DEFAULT_CONCURRENCY, minimum=1)


def queue_size() -> int:
    """Requests waiting in the queue before new ones are refused."""
    return _int(QUEUE_SIZE_ENV, DEFAULT_QUEUE_SIZE, minimum=1)


def log_level() -> str:
    """A ``logging`` level name."""
    raw = _raw(LOG_LEVEL_ENV)
    if raw is None:
        return DEFAULT_LOG_LEVEL
    if raw.upper() not in logging.getLevelNamesMapping():
        _bad(LOG_LEVEL_ENV, raw, "is not a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL)", DEFAULT_LOG_LEVEL)
        return DEFAULT_LOG_LEVEL
    return raw.upper()


def torch_compile_runtime() -> bool:
    """Let :mod:`networks.runtimes` time ``torch.compile`` beside the torch plan and ONNX Runtime on a CPU. Off by
    default: measured here it ran the fast variant 10-15% quicker at 512-1024 px, but compiling cost about 10 s
    per model and a further 27 s at the first image of a second shape, CPU a shared Space's visitors would feel."""
    return _bool(TORCH_COMPILE_ENV, False)


def mcp_server() -> bool:
    """Also serve the app's API as an MCP server (Gradio's ``launch(mcp_server=True)``; needs ``gradio[mcp]``)."""
    return _bool(MCP_SERVER_ENV, False)


def server_name() -> str:
    """The address the app listens on."""
    return _str(SERVER_NAME_ENV, DEFAULT_SERVER_NAME)


def malloc_arena_max() -> str | None:
    """``MALLOC_ARENA_MAX`` as set (glibc read it at start-up; the app then leaves the arenas alone)."""
    return _str(MALLOC_ARENA_MAX_ENV)
