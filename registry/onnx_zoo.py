"""Import fast-neural-style networks exported to ONNX, and the ONNX model zoo's five classic styles from the Hub.

The ONNX model zoo published pytorch/examples' ``fast_neural_style`` network (Johnson et al. 2016 with
instance norm and upsample-then-conv) exported to ONNX at opset 9, trained on five styles; on the Hugging
Face Hub they are ``onnxmodelzoo/<style>-9`` holding ``<style>-9.onnx``. ``registry.onnx_graph`` checks such
a graph operation by operation and maps its weights onto ``networks.legacy.PyTorchExamplesTransformerNet``;
here the result becomes an ordinary model folder (``save_model``) whose card says where it came from: the
repo, file, commit and sha256, the licence as published, the style's artwork as far as known, and the loss
network pytorch/examples trains with. The file's graph is never run (only its shape arithmetic is evaluated,
by onnx's reference evaluator), so onnxruntime is not needed.

Re-importing a zoo style already imported is skipped (no download) unless ``overwrite`` is set; a folder of that
name that holds another model (its record names no import from the zoo) is reported, never served as the zoo's.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from perceptual_studio import settings
from perceptual_studio.hub_probe import hub_endpoint
from perceptual_studio.networks.legacy import ARCHITECTURE_NAME, PyTorchExamplesTransformerNet
from perceptual_studio.networks.vgg import TORCHVISION_IDENTITY
from perceptual_studio.networks.vgg_oxford import sha256_of

from . import hub as hub_mod
from .errors import RegistryError
from .onnx_graph import OnnxTransformer, read_onnx_transformer
from .schema import CONFIG_FILE, max_weights_bytes
from .writing import save_model

logger = logging.getLogger(__name__)

ZOO_OWNER = "onnxmodelzoo"
ZOO_OPSET = 9
ZOO_ORIGIN = "ONNX model zoo (pytorch/examples fast_neural_style)"
# The repos' README files say BSD-3-Clause (SPDX line) but their card front matter says apache-2.0.
ZOO_LICENSE = "bsd-3-clause"
ZOO_LICENSE_NOTE = "BSD-3-Clause (the repo README's SPDX line); apache-2.0 (the repo card's front matter)"
ONNX_ORIGIN = "pytorch/examples fast_neural_style network exported to ONNX"
# pytorch/examples' train(): torchvision's ImageNet VGG-16, these taps.
_LOSS_TAPS = {"content_layers": ["relu2_2"], "style_layers": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]}


@dataclass(frozen=True)
class ZooStyle:
    """One of the zoo's styles: its name there (``pointilism``, sic), ours, and its artwork as far as known."""

    key: str
    style: str
    artwork: str
    weights: dict[str, float] | None = None  # loss weights, where pytorch/examples' README gives them

    @property
    def repo_id(self) -> str:
        return f"{ZOO_OWNER}/{self.key}-{ZOO_OPSET}"

    @property
    def filename(self) -> str:
        return f"{self.key}-{ZOO_OPSET}.onnx"

    @property
    def folder_name(self) -> str:
        return f"zoo-{self.key}"

    @property
    def model_id(self) -> str:
        return f"local:{self.folder_name}"


_UNATTRIBUTED = "pytorch/examples' `{}` style image; its artwork is not attributed there."
ZOO_STYLES: dict[str, ZooStyle] = {s.key: s for s in (
    ZooStyle("candy", "candy", _UNATTRIBUTED.format("candy.jpg")),
    ZooStyle("mosaic", "mosaic", _UNATTRIBUTED.format("mosaic.jpg"), {"content_weight": 1e5, "style_weight": 1e10}),
    ZooStyle("pointilism", "pointillism", "Pointillism, by its name; the zoo names neither the style image nor its "
             "artist, and pytorch/examples did not publish this style."),
    ZooStyle("rain-princess", "rain princess", "*Rain Princess* by Leonid Afremov (pytorch/examples' "
             "`rain-princess.jpg`)."),
    ZooStyle("udnie", "udnie", "*Udnie (Young American Girl, The Dance)* by Francis Picabia, 1913 "
             "(pytorch/examples' `udnie.jpg`)."),
)}

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ZooImport:
    """What happened to one zoo style: ``imported``, ``skipped`` (already there) or ``failed``, and why."""

    style: str
    model_id: str
    status: str
    message: str


