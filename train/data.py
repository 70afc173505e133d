"""Training images: folders or Hugging Face datasets, a step-indexed sharded sampler, and the SR degradation.

Style training (Johnson et al. 2016, Sec. 4): each content image is resized so its shorter side is the
training size and centre-cropped to a square (the pytorch/examples recipe; the paper resizes COCO to 256x256
without saying how; cropping keeps the aspect ratio). Super-resolution (Sec. 5): random square patches of the
high-resolution image; the low-resolution input is made on the device by :func:`degrade`.

The data order is a pure function of (seed, step, rank): step ``s`` of rank ``r`` reads global sample
positions ``(s * world + r) * batch + i``, and position ``g`` is image ``perm_e[g mod n]`` of epoch
``e = g // n``, with ``perm_e`` a permutation seeded by (seed, e). Resuming at step ``s`` therefore reads the
same images as an uninterrupted run without replaying the loader, DistributedDataParallel shards are disjoint
within an epoch (as with ``DistributedSampler``), and random crops, seeded by (seed, g), do not depend on
which worker process loaded the image.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from perceptual_studio import hub_probe
from perceptual_studio.imaging.io import ImageInputError, image_to_tensor, load_image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
# snapshot_download matches these with fnmatch, where "*" also crosses "/" (so nested files are included).
HUB_IMAGE_PATTERNS: list[str] = [f"*{s}" for s in IMAGE_SUFFIXES] + [f"*{s.upper()}" for s in IMAGE_SUFFIXES]
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MAX_LISTED_WARNINGS = 10


class DataError(ValueError):
    """The training images cannot be used; the message says which and why."""


# ------------------------------------------------------------------------------------------ finding images


def resolve_image_source(source: str, *, what: str = "content", patterns: list[str] | None = None) -> tuple[Path, str]:
    """A local folder for ``source`` (a folder, or a Hub dataset id downloaded to the HF cache), and a label.
    ``patterns``: which files of a Hub dataset to download (default: every image file)."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DataError(f"the {what} source {source} is a file; give a folder of images (searched recursively)")
        return path, f"folder:{path.resolve().name}"
    if _HUB_ID.match(source):
        return _download_hub_dataset(source, what, patterns or HUB_IMAGE_PATTERNS), f"hf-dataset:{source}"
    raise DataError(f"the {what} folder {source} does not exist (nor is it a Hugging Face dataset id 'owner/name')")


def _download_hub_dataset(repo_id: str, what: str, patterns: list[str]) -> Path:
    """Download the image files of a Hub dataset repo (probing first, so offline fails in seconds)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    reachable, reason = hub_probe.probe_hub()
    if reachable:
        try:
            folder = snapshot_download(repo_id, repo_type="dataset", allow_patterns=patterns)
        except RepositoryNotFoundError:
            raise DataError(f"the {what} dataset {repo_id} was not found on the Hugging Face Hub (or is private: "
                            f"log in with `hf auth login`), and there is no local folder of that name") from None
        except HfHubHTTPError as exc:
            raise DataError(f"downloading the {what} dataset {repo_id} failed: {str(exc).splitlines()[0]}") from None
        return Path(folder)
    try:
        folder = snapshot_download(repo_id, repo_type="dataset", allow_patterns=patterns, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure here means "not cached"
        raise DataError(
            f"{repo_id} is not a local folder, and as a Hugging Face dataset it is not in the HF cache and the Hub "
            f"cannot be reached ({reason}); give a folder of images instead"
        ) from None
    logger.info("Hub unreachable (%s): using the cached copy of %s", reason, repo_id)
    return Path(folder)


def hub_dataset_image_bytes(repo_id: str, patterns: list[str] | None = None) -> int:
    """What downloading Hub dataset ``repo_id``'s image files would fetch, in bytes, from its file metadata (no
    file is downloaded). Raises :class:`DataError` when the Hub cannot answer for it."""
    from fnmatch import fnmatch

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    reachable, reason = hub_probe.probe_hub()
    if not reachable:
        raise DataError(f"the Hugging Face Hub cannot be reached ({reason}), so the dataset {repo_id} cannot be used")
    try:
        info = HfApi().dataset_info(repo_id, files_metadata=True)
    except HfHubHTTPError as exc:
        raise DataError(f"the dataset {repo_id} cannot be read from the Hub ({str(exc).splitlines()[0]})") from None
    wanted = patterns or HUB_IMAGE_PATTERNS
    return sum(s.size or 0 for s in info.siblings or [] if any(fnmatch(s.rfilename, p) for p in wanted))


def find_images(root: str | Path) -> list[Path]:
    """Image files under ``root``, recursively, sorted by path; hidden files and folders are skipped."""
    root = Path(root)
    found = [
        p for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(found)


def _header_problem(path: Path) -> str | None:
    """Why the file cannot be an image (a cheap header-only check), or None."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as exc:  # noqa: BLE001 - any failure to identify the file makes it unusable
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    if width < 1 or height < 1:
        return f"zero size ({width} x {height})"
    return None


