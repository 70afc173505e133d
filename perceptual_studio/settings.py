"""Configuration: every environment variable the project reads, declared and parsed here and only here.

Each variable is declared once below (:func:`_declare`: its name, its parser, its default and one line of
help) and read at call time through one function (never cached at import: a deployment, or a test's
``monkeypatch.setenv``, changes it without re-importing anything). Values are parsed by one small set of
private parsers with one behaviour for a value they cannot use: a warning naming the variable and the value,
then the default (the same value as if the variable were unset). An empty or blank value counts as unset.
``tests/test_settings.py`` checks that no module outside this file reads the environment.

``python -m perceptual_studio.settings`` prints the table of every variable (docs/app.md holds it, checked by
the tests). Variables of third-party libraries that the project only *sets* (``HF_HUB_DISABLE_TELEMETRY``) are
set where they are needed, not here.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
# A source checkout (the project's top level: pyproject.toml, registry/, networks/ ...), or None when installed.
CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None
SPACE_STORAGE = Path("/data")  # a Space's persistent storage, when the Space has it

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


# ------------------------------------------------------------------------------------------ the declarations


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, how its value is read, its default and one line of help."""

    name: str
    read: Callable[[str, Any], Any]  # (name, default) -> the value; an unusable value warns and gives the default
    default: Any  # the value when unset, or a function of no arguments that computes it at call time
    help: str
    shown: str | None = None  # the default as the table writes it, when the value itself would not say it
    set_by: str | None = None  # who sets it, for a variable the project reads but does not own

    def get(self) -> Any:
        return self.read(self.name, self.default() if callable(self.default) else self.default)

    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, int):
            return f"{self.default:,}".replace(",", " ") if self.default >= 10_000 else str(self.default)
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return f"``{self.default}``"


SETTINGS: dict[str, Setting] = {}


def _declare(name: str, read: Callable[[str, Any], Any], default: Any, help: str, *, shown: str | None = None,
             set_by: str | None = None) -> Setting:
    setting = Setting(name, read, default, help, shown, set_by)
    SETTINGS[name] = setting
    return setting


def _csv_list(name: str, default: Any) -> list[str]:
    return _csv(name)


def _device(name: str, fallback: torch.device) -> torch.device:
    raw = _raw(name)
    if raw is None:
        return fallback
    try:
        return torch.device(raw)
    except (RuntimeError, ValueError):
        _bad(name, raw, "is not a torch device", str(fallback))
        return fallback


def _log_level(name: str, default: str) -> str:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.upper() not in logging.getLevelNamesMapping():
        _bad(name, raw, "is not a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL)", default)
        return default
    return raw.upper()


def _at_least(minimum: int) -> Callable[[str, int], int]:
    return functools.partial(_int, minimum=minimum)


_positive = functools.partial(_float, positive=True)
LOSS_NETWORK_CHOICES = ("auto", "caffe", "torchvision", "random")

DATA_DIR = _declare("PERCEPTUAL_DATA_DIR", _path, lambda: _default_data_dir(),
                    "the project's data directory (models, runs, caches)",
                    shown="``/data/perceptual-studio`` on a Space with persistent storage, else ``data/`` in a "
                          "source checkout, else ``~/.cache/perceptual-studio``")
MODELS_DIR = _declare("PERCEPTUAL_MODELS_DIR", _path, lambda: data_dir() / "models",
                      "the local models folder the registry lists", shown="``<data>/models``")
CACHE_DIR = _declare("PERCEPTUAL_CACHE_DIR", _path, lambda: data_dir() / "cache",
                     "converted files (the Oxford VGG-16 as safetensors)", shown="``<data>/cache``")
BUILTIN_MODELS_DIR = _declare("PERCEPTUAL_BUILTIN_MODELS_DIR", _path, lambda: _subpackage_dir("registry") / "builtin",
                              "the shipped, read-only models (the ``builtin`` source)",
                              shown="the package's ``registry/builtin``")
