"""The registry's public functions (timm ``_factory.py`` style): list, load by id, save, publish, pull.

Model ids::

    local:<folder>        a folder in the local models folder (settings.models_dir())
    hub:<owner>/<name>    a Hub repo: downloaded (only its model files) when the Hub answers, else the cached copy
    cache:<owner>/<name>  the HF cache's copy of a repo, never touching the network
    <owner>/<name>        same as hub:<owner>/<name>
    <name>                the local folder or cached repo with that name, if exactly one exists; else an error

``load_model`` keeps loaded networks in memory, keyed by (id, device): a second request for a Hub model
makes no network call; local folders are re-read only when their files change.
"""
from __future__ import annotations

import glob
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from perceptual_studio import settings
from perceptual_studio.networks.architectures import TASKS

from . import hub as hub_mod
from .errors import (
    AmbiguousModelIdError,
    HubUnavailableError,
    InvalidModelIdError,
    ModelNotFoundError,
    RegistryError,
)
from .model_format import (
    CONFIG_FILE,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    LoadedModel,
    ModelConfig,
    load_model_folder,
    validate_folder,
)
from .model_format import save_model as _save_model_folder
from .plugins import load_plugins
from .sources import (
    SOURCES,
    ModelEntry,
    _entry_from_folder,
    builtin_folders,
    hub_entry,
    list_builtin,
    list_cache,
    list_local,
    merge,
)

logger = logging.getLogger(__name__)

# Loaded models, least recently used first, bounded by their tensors' bytes (settings.model_cache_bytes()):
# a Space serving many models keeps a level memory. Prepared copies and ONNX sessions are keyed weakly by the
# network (networks/plan.py, networks/runtimes.py), so they leave with it.
_memory: OrderedDict[tuple[str, str], tuple[Any, LoadedModel]] = OrderedDict()
_memory_bytes: dict[tuple[str, str], int] = {}
_memory_lock = threading.Lock()
_key_locks: dict[tuple[str, str], threading.Lock] = {}


def _recall(key: tuple[str, str]) -> tuple[Any, LoadedModel] | None:
    with _memory_lock:
        hit = _memory.get(key)
        if hit is not None:
            _memory.move_to_end(key)
        return hit


def _remember(key: tuple[str, str], fingerprint: Any, model: LoadedModel) -> None:
    """Keep ``model``, then forget the least recently used others until the cache fits its byte budget."""
    size = sum(t.numel() * t.element_size() for t in (*model.network.parameters(), *model.network.buffers()))
    budget = settings.model_cache_bytes()
    with _memory_lock:
        _memory[key], _memory_bytes[key] = (fingerprint, model), size
        _memory.move_to_end(key)
        while len(_memory) > 1 and sum(_memory_bytes.values()) > budget:
            oldest = next(iter(_memory))
            del _memory[oldest], _memory_bytes[oldest]
            lock = _key_locks.get(oldest)
            if lock is not None and not lock.locked():
                del _key_locks[oldest]


def memory_cache_bytes() -> int:
    """What the loaded models' tensors take now (the cache's measure)."""
    with _memory_lock:
        return sum(_memory_bytes.values())


@dataclass
class Listing:
    entries: list[ModelEntry] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # e.g. "Hub unreachable: showing local and cached models (...)"

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def get(self, model_id: str) -> ModelEntry | None:
        return next((e for e in self.entries if e.id == model_id), None)


def _plugin_notices() -> list[str]:
    report = load_plugins(strict=False)
    return [f"architecture plugin problem: {line}" for line in report.errors]


