"""Where models come from: the local models folder, the Hugging Face Hub, and the local HF cache.

Each source lists ``ModelEntry`` records; ``merge`` folds a Hub entry and the cached copy of the same repo
into one (source "hub", ready offline). A broken model is listed with ``error`` set instead of being
dropped or breaking the listing, so users see why it cannot load.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from perceptual_studio.networks.architectures import TASKS

from .errors import RegistryError
from .hub import HubModel
from .model_format import (
    CONFIG_FILE,
    MAX_CONFIG_BYTES,
    PICKLE_SUFFIXES,
    PREVIEW_FILE,
    STYLE_IMAGE_FILE,
    WEIGHTS_FILE,
    ModelConfig,
    StyleImageCredit,
    is_our_config,
    validate_folder,
)

logger = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("builtin", "local", "hub", "cache")


@dataclass(frozen=True)
class ModelEntry:
    id: str  # "local:<folder>", "hub:<owner>/<name>" or "cache:<owner>/<name>"
    source: str  # "builtin" | "local" | "hub" | "cache"
    task: str | None  # "style-transfer" | "super-resolution"; None if unknown (broken or undescribed)
    architecture: str | None
    style: str | None  # style name (style transfer)
    scale: int | None  # upscaling factor (super-resolution)
    ready_offline: bool  # loadable without the network (local, or complete in the HF cache)
    path: Path | None = None  # the folder on disk: local folder or cached snapshot
    repo_id: str | None = None
    loss_network: str | None = None  # "vgg16:imagenet", "vgg16:random(seed=0)", ...
    thumbnail: Path | None = None  # preview.jpg, else style.jpg, when on disk
    error: str | None = None  # why it cannot be loaded; None when it checks out
    sr_loss: str | None = None  # super-resolution: "pixel" or "feature" (the training record's), None if unknown
    variant_of: str | None = None  # a fast variant: the id of the style model it stands in for
    stable: bool = False  # a stable variant (trained with the temporal loss): for video and the webcam
    style_credit: StyleImageCredit | None = None  # a painting's title, artist, year and licence, when recorded

    @property
    def label(self) -> str:
        if self.task == "super-resolution":
            return f"x{self.scale}" if self.scale else "?"
        return self.style or "?"

    @property
    def random_loss_network(self) -> bool:
        return bool(self.loss_network and self.loss_network.startswith("vgg16:random"))


def _listing_order(entry: ModelEntry) -> tuple[bool, str]:
    """Within a source, the styles of credited paintings first (the gallery opens on them), then by id."""
    return entry.style_credit is None, entry.id


def _thumbnail(folder: Path) -> Path | None:
    return next((folder / f for f in (PREVIEW_FILE, STYLE_IMAGE_FILE) if (folder / f).is_file()), None)


def _entry_from_folder(folder: Path, *, id: str, source: str, repo_id: str | None = None) -> ModelEntry:
    name = repo_id or folder.name
    try:
        config = validate_folder(folder, name=name)
        error = None
    except RegistryError as exc:
        config, error = _best_effort_config(folder), str(exc)
    except OSError as exc:
        config, error = None, f"{name}: cannot be read: {exc}"
    return ModelEntry(
        id=id, source=source, task=config.task if config else None, architecture=config.architecture if config else None,
        style=config.style if config else None, scale=config.scale if config else None,
        ready_offline=error is None, path=folder, repo_id=repo_id,
        loss_network=config.training.loss_network if config else None, thumbnail=_thumbnail(folder), error=error,
        sr_loss=config.training.sr_loss if config else None,
        variant_of=config.training.variant_of if config else None,
        stable=bool(config and config.training.temporal_weight),
        style_credit=config.training.style_image if config else None,
    )


def _best_effort_config(folder: Path) -> ModelConfig | None:
    """The config of a broken model, if it parses, so the listing can still show its task and style."""
    try:
        path = folder / CONFIG_FILE
        if path.stat().st_size <= MAX_CONFIG_BYTES:
            return ModelConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, RegistryError):
        pass
    return None


def _has_pickles(folder: Path) -> bool:
    return any(p.suffix.lower() in PICKLE_SUFFIXES for p in folder.iterdir())


def list_local(models_dir: Path) -> list[ModelEntry]:
    """Every sub-folder of the models folder holding a model file (hidden and staging folders skipped)."""
    if not models_dir.is_dir():
        return []
    entries = []
    for folder in sorted(models_dir.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):  # hidden, or a save still being staged
            continue
        if not any((folder / f).exists() for f in (CONFIG_FILE, WEIGHTS_FILE)) and not _has_pickles(folder):
            continue  # not a model folder at all (e.g. a runs/ or scratch folder)
        entries.append(_entry_from_folder(folder, id=f"local:{folder.name}", source="local"))
    return entries


# The task folders of the shipped models. Only these: a staging folder beside them (say a GPU run's
# ``styles-paper``) must not shadow the shipped models of the same names.
BUILTIN_GROUPS: tuple[str, ...] = ("styles", "sr")


def builtin_folders(root: Path) -> dict[str, Path]:
    """The shipped models, by name: every model folder one level below ``root``'s task folders."""
    groups = [root / name for name in BUILTIN_GROUPS if (root / name).is_dir()]
    return {folder.name: folder for group in groups
            for folder in sorted(group.iterdir()) if folder.is_dir() and (folder / CONFIG_FILE).is_file()}