HUB_TAG = _declare("PERCEPTUAL_HUB_TAG", _str, "perceptual-studio", "the tag that marks this project's models on the Hub")
HUB_AUTHORS = _declare("PERCEPTUAL_HUB_AUTHORS", _csv_list, None,
                       "comma-separated Hub authors whose tagged models are listed", shown="(any author)")
HUB_MODELS = _declare("PERCEPTUAL_HUB_MODELS", _csv_list, None, "comma-separated extra Hub repo ids to list",
                      shown="(none)")
DEVICE = _declare("PERCEPTUAL_DEVICE", _device, lambda: torch.device("cuda" if torch.cuda.is_available() else "cpu"),
                  "``cuda``, ``cpu``, ``cuda:1``...", shown="``cuda`` when available, else ``cpu``")
VGG16_WEIGHTS = _declare("PERCEPTUAL_VGG16_WEIGHTS", _path, None, "a local safetensors file with VGG-16 weights",
                         shown="(none)")
LOSS_NETWORK = _declare("PERCEPTUAL_LOSS_NETWORK",
                        functools.partial(_choice, choices=LOSS_NETWORK_CHOICES, aliases={"oxford": "caffe"}), "auto",
                        "which VGG-16 weights to prefer: ``auto``/``caffe`` (the paper's Oxford weights first; "
                        "``oxford`` is accepted for ``caffe``), ``torchvision``, or ``random`` (force the fallback)")
MAX_PIXELS = _declare("PERCEPTUAL_MAX_PIXELS", _at_least(1), 40_000_000, "the largest input image accepted, in pixels")
MAX_OUTPUT_PIXELS = _declare("PERCEPTUAL_MAX_OUTPUT_PIXELS", _at_least(1), 4096 * 4096,
                             "the largest result the app computes (stylize, super-resolution)", shown="4096 x 4096")
MAX_SIDE = _declare("PERCEPTUAL_MAX_SIDE", _at_least(1), 2048, "top of the app's output-size slider")
STYLE_TILE = _declare("PERCEPTUAL_STYLE_TILE", _at_least(1), 1024, "style-network inputs longer than this run tile by tile")
MAX_MODEL_MB = _declare("PERCEPTUAL_MAX_MODEL_MB", _positive, 512.0,
                        "the largest ``model.safetensors`` the registry reads, in MiB")
MODEL_CACHE_MB = _declare("PERCEPTUAL_MODEL_CACHE_MB", _positive, 256.0,  # about 38 paper-size style networks
                          "loaded models kept in memory, in MiB of their tensors (least recently used dropped first)")
TRAIN_CONTENT = _declare("PERCEPTUAL_TRAIN_CONTENT", _str, None,
                         "training content for the app and ``train_style``: a folder or a Hub dataset id",
                         shown="the bundled licensed photos")
VIDEO_MAX_SECONDS = _declare("PERCEPTUAL_VIDEO_MAX_SECONDS", _positive, 120.0,
                            "the longest video clip accepted, in seconds (public mode: at most "
                            "PERCEPTUAL_PUBLIC_VIDEO_MAX_SECONDS)")
VIDEO_MAX_FRAMES = _declare("PERCEPTUAL_VIDEO_MAX_FRAMES", _at_least(1), 7200, "the most frames a video clip may have")
VIDEO_MAX_INPUT_PIXELS = _declare("PERCEPTUAL_VIDEO_MAX_INPUT_PIXELS", _at_least(1), 3840 * 2160,
                                  "the largest video frame accepted, in pixels", shown="3840 x 2160")
VIDEO_MAX_BYTES = _declare("PERCEPTUAL_VIDEO_MAX_BYTES", _size, "500mb",
                           "the largest video file accepted (the app's upload cap, PERCEPTUAL_MAX_UPLOAD, applies too)")
VIDEO_MAX_SIDE = _declare("PERCEPTUAL_VIDEO_MAX_SIDE", _at_least(32), 1280,
                          "the largest stylized video frame's longer side, in px (the Video tab's size slider)")