def list_models(task: str | None = None, source: str | None = None, *, token: str | None = None) -> Listing:
    """Shipped, local, Hub and cached models, merged; filter by ``task`` and ``source`` ("builtin" | "local" |
    "hub" | "cache").

    ``token``: the caller's (a visitor's sign-in on a Space); without one, a Space lists anonymously and a
    local run uses huggingface_hub's own token (``HF_TOKEN`` or the cached login).

    Never raises for an unreachable Hub or a broken model: the former becomes a notice (within a few
    seconds), the latter an entry with ``error`` set.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if source is not None and source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    notices = _plugin_notices()
    builtin = list_builtin(settings.builtin_models_dir()) if source in (None, "builtin") else []
    local = list_local(settings.models_dir()) if source in (None, "local") else []
    cache = list_cache(hub_mod.cache_dir()) if source in (None, "hub", "cache") else []
    hub: list[ModelEntry] = []
    if source in (None, "hub"):
        usable, notice = hub_mod.hub_status()
        if not usable:
            notices.append(notice or hub_mod.OFFLINE_NOTICE)
        else:
            try:
                models, hub_notices = hub_mod.run_with_deadline(
                    lambda: hub_mod.list_hub_models(settings.hub_tag(), settings.hub_authors(),
                                                    settings.hub_extra_models(), token),
                    hub_mod.HUB_LIST_DEADLINE_S,
                )
                hub = [hub_entry(m) for m in models]
                notices += hub_notices
            except Exception as exc:  # noqa: BLE001 - a failing Hub must not break the local listing
                # It answered the probe earlier: re-probe in the background, so the next listing is quick.
                threading.Thread(target=hub_mod.probe_hub, kwargs={"fresh": True}, daemon=True).start()
                first = str(exc).strip().splitlines()
                notices.append(f"{hub_mod.OFFLINE_NOTICE} (listing failed: {first[0] if first else type(exc).__name__})")
    entries = builtin + merge(local, hub, cache)
    entries = [e for e in entries if (task is None or e.task == task) and (source is None or e.source == source)]
    return Listing(entries, notices)


# ------------------------------------------------------------------------------------------------ ids


MAX_NAME_LENGTH = 200  # a folder name every filesystem takes (most allow 255 bytes)


def _check_local_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidModelIdError(f"invalid local model name ({len(name)} characters): a model name is at most "
                                  f"{MAX_NAME_LENGTH} characters")
    if not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise InvalidModelIdError(f"invalid local model name {name!r}: expected a folder name in the models folder")
    return name


def parse_model_id(model_id: str) -> tuple[str | None, str]:
    """Split an id into (source or None for a bare name, name); validates syntax only (no disk, no network)."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InvalidModelIdError("empty model id")
    text = model_id.strip()
    prefix, sep, rest = text.partition(":")
    if sep:
        source = {"hf-hub": "hub"}.get(prefix, prefix)
        if source in ("local", "builtin"):
            return source, _check_local_name(rest)
        if source in ("hub", "cache"):
            return source, hub_mod.validate_repo_id(rest)
        raise InvalidModelIdError(f"unknown model id prefix {prefix!r} in {model_id!r}: use builtin:, local:, hub: or "
                                  f"cache:")
    if "/" in text:
        return "hub", hub_mod.validate_repo_id(text)
    return None, _check_local_name(text)


def _builtin_folder(name: str) -> Path:
    folder = builtin_folders(settings.builtin_models_dir()).get(name)
    if folder is None:
        raise ModelNotFoundError(f"no built-in model {name!r} (shipped ones: "
                                 f"{', '.join(builtin_folders(settings.builtin_models_dir())) or 'none'})")
    return folder


def _is_local_model(folder: Path) -> bool:
    return folder.is_dir() and (
        (folder / CONFIG_FILE).exists() or (folder / WEIGHTS_FILE).exists()
        or any(p.suffix.lower() in PICKLE_SUFFIXES for p in folder.iterdir())
    )


def resolve_model_id(model_id: str) -> str:
    """The canonical id (``local:x``, ``hub:o/n`` or ``cache:o/n``); a bare name must match exactly one model,
    except that a shipped model's name always means the shipped model: no folder anyone adds can shadow it."""
    source, name = parse_model_id(model_id)
    if source is not None:
        return f"{source}:{name}"
    if name in builtin_folders(settings.builtin_models_dir()):
        return f"builtin:{name}"
    candidates = [f"local:{name}"] if _is_local_model(settings.models_dir() / name) else []
    cache = hub_mod.cache_dir()
    if cache.is_dir():  # cached repos are folders named models--<owner>--<name>; no need to scan their files
        for folder in sorted(cache.glob(f"models--*--{glob.escape(name)}")):
            owner = folder.name[len("models--"): -len(f"--{name}")]
            if owner and "--" not in owner:
                candidates.append(f"cache:{owner}/{name}")
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ModelNotFoundError(
            f"no model named {name!r} in {settings.models_dir()} or the HF cache; `python -m registry list` shows "
            f"what is available (Hub models are addressed as owner/name)"
        )
    raise AmbiguousModelIdError(f"{name!r} is ambiguous: it could be {', '.join(candidates)}; use one of these ids")