def usable_images(paths: Sequence[Path], root: Path | str, *, what: str = "content") -> list[Path]:
    """Drop files whose header cannot be read (logged), and fail clearly when none remain."""
    good, bad = [], []
    for path in paths:
        problem = _header_problem(path)
        (bad if problem else good).append((path, problem))
    for path, problem in bad[:_MAX_LISTED_WARNINGS]:
        logger.warning("skipping unreadable %s image %s (%s)", what, path, problem)
    if len(bad) > _MAX_LISTED_WARNINGS:
        logger.warning("skipping %d more unreadable %s images", len(bad) - _MAX_LISTED_WARNINGS, what)
    if not good:
        example = f" (e.g. {bad[0][0].name}: {bad[0][1]})" if bad else ""
        raise DataError(f"none of the {len(paths)} image files in the {what} folder {root} could be read{example}")
    return [p for p, _ in good]


def list_training_images(source: str, *, what: str = "content") -> tuple[list[Path], str]:
    """All usable images of a folder or Hub dataset id, and a label for the model card."""
    root, label = resolve_image_source(source, what=what)
    paths = find_images(root)
    if not paths:
        raise DataError(
            f"the {what} folder {root} contains no image files (looked recursively for "
            f"{', '.join(IMAGE_SUFFIXES)})"
        )
    return usable_images(paths, root, what=what), label


# ------------------------------------------------------------------------------------------ transforms


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new == image.size:
        return image
    return image.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    image = resize_shorter_side(image, size)
    left = (image.width - size) // 2
    top = (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def random_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """A random ``size`` x ``size`` patch; images smaller than that are first scaled up to fit."""
    if min(image.size) < size:
        image = resize_shorter_side(image, size)
    left = int(rng.integers(0, image.width - size + 1))
    top = int(rng.integers(0, image.height - size + 1))
    return image.crop((left, top, left + size, top + size))


def square_symmetry(patch: torch.Tensor, which: int) -> torch.Tensor:
    """One of the 8 symmetries of a square ``(C, H, W)`` patch: ``which % 4`` quarter turns, then a horizontal
    flip when ``which >= 4``."""
    patch = torch.rot90(patch, which % 4, dims=(-2, -1))
    return patch.flip(-1) if which >= 4 else patch


class ImageFolderDataset(Dataset):
    """Square training crops; indexed by ``(image index, global sample position)`` from :class:`StepBatchSampler`.

    An image that fails to decode (truncated after the header check) is logged and replaced by the next one.
    ``augment`` maps each crop by one of the square's 8 symmetries (flips and quarter turns), seeded by
    (seed, position) like the crop.
    """

    def __init__(self, paths: Sequence[Path], size: int, *, crop: str = "center", seed: int = 0,
                 augment: bool = False, cache_bytes: int = 0):
        if crop not in ("center", "random"):
            raise ValueError(f"crop must be 'center' or 'random', got {crop!r}")
        if not paths:
            raise DataError("no training images")
        self.paths = list(paths)
        self.size = size
        self.crop = crop
        self.seed = seed
        self.augment = augment
        # Decoded images kept in memory, up to cache_bytes in all: a 1920x1080 PNG takes ~40 ms to decode, as
        # long as the rest of a CPU step on a small patch. (Each DataLoader worker keeps its own.)
        self.cache_bytes = cache_bytes
        self._cache: dict[int, Image.Image] = {}
        self._cached_bytes = 0

    def _load(self, index: int) -> Image.Image:
        if index in self._cache:
            return self._cache[index]
        image = load_image(self.paths[index])
        size = image.width * image.height * 3
        if self._cached_bytes + size <= self.cache_bytes:
            self._cache[index] = image
            self._cached_bytes += size
        return image

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        index, position = key
        for attempt in range(len(self.paths)):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                image = self._load((index + attempt) % len(self.paths))
            except ImageInputError as exc:
                logger.warning("skipping unreadable training image %s: %s", path, exc)
                continue
            if self.crop == "center":
                image = center_crop(image, self.size)
            else:
                image = random_crop(image, self.size, np.random.default_rng([self.seed, 1, position]))
            patch = image_to_tensor(image)[0]
            if self.augment:
                patch = square_symmetry(patch, int(np.random.default_rng([self.seed, 2, position]).integers(8)))
            return patch
        raise DataError(f"none of the {len(self.paths)} training images could be decoded")


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields the batches of steps ``start_step .. end_step - 1`` for one rank (module docstring)."""

    def __init__(self, num_images: int, batch_size: int, start_step: int, end_step: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        if num_images < 1:
            raise DataError("no training images")
        self.n, self.batch_size = num_images, batch_size
        self.start_step, self.end_step = start_step, end_step
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, 0, epoch]).permutation(self.n)
        return self._perms[epoch]

    def batch(self, step: int) -> list[tuple[int, int]]:
        first = (step * self.world_size + self.rank) * self.batch_size
        return [(int(self._perm(g // self.n)[g % self.n]), g) for g in range(first, first + self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.end_step):
            yield self.batch(step)


def make_loader(dataset: Dataset, sampler: StepBatchSampler, *, num_workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
                      prefetch_factor=4 if num_workers else None)