CONCURRENCY = _declare("PERCEPTUAL_CONCURRENCY", _at_least(1), 2, "stylize / super-resolution requests run at once")
QUEUE_SIZE = _declare("PERCEPTUAL_QUEUE_SIZE", _at_least(1), 64, "requests waiting before new ones are refused")
MAX_UPLOAD = _declare("PERCEPTUAL_MAX_UPLOAD", _size, "50mb",
                      "the app's upload size cap (``50mb``, ``1gb``, or a number of bytes)")
LOG_LEVEL = _declare("PERCEPTUAL_LOG_LEVEL", _log_level, "INFO",
                     "the app's log level (``DEBUG``, ``INFO``, ``WARNING``...)")
MCP_SERVER = _declare("PERCEPTUAL_MCP_SERVER", _bool, False,
                      "serve the app's API as an MCP server too (needs ``pip install \"gradio[mcp]\"``)")
TORCH_COMPILE = _declare("PERCEPTUAL_TORCH_COMPILE", _bool, False,
                         "on a CPU, also time ``torch.compile`` when choosing a style network's runtime (it costs "
                         "tens of seconds of compiling per model)")
SERVER_NAME = _declare("GRADIO_SERVER_NAME", _str, "127.0.0.1",
                       "the address the app listens on (``0.0.0.0``: the network; a Space sets it)")
PUBLIC = _declare("PERCEPTUAL_PUBLIC", functools.partial(_choice, choices=("auto", "on", "off")), "auto",
                  "public mode for an app others reach: visitors' training content is never a server path, the "
                  "server bounds every request and no message names a server path; ``auto``: on a Space or when "
                  "the app listens beyond this machine")
PUBLIC_MAX_ITERATIONS = _declare("PERCEPTUAL_PUBLIC_MAX_ITERATIONS", _at_least(1), 2000,
                                 "in public mode, the most training steps one request may ask for")
PUBLIC_MAX_OUTPUT_PIXELS = _declare("PERCEPTUAL_PUBLIC_MAX_OUTPUT_PIXELS", _at_least(1), 2048 * 2048,
                                    "in public mode, the largest result one request computes (stylize, "
                                    "super-resolution; the lower of this and PERCEPTUAL_MAX_OUTPUT_PIXELS)",
                                    shown="2048 x 2048")
PUBLIC_VIDEO_MAX_SECONDS = _declare("PERCEPTUAL_PUBLIC_VIDEO_MAX_SECONDS", _positive, 30.0,
                                   "in public mode, the longest video clip one request may stylize, in seconds")
PUBLIC_MAX_FEATURE_MAPS = _declare("PERCEPTUAL_PUBLIC_MAX_FEATURE_MAPS", _at_least(1), 8,
                                   "in public mode, the most feature maps one Explain request projects")
PUBLIC_HUB_CONTENT = _declare("PERCEPTUAL_PUBLIC_HUB_CONTENT", _bool, False,
                              "in public mode, let visitors train on a Hugging Face dataset id they name")
PUBLIC_MAX_HUB_CONTENT_BYTES = _declare("PERCEPTUAL_PUBLIC_MAX_HUB_CONTENT_BYTES", _size, "256mb",
                                        "in public mode, the largest Hub dataset (its image files) a visitor may "
                                        "train on, where PERCEPTUAL_PUBLIC_HUB_CONTENT allows one")
PUBLIC_WAITING_PER_CLIENT = _declare("PERCEPTUAL_PUBLIC_WAITING_PER_CLIENT", _at_least(1), 4,
                                     "in public mode, the most requests one client (address) may have waiting in "
                                     "the queue; more are refused with a message")
PUBLIC_HEAVY_PER_CLIENT = _declare("PERCEPTUAL_PUBLIC_HEAVY_PER_CLIENT", _at_least(1), 1,
                                   "in public mode, the heavy jobs (training, the baseline, Explain, "
                                   "super-resolution) one client may have running or waiting at a time")
PUBLIC_HEAVY_WAITING = _declare("PERCEPTUAL_PUBLIC_HEAVY_WAITING", _at_least(1), 8,
                                "in public mode, the heavy jobs of one kind that may wait in the queue, so "
                                "light requests always find room")