def reserved_model_names() -> set[str]:
    """Names a new local model never takes: the shipped models' (which a bare id always means) and the zoo
    importer's folders (which it recognises by their record, so a model of that name would only be reported)."""
    from .onnx_zoo import ZOO_STYLES  # the importer pulls in onnx reading; only needed here

    return set(builtin_folders(settings.builtin_models_dir())) | {z.folder_name for z in ZOO_STYLES.values()}


_variants: dict[tuple, dict[tuple[bool, str], str]] = {}


def fast_variant(model_id: str) -> str | None:
    """The id of a fast variant of style model ``model_id`` (a smaller network that stands in for it: its
    record's ``variant_of``) that loads on this machine: shipped, local or in the HF cache; None when there is
    none. The folders are scanned again only when one of the three roots changes."""
    return _variants_of(stable=False).get(resolve_model_id(model_id))


def stable_variant(model_id: str) -> str | None:
    """The id of a stable variant of style model ``model_id`` (a variant trained with the temporal loss, which
    flickers less on video), found as :func:`fast_variant` finds fast ones; None when there is none."""
    return _variants_of(stable=True).get(resolve_model_id(model_id))


def _variants_of(*, stable: bool) -> dict[str, str]:
    roots = (settings.builtin_models_dir(), settings.models_dir(), hub_mod.cache_dir())
    key = tuple((str(root), _mtime(root)) for root in roots) + tuple(
        (str(folder), _mtime(folder)) for folder in builtin_folders(roots[0]).values())
    if key not in _variants:
        entries = list_builtin(roots[0]) + list_local(roots[1]) + list_cache(roots[2])
        _variants.clear()
        chosen: dict[tuple[bool, str], str] = {}
        for entry in sorted((e for e in entries if e.variant_of and e.error is None), key=_variant_preference):
            chosen.setdefault((entry.stable, entry.variant_of), entry.id)
        _variants[key] = chosen
    return {teacher: variant for (is_stable, teacher), variant in _variants[key].items() if is_stable == stable}


def _variant_preference(entry: ModelEntry) -> tuple[bool, str]:
    """Of several variants of one model, one trained with its objective comes before a student that only
    learned its output per pixel (``train.distill``, no loss network), then by id."""
    return (entry.loss_network is None or entry.loss_network.startswith("none"), entry.id)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


# ------------------------------------------------------------------------------------------------ load


def _fingerprint(folder: Path) -> tuple:
    stats = []
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            st = (folder / name).stat()
            stats.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            stats.append((name, None))
    return (str(folder.resolve()), *stats)


def _repo_folder(source: str, repo_id: str, token: str | None) -> Path:
    if source == "cache":
        snapshot = hub_mod.cached_snapshot(repo_id)
        if snapshot is None:
            raise ModelNotFoundError(f"{repo_id} is not in the HF cache; fetch it with `python -m registry pull {repo_id}`")
        return snapshot
    usable, notice = hub_mod.hub_status()
    if usable:
        try:
            return _download(repo_id, token)
        except HubUnavailableError as exc:  # went down since the probe: the cached copy still serves
            notice = str(exc)
    snapshot = hub_mod.cached_snapshot(repo_id)
    if snapshot is None:
        raise HubUnavailableError(f"{repo_id} is not in the HF cache and the Hub cannot be used: {notice}")
    logger.info("loading the cached copy of %s: %s", repo_id, notice)
    return snapshot