def _save(reading: OnnxTransformer, target: Path, *, style: str, training: dict[str, Any], extra: str,
          license: str, overwrite: bool) -> Path:
    model = PyTorchExamplesTransformerNet()
    model.load_state_dict(reading.state, strict=True)
    return save_model(model, target, architecture=ARCHITECTURE_NAME, architecture_args={}, training=training,
                      style=style, license=license, card_extra=extra, overwrite=overwrite)


def _conversion_sentence(reading: OnnxTransformer) -> str:
    return (f"The graph (opset {reading.opset}{', ' + reading.producer if reading.producer else ''}) was checked "
            f"operation by operation against `{ARCHITECTURE_NAME}` and its weights taken by their position along "
            "the graph, so this model computes what the ONNX file computes (there: RGB in [0, 255] in, unclamped "
            "out; here [0, 1] in and out, cropped to the input size).")


def import_onnx_model(path: str | os.PathLike, name: str | None = None, *, folder: str | os.PathLike | None = None,
                      style: str | None = None, overwrite: bool = False) -> Path:
    """Convert an ONNX export of pytorch/examples' ``TransformerNet`` into a model folder; return the folder.

    The folder is ``folder`` if given, else ``<models dir>/<name>``, ``name`` defaulting to the file's stem;
    ``style`` defaults to the stem too. Raises ``ModelFormatError`` naming what is wrong with the file.
    """
    path = Path(path)
    target = Path(folder) if folder is not None else settings.models_dir() / (name or path.stem)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass --overwrite / overwrite=True to replace it)")
    reading = read_onnx_transformer(path)
    digest = sha256_of(path)
    training = {"loss_network": TORCHVISION_IDENTITY, **_LOSS_TAPS, "imported_from": path.name,
                "imported_sha256": digest, "imported_opset": reading.opset, "origin": ONNX_ORIGIN}
    extra = (f"## Provenance\n\nConverted from `{path.name}` (sha256 `{digest[:16]}...`), an ONNX export of "
             f"the pytorch/examples fast_neural_style network, with `python -m registry import-onnx`. "
             f"{_conversion_sentence(reading)} The file records neither its training nor its licence: the loss "
             "network above is what pytorch/examples' code trains with (torchvision's ImageNet VGG-16); check "
             "the file's source for its licence before sharing this model.")
    return _save(reading, target, style=style or path.stem, training=training, extra=extra, license="other",
                 overwrite=overwrite)


def _zoo_card(zoo: ZooStyle, file: hub_mod.HubFile, digest: str, reading: OnnxTransformer) -> str:
    commit = f" at commit `{file.commit[:12]}`" if file.commit else ""
    weights = ""
    if zoo.weights:
        weights = (f" pytorch/examples' README gives this style's loss weights: content "
                   f"{zoo.weights['content_weight']:.0e}, style {zoo.weights['style_weight']:.0e}.")
    elif zoo.key != "pointilism":
        weights = " pytorch/examples' README gives style weights of 5e10 or 1e11 for this style and two others."
    return (
        f"## Provenance\n\nConverted from `{file.filename}` (sha256 `{digest[:16]}...`) of the Hugging Face Hub "
        f"repo [`{zoo.repo_id}`]({hub_endpoint()}/{zoo.repo_id}){commit}: the ONNX model zoo's export (opset "
        f"{ZOO_OPSET}) of a pytorch/examples fast_neural_style network, imported with `python -m registry "
        f"import-zoo` or the app's Models tab. {_conversion_sentence(reading)}\n\n"
        f"**Style.** {zoo.artwork}\n\n"
        "**Training**, as far as known (the file records none of it): the ONNX model zoo says its fast-neural-style "
        "models were trained on the COCO 2014 training images with pytorch/examples' code, whose loss network is "
        "torchvision's ImageNet VGG-16 (content `relu2_2`; style `relu1_2`, `relu2_2`, `relu3_3`, `relu4_3`)."
        f"{weights}\n\n"
        "**Licence.** The repo's README carries `SPDX-License-Identifier: BSD-3-Clause` (the licence of onnx/models "
        "and of pytorch/examples, where these weights come from), while its card's front matter says "
        f"`license: apache-2.0`. This card says `{ZOO_LICENSE}`, after the SPDX line; check both before "
        "redistributing. The artwork a style imitates may carry its own rights."
    )