PUBLIC_MAX_TRAIN_SECONDS = _declare("PERCEPTUAL_PUBLIC_MAX_TRAIN_SECONDS", _at_least(1), 900,
                                    "in public mode, the longest one training request runs: then it stops and "
                                    "keeps what it learnt, as Cancel does")
PUBLIC_MAX_VISITOR_MODELS = _declare("PERCEPTUAL_PUBLIC_MAX_VISITOR_MODELS", _at_least(1), 30,
                                     "in public mode, the most models visitors' trainings keep on disk; the "
                                     "oldest go first (the owner's own models are never touched)")
PUBLIC_MODELS_PER_VISITOR = _declare("PERCEPTUAL_PUBLIC_MODELS_PER_VISITOR", _at_least(1), 3,
                                     "in public mode, the most models one visitor's trainings keep; their oldest "
                                     "goes first")
PUBLIC_VISITOR_MODEL_HOURS = _declare("PERCEPTUAL_PUBLIC_VISITOR_MODEL_HOURS", _positive, 24.0,
                                      "in public mode, how long a visitor's model stays unless its owner publishes it")
PUBLIC_MAX_CONTENT_IMAGES = _declare("PERCEPTUAL_PUBLIC_MAX_CONTENT_IMAGES", _at_least(1), 16,
                                     "in public mode, the most content photos a visitor may upload with one training "
                                     "request")
PUBLIC_MAX_CONTENT_BYTES = _declare("PERCEPTUAL_PUBLIC_MAX_CONTENT_BYTES", _size, "32mb",
                                    "in public mode, the most bytes of content photos one training request uploads")
PUBLIC_MAX_UPLOAD_REQUEST = _declare("PERCEPTUAL_PUBLIC_MAX_UPLOAD_REQUEST", _size, "64mb",
                                     "in public mode, the largest upload request (all its files together)")
PUBLIC_UPLOAD_BYTES_PER_HOUR = _declare("PERCEPTUAL_PUBLIC_UPLOAD_BYTES_PER_HOUR", _size, "256mb",
                                        "in public mode, what one client (address) may upload in an hour")
PUBLIC_UPLOAD_TOTAL_PER_HOUR = _declare("PERCEPTUAL_PUBLIC_UPLOAD_TOTAL_PER_HOUR", _size, "2gb",
                                        "in public mode, what all clients together may upload in an hour")
PUBLIC_MAX_BASELINE_ITERATIONS = _declare("PERCEPTUAL_PUBLIC_MAX_BASELINE_ITERATIONS", _at_least(1), 300,
                                          "in public mode, the most L-BFGS iterations one baseline request runs")
PUBLIC_MAX_BASELINE_SIDE = _declare("PERCEPTUAL_PUBLIC_MAX_BASELINE_SIDE", _at_least(32), 512,
                                    "in public mode, the largest image side the baseline optimises")
PUBLIC_MAX_REQUEST_SECONDS = _declare("PERCEPTUAL_PUBLIC_MAX_REQUEST_SECONDS", _at_least(1), 300,
                                      "in public mode, the longest a super-resolution, Explain or baseline request "
                                      "runs before it stops with a message")
# Read here as well, set by others.
GRADIO_SHARE = _declare("GRADIO_SHARE", _bool, False, "a public share link (then public mode is on under ``auto``)",
                        set_by="Gradio's users")
SPACE_ID = _declare("SPACE_ID", _str, None, "publishing then needs the visitor's own sign-in or typed token, and "
                    "Hub reads are anonymous unless the visitor signed in (the owner's ``HF_TOKEN`` is never used "
                    "for a visitor)", set_by="Hugging Face Spaces")
OAUTH_CLIENT_ID = _declare("OAUTH_CLIENT_ID", _str, None, "the \"Sign in with Hugging Face\" button is offered "
                           "(a Space with ``hf_oauth: true``)", set_by="Hugging Face Spaces")
HF_TOKEN = _declare("HF_TOKEN", _str, None, "off a Space: the token to publish with when none is given",
                    set_by="the operator (or `hf auth login`)")
HF_ENDPOINT = _declare("HF_ENDPOINT", _str, None, "the Hub's address, honoured at call time by the registry",
                       set_by="huggingface_hub")
