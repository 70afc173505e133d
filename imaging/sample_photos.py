"""Licensed photos that installed packages ship: the only real photos an offline machine has.

Every photo used anywhere in the project (examples, training sets, tests, evaluations) comes through
:func:`load_sample_photo`, and :data:`SAMPLE_PHOTOS` records where each comes from and under what licence.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image


class SamplePhotoUnavailable(RuntimeError):
    """The package that ships this photo is not installed (or no longer ships it)."""


@dataclass(frozen=True)
class SamplePhoto:
    name: str
    package: str  # the PyPI distribution that ships it
    source: str  # where that package took it from
    licence: str
    colour: bool = True


SAMPLE_PHOTOS: dict[str, SamplePhoto] = {p.name: p for p in (
    SamplePhoto("astronaut", "scikit-image", "NASA Great Images database (Eileen Collins)", "public domain"),
    SamplePhoto("chelsea", "scikit-image", "Stefan van der Walt", "CC0"),
    SamplePhoto("coffee", "scikit-image", "Rachel Michetti", "CC0"),
    SamplePhoto("rocket", "scikit-image", "SpaceX (launch of DSCOVR on Falcon 9)", "public domain"),
    SamplePhoto("immunohistochemistry", "scikit-image", "scikit-image's sample data", "no known copyright restrictions"),
    SamplePhoto("hubble_deep_field", "scikit-image", "NASA", "public domain"),
    SamplePhoto("retina", "scikit-image", "Wikimedia Commons (Häggström, Medical gallery 2014)", "CC0"),
    SamplePhoto("china", "scikit-learn", "danielbuechele on Flickr (photo 6061409035)", "CC BY 2.0"),
    SamplePhoto("flower", "scikit-learn", "vultilion on Flickr (photo 6056698931)", "CC BY 2.0"),
    SamplePhoto("grace_hopper", "matplotlib", "US Navy photograph (Wikimedia Commons)",
                "public domain (a work of the US federal government)"),
    SamplePhoto("camera", "scikit-image", "Lav Varshney", "CC0", colour=False),
    SamplePhoto("coins", "scikit-image", "Greek coins, Pompeii", "no known copyright restrictions", colour=False),
    SamplePhoto("brick", "scikit-image", "CC0Textures", "CC0", colour=False),
    SamplePhoto("grass", "scikit-image", "CC0Textures", "CC0", colour=False),
    SamplePhoto("gravel", "scikit-image", "CC0Textures", "CC0", colour=False),
    SamplePhoto("clock", "scikit-image", "Stefan van der Walt", "public domain", colour=False),
    SamplePhoto("text", "scikit-image", "Wikipedia", "public domain", colour=False),
)}


def _read(photo: SamplePhoto) -> np.ndarray:
    if photo.package == "scikit-image":
        import skimage.data  # lazily: scikit-image imports in about a second

        return np.asarray(getattr(skimage.data, photo.name)())
    if photo.package == "scikit-learn":
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(f"{photo.name}.jpg"))
    if photo.package == "matplotlib":
        with resources.as_file(resources.files("matplotlib") / "mpl-data" / "sample_data" / f"{photo.name}.jpg") as path:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
    raise SamplePhotoUnavailable(f"no reader for package {photo.package}")


def load_sample_photo(name: str) -> Image.Image:
    """The named photo as an 8-bit RGB image; :class:`SamplePhotoUnavailable` if its package is missing."""
    if name not in SAMPLE_PHOTOS:
        raise SamplePhotoUnavailable(f"no sample photo {name!r} with a recorded licence; choose from "
                                     f"{', '.join(SAMPLE_PHOTOS)}")
    photo = SAMPLE_PHOTOS[name]
    try:
        array = _read(photo)
    except (ImportError, FileNotFoundError, AttributeError, ValueError) as exc:
        raise SamplePhotoUnavailable(f"sample photo {name!r} needs the {photo.package} package: {exc}") from None
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array).convert("RGB")


def attribution(names: list[str] | tuple[str, ...]) -> str:
    """Markdown lines naming each photo's package, source and licence."""
    return "\n".join(f"- `{n}`: {SAMPLE_PHOTOS[n].source}; {SAMPLE_PHOTOS[n].licence} "
                     f"(shipped in the {SAMPLE_PHOTOS[n].package} package)" for n in names)