def import_zoo_style(style: str, *, token: str | None = None, overwrite: bool = False) -> Path:
    """Download ``onnxmodelzoo/<style>-9`` and convert it to ``local:zoo-<style>``; return the folder.

    Raises ``HubUnavailableError`` (Hub unreachable or offline), ``ModelNotFoundError`` (no such repo or file),
    ``ModelFormatError`` (not the expected network), ``FileExistsError`` (folder exists, not ``overwrite``).
    """
    zoo = zoo_style(style)
    target = settings.models_dir() / zoo.folder_name
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass --overwrite / overwrite=True to replace it)")
    file = hub_mod.download_file(zoo.repo_id, zoo.filename, max_bytes=max_weights_bytes(), token=token)
    reading = read_onnx_transformer(file.path)
    digest = sha256_of(file.path)
    training: dict[str, Any] = {
        "loss_network": TORCHVISION_IDENTITY, **_LOSS_TAPS, **(zoo.weights or {}),
        "dataset": "COCO 2014 train (per the ONNX model zoo)",
        "imported_from": f"{zoo.repo_id}/{zoo.filename}", "imported_sha256": digest,
        "imported_revision": file.commit or "unknown", "imported_opset": reading.opset, "origin": ZOO_ORIGIN,
        "source_license": ZOO_LICENSE_NOTE, "style_artwork": zoo.artwork,
    }
    folder = _save(reading, target, style=zoo.style, training=training, extra=_zoo_card(zoo, file, digest, reading),
                   license=ZOO_LICENSE, overwrite=overwrite)
    logger.info("imported %s/%s -> %s", zoo.repo_id, zoo.filename, folder)
    return folder


def is_zoo_import(folder: Path, zoo: ZooStyle) -> bool:
    """Whether ``folder`` holds this importer's conversion of ``zoo`` (its recorded origin and source file), not
    merely a model of the same name."""
    try:
        training = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("training") or {}
    except (OSError, ValueError, AttributeError):
        return False
    return training.get("origin") == ZOO_ORIGIN and training.get("imported_from") == f"{zoo.repo_id}/{zoo.filename}"


def zoo_style(style: str) -> ZooStyle:
    """The zoo style called ``style`` (its Hub spelling; ``rain_princess`` and ``pointillism`` are accepted)."""
    key = style.strip().lower().replace("_", "-").replace(" ", "-")
    key = {"pointillism": "pointilism"}.get(key, key)
    if key not in ZOO_STYLES:
        raise ValueError(f"unknown ONNX model zoo style {style!r}: choose from {', '.join(ZOO_STYLES)}")
    return ZOO_STYLES[key]


def import_zoo_styles(styles: Sequence[str] | None = None, *, token: str | None = None, overwrite: bool = False,
                      progress: Progress | None = None) -> list[ZooImport]:
    """Import the given zoo styles (default: all five); one ``ZooImport`` per style, in order.

    Styles already in the models folder are skipped without a download unless ``overwrite``. When any must
    be downloaded and the Hub cannot be reached, ``HubUnavailableError`` is raised before anything is
    tried; a style that fails on its own (missing repo, unexpected file) is reported and the rest go on.
    """
    keys = dict.fromkeys(zoo_style(s).key for s in (styles or list(ZOO_STYLES)))  # in order, once each
    chosen = [ZOO_STYLES[key] for key in keys]
    if any(overwrite or not is_zoo_import(settings.models_dir() / z.folder_name, z) for z in chosen):
        hub_mod.require_hub()
    results: list[ZooImport] = []
    for index, zoo in enumerate(chosen):
        if progress is not None:
            progress(index / len(chosen), f"{zoo.repo_id}: downloading and converting")
        folder = settings.models_dir() / zoo.folder_name
        if is_zoo_import(folder, zoo) and not overwrite:
            results.append(ZooImport(zoo.key, zoo.model_id, "skipped", f"{zoo.model_id} already exists"))
            continue
        if folder.exists() and not overwrite:  # a model of that name that is not this importer's: never served as it
            results.append(ZooImport(zoo.key, zoo.model_id, "failed", f"{zoo.model_id} is another model, not the "
                                     f"zoo's {zoo.style} (its record names no import from {zoo.repo_id})"))
            continue
        try:
            import_zoo_style(zoo.key, token=token, overwrite=overwrite)
        except (RegistryError, FileExistsError) as exc:
            logger.info("importing %s failed: %s", zoo.repo_id, exc)  # reported in the result
            results.append(ZooImport(zoo.key, zoo.model_id, "failed", str(exc)))
            continue
        results.append(ZooImport(zoo.key, zoo.model_id, "imported", f"{zoo.repo_id}/{zoo.filename} -> {zoo.model_id}"))
    if progress is not None:
        progress(1.0, "done")
    return results