HF_HUB_CACHE = _declare("HF_HUB_CACHE", _str, None, "the HF cache folder, honoured at call time by the registry",
                        set_by="huggingface_hub")
HF_HOME = _declare("HF_HOME", _str, None, "huggingface_hub's home folder (its cache's default parent)",
                   set_by="huggingface_hub")
HF_HUB_OFFLINE = _declare("HF_HUB_OFFLINE", _bool, False, "no Hub requests: local and cached models only",
                          set_by="huggingface_hub")
RANK = _declare("RANK", _at_least(0), 0, "this process's rank in multi-process training", set_by="torchrun")
WORLD_SIZE = _declare("WORLD_SIZE", _at_least(1), 1, "processes in multi-process training", set_by="torchrun")
LOCAL_RANK = _declare("LOCAL_RANK", _at_least(0), 0, "this process's rank on its machine", set_by="torchrun")
MALLOC_ARENA_MAX = _declare("MALLOC_ARENA_MAX", _str, None,
                            "when set, the app leaves glibc's malloc arenas as the operator chose", set_by="glibc")
XDG_CACHE_HOME = _declare("XDG_CACHE_HOME", _path, lambda: Path.home() / ".cache",
                          "the user's cache folder, where an installed copy keeps its data",
                          shown="``~/.cache``", set_by="the desktop's conventions")


def markdown_table() -> str:
    """Every variable as the docs show it: the project's own (name, meaning, default), then the ones others set."""
    own = [s for s in SETTINGS.values() if s.set_by is None]
    others = [s for s in SETTINGS.values() if s.set_by is not None]
    lines = ["| variable | meaning | default |", "|---|---|---|"]
    lines += [f"| {s.name} | {s.help} | {s.default_text()} |" for s in own]
    lines += ["", "Read here as well, set by others:", "", "| variable | set by | meaning |", "|---|---|---|"]
    lines += [f"| {s.name} | {s.set_by} | {s.help} |" for s in others]
    return "\n".join(lines).replace("``", "`")



# ------------------------------------------------------------------------------------------ folders


def data_dir() -> Path:
    """Models, runs and caches: a Space's persistent storage, a checkout's ``data/``, else the user's cache."""
    return DATA_DIR.get()


def _default_data_dir() -> Path:
    if space_id() and SPACE_STORAGE.is_dir() and os.access(SPACE_STORAGE, os.W_OK):
        return SPACE_STORAGE / "perceptual-studio"
    if CHECKOUT is not None:
        return CHECKOUT / "data"
    return XDG_CACHE_HOME.get() / "perceptual-studio"


def models_dir() -> Path:
    return MODELS_DIR.get()


def runs_dir() -> Path:
    return data_dir() / "runs"


def builtin_models_dir() -> Path:
    """The shipped, read-only models (``registry/builtin``: ``styles/<name>``, ``sr/<name>``)."""
    return BUILTIN_MODELS_DIR.get()