def list_builtin(root: Path) -> list[ModelEntry]:
    """The models shipped with the project: read-only, always offline; the paintings' styles first."""
    entries = [_entry_from_folder(folder, id=f"builtin:{name}", source="builtin")
               for name, folder in builtin_folders(root).items()]
    return sorted(entries, key=_listing_order)


def _read_cached_config(snapshot: Path) -> dict | None:
    path = snapshot / CONFIG_FILE
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def list_cache(cache_dir: Path) -> list[ModelEntry]:
    """Model repos in the HF cache whose cached ``config.json`` says they are ours (main branch snapshot)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return []
    except OSError as exc:
        logger.warning("cannot scan the HF cache at %s: %s", cache_dir, exc)
        return []
    entries = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda r: ("main" not in r.refs, -r.last_modified))
        snapshot = next((r.snapshot_path for r in revisions if is_our_config(_read_cached_config(r.snapshot_path))), None)
        if snapshot is None:
            continue
        entries.append(_entry_from_folder(Path(snapshot), id=f"cache:{repo.repo_id}", source="cache",
                                          repo_id=repo.repo_id))
    return entries


def hub_entry(model: HubModel) -> ModelEntry:
    summary = model.summary
    task = summary.get("task") if summary.get("task") in TASKS else next((t for t in model.tags if t in TASKS), None)
    scale = summary.get("scale")
    return ModelEntry(
        id=f"hub:{model.repo_id}", source="hub", task=task, architecture=summary.get("architecture"),
        style=summary.get("style") if isinstance(summary.get("style"), str) else None,
        scale=scale if isinstance(scale, int) else None, ready_offline=False, repo_id=model.repo_id,
        loss_network=summary.get("loss_network") if isinstance(summary.get("loss_network"), str) else None,
        sr_loss=summary.get("sr_loss") if summary.get("sr_loss") in ("pixel", "feature") else None,
        variant_of=summary.get("variant_of") if isinstance(summary.get("variant_of"), str) else None,
    )


def merge(local: list[ModelEntry], hub: list[ModelEntry], cache: list[ModelEntry]) -> list[ModelEntry]:
    """One entry per model: a Hub repo that is also cached becomes one "hub" entry, ready offline."""
    cached = {e.repo_id: e for e in cache}
    merged = list(local)
    for entry in hub:
        copy = cached.pop(entry.repo_id, None)
        if copy is not None:
            entry = replace(entry, ready_offline=copy.error is None, path=copy.path, thumbnail=copy.thumbnail,
                            task=entry.task or copy.task, architecture=entry.architecture or copy.architecture,
                            style=entry.style or copy.style, scale=entry.scale or copy.scale,
                            loss_network=entry.loss_network or copy.loss_network, sr_loss=entry.sr_loss or copy.sr_loss,
                            error=f"cached copy: {copy.error}" if copy.error else None)
        merged.append(entry)
    merged += cached.values()
    order = {s: i for i, s in enumerate(SOURCES)}
    return sorted(merged, key=lambda e: (order[e.source], *_listing_order(e)))