def _download(repo_id: str, token: str | None) -> Path:
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    try:
        return hub_mod.download(repo_id, token)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"{repo_id} was not found on the Hub (or is private: pass a token)") from None
    except (HfHubHTTPError, OfflineModeIsEnabled, *hub_mod.http_errors(), OSError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()
        raise HubUnavailableError(
            f"downloading {repo_id} failed: {first[0] if first else type(exc).__name__}"
        ) from None


ModelRef = str | os.PathLike  # a model id (module docstring) or a model folder's path


def as_folder(model: ModelRef) -> Path | None:
    """``model`` as a model folder on disk, or None when it is an id.

    A ``Path`` (any ``os.PathLike``) is always a folder; a string is one when it names an existing folder with a
    ``config.json`` and is not an id with a source prefix (``builtin:``, ``local:``, ``hub:``, ``cache:``), the
    way diffusers' ``from_pretrained`` tells a local folder from a Hub repo id.
    """
    if not isinstance(model, str):
        return Path(os.fspath(model))
    text = model.strip()
    if not text or parse_prefix(text) is not None:
        return None
    path = Path(text).expanduser()
    return path if (os.sep in text or "/" in text or text.startswith(".")) and (path / CONFIG_FILE).is_file() else None


def parse_prefix(text: str) -> str | None:
    """The id's source prefix (``local`` ...) when it has a known one; None otherwise."""
    prefix, sep, _ = text.partition(":")
    return prefix if sep and prefix in ("local", "builtin", "hub", "hf-hub", "cache") else None


def model_folder(canonical: str, *, token: str | None = None) -> Path:
    """The folder on disk of a resolved id (:func:`resolve_model_id`): the one place an id becomes a folder.

    A Hub model is downloaded (only its model files) when the Hub answers, else its cached copy is used."""
    source, name = canonical.split(":", 1)
    if source == "local":
        folder = settings.models_dir() / name
        if not folder.is_dir():
            raise ModelNotFoundError(f"no local model {name!r} in the models folder")
        return folder
    if source == "builtin":
        return _builtin_folder(name)
    return _repo_folder(source, name, token)


def read_config(model: ModelRef, *, token: str | None = None) -> tuple[str | None, ModelConfig]:
    """(canonical id or None for a folder, its ``config.json``) without reading any weights."""
    folder = as_folder(model)
    if folder is not None:
        return None, validate_folder(folder)
    canonical = resolve_model_id(str(model))
    load_plugins(strict=False)
    return canonical, validate_folder(model_folder(canonical, token=token), name=canonical.split(":", 1)[1])


def load_model(model_id: ModelRef, device: str | torch.device | None = None, *,
               token: str | None = None) -> LoadedModel:
    """Return the ready model for ``model_id`` (an id or a model folder's path): its network in eval mode on
    ``device`` (default ``settings.device()``), its ``ModelConfig`` (loss network, style, training record) and
    canonical id (None for a folder given by path).

    It is cached and shared: copy the network before training it further.
    """
    target = torch.device(device) if device is not None else settings.device()
    folder = as_folder(model_id)
    if folder is not None:
        return _load_cached((f"folder:{folder.resolve()}", str(target)), lambda: folder, target, None, folder.name)
    canonical = resolve_model_id(model_id)
    source, name = canonical.split(":", 1)
    key = (f"repo:{name}" if source in ("hub", "cache") else canonical, str(target))
    if source == "hub":
        hit = _recall(key)
        if hit is not None:
            return hit[1]  # no network round trip for a model already in memory
    return _load_cached(key, lambda: model_folder(canonical, token=token), target, canonical, name)


def _load_cached(key: tuple[str, str], locate, target: torch.device, canonical: str | None,
                 name: str) -> LoadedModel:
    """The model in memory under ``key`` if its files are unchanged, else loaded from ``locate()``'s folder."""
    with _memory_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        load_plugins(strict=False)
        folder = locate()
        fingerprint = _fingerprint(folder)
        hit = _recall(key)
        if hit is not None and hit[0] == fingerprint:
            return hit[1]
        model = load_model_folder(folder, target, name=name, model_id=canonical)
        _remember(key, fingerprint, model)
        return model


def clear_memory_cache() -> None:
    with _memory_lock:
        _memory.clear()
        _memory_bytes.clear()


# ------------------------------------------------------------------------------------------------ save / share


def save_model(model: nn.Module, name_or_folder: str | os.PathLike, **kwargs: Any) -> Path:
    """Save a trained model as a model folder: a bare name goes into the local models folder.

    Keyword arguments are those of ``registry.model_format.save_model`` (training record, style, images...).
    Returns the folder; the model's id is ``local:<folder name>`` when it is in the models folder.
    """
    if isinstance(name_or_folder, str) and not any(sep in name_or_folder for sep in "/\\"):
        folder = settings.models_dir() / _check_local_name(name_or_folder)
    else:
        folder = Path(name_or_folder)
    return _save_model_folder(model, folder, **kwargs)


def _folder_of(folder_or_id: str | os.PathLike) -> Path:
    text = os.fspath(folder_or_id)
    if isinstance(folder_or_id, str) and text.startswith("local:"):
        return settings.models_dir() / _check_local_name(text[len("local:"):])
    path = Path(text)
    if not path.exists() and isinstance(folder_or_id, str) and not any(s in text for s in "/\\"):
        candidate = settings.models_dir() / text
        if candidate.is_dir():
            return candidate
    return path


def publish(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool | None = None,
            commit_message: str | None = None) -> hub_mod.PublishResult:
    """Upload a model folder (a path, ``local:<name>`` or a local name) to the Hub as ``repo_id``.

    The token comes from ``token``, else (never on a Space) ``HF_TOKEN`` or the cached login; it never appears in logs or
    errors. ``private`` applies when the repo is created (``None``: the namespace's default visibility).
    """
    path = _folder_of(folder)
    if not path.is_dir():
        raise ModelNotFoundError(f"{folder}: no such model folder")
    return hub_mod.publish_folder(path, repo_id, token=token, private=private, commit_message=commit_message)


def pull(model_id: str, *, token: str | None = None) -> Path:
    """Download a Hub model (``owner/name`` or ``hub:owner/name``) into the HF cache; return its folder."""
    source, name = parse_model_id(model_id)
    if source not in ("hub", "cache"):
        raise InvalidModelIdError(f"{model_id!r} is not a Hub model id (expected owner/name)")
    folder = _download(name, token)  # raises HubUnavailableError, with the reason, when the Hub cannot be used
    validate_folder(folder, name=name)
    return folder


def describe(model_id: str) -> tuple[ModelEntry, dict | None]:
    """The listing entry for one model and its ``config.json`` (None if not on disk); no download."""
    canonical = resolve_model_id(model_id)
    source, name = canonical.split(":", 1)
    load_plugins(strict=False)
    if source in ("local", "builtin"):
        entry = _entry_from_folder(model_folder(canonical), id=canonical, source=source)
    else:
        snapshot = hub_mod.cached_snapshot(name)
        if snapshot is not None:
            entry = _entry_from_folder(snapshot, id=canonical, source=source, repo_id=name)
        elif source == "cache":
            raise ModelNotFoundError(f"{name} is not in the HF cache")
        else:
            entry = _hub_only_entry(name)
    config = None
    if entry.path is not None and (entry.path / CONFIG_FILE).is_file():
        import json

        try:
            config = json.loads((entry.path / CONFIG_FILE).read_text(encoding="utf-8"))
        except ValueError:
            config = None
    return entry, config


def _hub_only_entry(repo_id: str) -> ModelEntry:
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    hub_mod.require_hub()
    try:
        info = hub_mod.run_with_deadline(
            lambda: hub_mod._api().model_info(repo_id, timeout=hub_mod.HUB_TIMEOUT_S), hub_mod.HUB_LIST_DEADLINE_S
        )
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"{repo_id} was not found on the Hub") from None
    except (HfHubHTTPError, TimeoutError) as exc:
        raise HubUnavailableError(f"cannot read {repo_id} from the Hub: {str(exc).splitlines()[0]}") from None
    return hub_entry(hub_mod._hub_model(info))


__all__ = [
    "Listing", "ModelEntry", "ModelRef", "RegistryError", "as_folder", "clear_memory_cache", "describe", "list_models",
    "load_model", "model_folder", "parse_model_id", "publish", "pull", "read_config", "resolve_model_id",
    "save_model",
]