def _subpackage_dir(name: str) -> Path:
    """Where ``perceptual_studio.<name>`` lives: inside the installed package, or beside it in a checkout."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() or CHECKOUT is None else CHECKOUT / name


def cache_dir() -> Path:
    return CACHE_DIR.get()


# ------------------------------------------------------------------------------------------ the Hub


def hub_tag() -> str:
    return HUB_TAG.get()


def hub_authors() -> list[str]:
    return HUB_AUTHORS.get()


def hub_extra_models() -> list[str]:
    return HUB_MODELS.get()


def hf_token() -> str | None:
    """``HF_TOKEN`` (never used for a Space's visitors: see ``registry/hub.py``)."""
    return HF_TOKEN.get()


def hf_endpoint() -> str | None:
    """``HF_ENDPOINT`` as set (``None``: huggingface_hub's default endpoint)."""
    return HF_ENDPOINT.get()


def hf_hub_cache() -> str | None:
    """``HF_HUB_CACHE`` as set (``None``: huggingface_hub's default cache folder)."""
    return HF_HUB_CACHE.get()


def hf_hub_offline() -> bool:
    return HF_HUB_OFFLINE.get()


def hub_environment() -> tuple[str | None, ...]:
    """The raw huggingface_hub settings a model listing depends on (a cache key, not parsed)."""
    return tuple(os.environ.get(s.name) for s in (HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE, HF_ENDPOINT))


def space_id() -> str | None:
    return SPACE_ID.get()


def running_on_space() -> bool:
    """True on a Hugging Face Space (``SPACE_ID`` is set there), where visitors must never act as the owner."""
    return space_id() is not None


def oauth_client_id() -> str | None:
    """Set on a Space whose front matter enables Hugging Face OAuth (``hf_oauth: true``)."""
    return OAUTH_CLIENT_ID.get()


# ------------------------------------------------------------------------------------------ compute


def device() -> torch.device:
    return DEVICE.get()


def loss_network_choice() -> str:
    """``PERCEPTUAL_LOSS_NETWORK``, one of :data:`LOSS_NETWORK_CHOICES`; ``oxford`` is accepted for ``caffe``."""
    return LOSS_NETWORK.get()


def vgg16_weights_file() -> Path | None:
    return VGG16_WEIGHTS.get()


def torchrun_rank() -> int:
    """``RANK`` (set by torchrun; 0 in a single process)."""
    return RANK.get()


def torchrun_world_size() -> int:
    """``WORLD_SIZE`` (set by torchrun; 1 in a single process)."""
    return WORLD_SIZE.get()


def torchrun_local_rank() -> int:
    return LOCAL_RANK.get()


# ------------------------------------------------------------------------------------------ limits


def max_pixels() -> int:
    """The largest input image accepted, in pixels."""
    return MAX_PIXELS.get()


def max_output_pixels() -> int:
    """The largest result the app computes, in pixels (lower in public mode: a shared CPU stays responsive)."""
    limit = MAX_OUTPUT_PIXELS.get()
    return min(limit, PUBLIC_MAX_OUTPUT_PIXELS.get()) if public_mode() else limit


def max_side() -> int:
    """The largest output side the app's size sliders offer."""
    return MAX_SIDE.get()


def style_tile() -> int:
    """Style-network inputs longer than this (px) run tile by tile."""
    return STYLE_TILE.get()


@dataclass(frozen=True)
class VideoLimits:
    """What a video request may be: its clip (duration, frames, frame size, file size) and its output size."""

    seconds: float
    frames: int
    input_pixels: int
    file_bytes: int
    output_side: int


def video_limits() -> VideoLimits:
    """The video limits in force now (public mode lowers the duration)."""
    seconds = VIDEO_MAX_SECONDS.get()
    if public_mode():
        seconds = min(seconds, PUBLIC_VIDEO_MAX_SECONDS.get())
    return VideoLimits(seconds, VIDEO_MAX_FRAMES.get(), VIDEO_MAX_INPUT_PIXELS.get(), VIDEO_MAX_BYTES.get(),
                       VIDEO_MAX_SIDE.get())


def max_model_mb() -> float:
    """The largest ``model.safetensors`` the registry reads, in MiB (fractions allowed)."""
    return MAX_MODEL_MB.get()


def model_cache_bytes() -> int:
    """How many bytes of loaded models' tensors stay in memory; the least recently used go first."""
    return int(MODEL_CACHE_MB.get() * 2**20)


def max_upload_bytes() -> int:
    """The app's upload size cap, in bytes (what Gradio's ``max_file_size`` takes)."""
    return MAX_UPLOAD.get()


# ------------------------------------------------------------------------------------------ the app


def train_content() -> str | None:
    """The app's training content (a folder or a Hub dataset id); ``None``: the bundled samples."""
    return TRAIN_CONTENT.get()


def concurrency() -> int:
    """Stylize / super-resolution requests run at once."""
    return CONCURRENCY.get()


def queue_size() -> int:
    """Requests waiting in the queue before new ones are refused."""
    return QUEUE_SIZE.get()


def log_level() -> str:
    """A ``logging`` level name."""
    return LOG_LEVEL.get()


def torch_compile_runtime() -> bool:
    """Let :mod:`networks.runtimes` time ``torch.compile`` beside the torch plan and ONNX Runtime on a CPU. Off by
    default: measured here it ran the fast variant 10-15% quicker at 512-1024 px, but compiling cost about 10 s
    per model and a further 27 s at the first image of a second shape, CPU a shared Space's visitors would feel."""
    return TORCH_COMPILE.get()


def mcp_server() -> bool:
    """Also serve the app's API as an MCP server (Gradio's ``launch(mcp_server=True)``; needs ``gradio[mcp]``)."""
    return MCP_SERVER.get()


def server_name() -> str:
    """The address the app listens on."""
    return SERVER_NAME.get()


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def public_mode() -> bool:
    """Whether the app serves others (``PERCEPTUAL_PUBLIC``; ``auto``: on a Space, or bound beyond loopback)."""
    choice = PUBLIC.get()
    if choice != "auto":
        return choice == "on"
    return running_on_space() or GRADIO_SHARE.get() or server_name() not in _LOOPBACK


def public_max_iterations() -> int:
    return PUBLIC_MAX_ITERATIONS.get()


def public_max_feature_maps() -> int:
    return PUBLIC_MAX_FEATURE_MAPS.get()


def public_hub_content() -> bool:
    return PUBLIC_HUB_CONTENT.get()


def public_max_hub_content_bytes() -> int:
    return PUBLIC_MAX_HUB_CONTENT_BYTES.get()


def public_waiting_per_client() -> int:
    return PUBLIC_WAITING_PER_CLIENT.get()


def public_heavy_per_client() -> int:
    return PUBLIC_HEAVY_PER_CLIENT.get()


def public_heavy_waiting() -> int:
    return PUBLIC_HEAVY_WAITING.get()


def public_max_train_seconds() -> int:
    return PUBLIC_MAX_TRAIN_SECONDS.get()


def public_max_visitor_models() -> int:
    return PUBLIC_MAX_VISITOR_MODELS.get()


def public_models_per_visitor() -> int:
    return PUBLIC_MODELS_PER_VISITOR.get()


def public_visitor_model_hours() -> float:
    return PUBLIC_VISITOR_MODEL_HOURS.get()


def public_max_content_images() -> int:
    return PUBLIC_MAX_CONTENT_IMAGES.get()


def public_max_content_bytes() -> int:
    return PUBLIC_MAX_CONTENT_BYTES.get()


def public_max_upload_request() -> int:
    return PUBLIC_MAX_UPLOAD_REQUEST.get()


def public_upload_bytes_per_hour() -> int:
    return PUBLIC_UPLOAD_BYTES_PER_HOUR.get()


def public_upload_total_per_hour() -> int:
    return PUBLIC_UPLOAD_TOTAL_PER_HOUR.get()


def public_max_baseline_iterations() -> int:
    return PUBLIC_MAX_BASELINE_ITERATIONS.get()


def public_max_baseline_side() -> int:
    return PUBLIC_MAX_BASELINE_SIDE.get()


def public_max_request_seconds() -> int:
    return PUBLIC_MAX_REQUEST_SECONDS.get()


def malloc_arena_max() -> str | None:
    """``MALLOC_ARENA_MAX`` as set (glibc read it at start-up; the app then leaves the arenas alone)."""
    return MALLOC_ARENA_MAX.get()


TABLE_MARKER = "<!-- generated by `python -m perceptual_studio.settings`; tests/test_settings.py checks it -->"


def update_table(path: Path) -> None:
    """Replace the generated table after :data:`TABLE_MARKER` in the Markdown file ``path``."""
    text = path.read_text(encoding="utf-8")
    head, marker, rest = text.partition(TABLE_MARKER + "\n")
    if not marker:
        raise SystemExit(f"{path} has no line {TABLE_MARKER}")
    last = rest.index("\n", rest.index(f"| {list(SETTINGS)[-1]} |")) + 1
    path.write_text(head + marker + markdown_table() + "\n" + rest[last:], encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--update"] and len(sys.argv) == 3:
        update_table(Path(sys.argv[2]))
    else:
        print(markdown_table())
