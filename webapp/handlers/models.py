"""The Models journey and the model pickers of the other tabs: what the registry lists, as the UI shows it."""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from PIL import Image, ImageOps

from perceptual_studio import settings
from perceptual_studio.networks.vgg import describe_loss_network
from perceptual_studio.registry import RegistryError, describe, list_models, pull
from perceptual_studio.registry.onnx_zoo import ZOO_STYLES, import_zoo_styles
from perceptual_studio.registry.schema import CARD_FILE, STYLE_IMAGE_FILE

from .. import samples, visitor_models

logger = logging.getLogger(__name__)

_RELATIVE_IMAGE = re.compile(r"!\[[^\]]*\]\((?!https?://)[^)]*\)\s*")
_ANY_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_URL_SCHEME = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*):\/\/")


def safe_markdown(text: str) -> str:
    """Markdown from a card or a name others wrote, made inert before every visitor's page renders it: raw HTML
    shown as text (no element, so no tracking pixel or injected link), images reduced to their alt text (no
    request to anyone's server) and bare addresses left unlinked; a card's own Markdown links stay. Gradio's own
    sanitiser keeps ``<img>`` and ``<a>``, so this comes first."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")  # no "<", no tag; ">" still starts a quote
    text = _ANY_IMAGE.sub(lambda m: f"[image: {m.group(1)}]" if m.group(1) else "[image]", text)
    # No link either: a bare address would be turned into one (linkify), a Markdown link would hide where it goes.
    return _URL_SCHEME.sub(lambda m: m.group(1) + "&#58;//", text)
TABLE_HEADERS: list[str] = ["id", "source", "task", "style / scale", "loss network", "ready offline", "status"]
THUMBNAIL_SIDE = 192
INSET_SHARE = 0.4  # the style image inset in a thumbnail: at most this share of its side


@dataclass
class ModelListing:
    """One registry listing, kept as the plain values every tab needs."""

    entries: list[Any] = field(default_factory=list)  # registry.ModelEntry
    notices: list[str] = field(default_factory=list)

    def usable(self, task: str) -> list[Any]:
        return [e for e in self.entries if e.task == task and e.error is None]

    def style_models(self) -> list[Any]:
        """The style models a picker offers: a fast variant is reached through its paper-size model (the
        Network choice), so it is listed only when that model is not."""
        usable = self.usable("style-transfer")
        ids = {e.id for e in usable}
        return [e for e in usable if e.variant_of not in ids]

    def style_ids(self) -> list[str]:
        return [e.id for e in self.style_models()]

    def sr_entries(self, scale: int | None = None) -> list[Any]:
        return [e for e in self.usable("super-resolution") if scale is None or e.scale == int(scale)]


_listing_cache: dict[tuple, tuple[float, ModelListing]] = {}
_LISTING_CACHE_SIZE = 32  # listings kept: the anonymous one and recent signed-in visitors'
_listing_lock = threading.Lock()


def _listing_key(token: str | None) -> tuple:
    """What a listing depends on: the models folder, the HF cache, the Hub settings and whose token asks (a
    signed-in visitor's listing may hold their private models: it is never served to anyone else)."""
    env = settings.hub_environment()
    who = hashlib.sha256(token.encode()).hexdigest() if token else None
    return (str(settings.models_dir()), env, settings.hub_tag(), tuple(settings.hub_authors()),
            tuple(settings.hub_extra_models()), who)


def current_listing(max_age: float = 0.0, token: str | None = None, owner: str | None = None) -> ModelListing:
    """Local, cached and (when reachable) Hub models; never raises for an unreachable Hub.

    ``max_age`` > 0 reuses a listing at most that many seconds old (the events of one page load share one);
    ``token``: a signed-in visitor's, whose listing is kept apart from the anonymous one; ``owner``: in public
    mode, whose visitor models it shows (``visitor_models``: other visitors' are left out).
    """
    key = _listing_key(token)
    with _listing_lock:  # one listing at a time: concurrent page loads wait and share it
        hit = _listing_cache.get(key)
        if hit is not None and time.monotonic() - hit[0] <= max_age:
            return _visible(hit[1], owner)
        listing = list_models(token=token)
        result = ModelListing(list(listing.entries), list(listing.notices))
        if len(_listing_cache) >= _LISTING_CACHE_SIZE:
            _listing_cache.pop(next(iter(_listing_cache)))
        _listing_cache[key] = (time.monotonic(), result)
        return _visible(result, owner)


def _visible(listing: ModelListing, owner: str | None) -> ModelListing:
    """``listing`` as ``owner`` sees it: without other visitors' models (public mode)."""
    hidden = visitor_models.hidden_names(owner)
    if not hidden:
        return listing
    entries = [e for e in listing.entries if not (e.source == "local" and e.id.partition(":")[2] in hidden)]
    return ModelListing(entries, listing.notices)


def sr_choices(listing: ModelListing, scale: int) -> tuple[list[str], str | None, str | None]:
    """SR model ids at ``scale``, and the default pick for the pixel-loss and the feature-loss slot."""
    ids, pixel, feature = [], None, None
    for entry in listing.sr_entries(scale):
        ids.append(entry.id)
        if entry.sr_loss == "pixel" and pixel is None:
            pixel = entry.id
        elif entry.sr_loss == "feature" and feature is None:
            feature = entry.id
    return ids, pixel, feature


def thumbnail(entry: Any) -> Image.Image:
    """The model's result on its preview photo (the shipped gallery: one fixed photo for every style) with its
    style image (the painting) inset in a corner, else its style image alone, small; a labelled tile when it has
    neither or they cannot be read."""
    path = getattr(entry, "thumbnail", None)  # registry.sources: preview.jpg, else style.jpg
    if path is not None:
        try:
            picture = _small(path, THUMBNAIL_SIDE)
            style = Path(path).with_name(STYLE_IMAGE_FILE)
            if style != Path(path) and style.is_file():
                picture = _with_inset(picture, _small(style, int(THUMBNAIL_SIDE * INSET_SHARE)))
            return picture
        except OSError as exc:
            logger.warning("cannot read the thumbnail of %s: %s", entry.id, exc)
    return samples.placeholder_thumbnail(entry.label, THUMBNAIL_SIDE)


def _small(path: Path, side: int) -> Image.Image:
    with Image.open(path) as image:
        picture = image.convert("RGB")
    picture.thumbnail((side, side))
    return picture


def _with_inset(picture: Image.Image, inset: Image.Image, margin: int = 4) -> Image.Image:
    """``inset`` in ``picture``'s lower right corner, in a white frame (seen against any style's colours)."""
    framed = ImageOps.expand(inset, border=2, fill="white")
    picture.paste(framed, (picture.width - framed.width - margin, picture.height - framed.height - margin))
    return picture


def style_title(entry: Any) -> str:
    """What a picker calls a style: the painting and its artist where the model credits one, else its name."""
    credit = getattr(entry, "style_credit", None)
    return f"{credit.title}, {credit.artist}" if credit is not None else entry.label


def gallery_caption(entry: Any) -> str:
    return f"{style_title(entry)} · {entry.source} · {entry.loss_network or 'loss network not recorded'}"


def style_gallery(listing: ModelListing) -> list[tuple[Image.Image, str]]:
    return [(thumbnail(e), gallery_caption(e)) for e in listing.style_models()]


def _task_label(entry: Any) -> str:
    if entry.task is None:
        return "?"
    return "style transfer" if entry.task == "style-transfer" else "super-resolution"


def table_rows(listing: ModelListing) -> list[list[str]]:
    rows = []
    for e in listing.entries:
        label = e.label if e.task else "?"
        credit = getattr(e, "style_credit", None)
        if credit is not None:
            label += f" ({credit.caption})"
        if e.task == "super-resolution":
            label += f" ({e.sr_loss} loss)" if e.sr_loss else ""
        rows.append([e.id, e.source, _task_label(e), label, e.loss_network or "?",
                     "yes" if e.ready_offline else "no", "ok" if e.error is None else f"⚠️ {e.error}"])
    return rows


def records(listing: ModelListing) -> list[dict[str, Any]]:
    """The listing as JSON-ready dicts (the ``/list_models`` endpoint)."""
    out = []
    for e in listing.entries:
        out.append({
            "id": e.id, "source": e.source, "task": e.task, "style": e.style, "scale": e.scale,
            "loss_network": e.loss_network, "loss_network_description": describe_loss_network(e.loss_network),
            "ready_offline": e.ready_offline, "error": e.error,
            "sr_loss": e.sr_loss if e.task == "super-resolution" else None,
            "style_image": asdict(e.style_credit) if getattr(e, "style_credit", None) is not None else None,
        })
    return out


def notices_markdown(listing: ModelListing) -> str:
    lines = [f"{len(listing.entries)} model(s)."]
    lines += [f"- {notice}" for notice in listing.notices]
    if not listing.usable("style-transfer"):
        lines.append("- No style model yet: train one in **Train a style**, or pull one from the Hub below.")
    return "\n".join(lines)


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4:].lstrip()
    return text


def model_card(model_id: str | None, owner: str | None = None) -> tuple[str, Image.Image | None]:
    """The model card's Markdown (front matter removed) and its thumbnail, without downloading anything; in
    public mode another visitor's model (``owner`` is the asker) does not exist."""
    if not model_id:
        return "Select a model to see its card.", None
    visitor_models.check_access(model_id, owner)
    try:
        entry, config = describe(str(model_id))
    except RegistryError as exc:
        raise ValueError(str(exc)) from None
    card = None
    if entry.path is not None and (Path(entry.path) / CARD_FILE).is_file():
        card = (Path(entry.path) / CARD_FILE).read_text(encoding="utf-8", errors="replace")
    header = (f"**{safe_markdown(entry.id)}** · {entry.source} · {_task_label(entry)} · loss network "
              f"`{safe_markdown(entry.loss_network or '?')}`")
    header += f"\n\n*Loss network:* {describe_loss_network(entry.loss_network)}"
    if entry.error:
        header += f"\n\n⚠️ {safe_markdown(entry.error)}"
    if card is None:
        body = "No model card on disk (a Hub model that is not downloaded yet: pull it first)."
        if config:
            body += "\n\n```json\n" + json.dumps(config, indent=2)[:4000] + "\n```"
    else:
        # Relative image links in the card cannot be served from here; the thumbnail is shown beside it.
        body = safe_markdown(_RELATIVE_IMAGE.sub("", _strip_front_matter(card)))
    return f"{header}\n\n{body}", thumbnail(entry)


def pull_model(repo_id: str | None, token: str | None = None) -> str:
    """Download a Hub model into the HF cache (with a signed-in visitor's ``token``, if any); returns a
    sentence saying where it is."""
    repo_id = (repo_id or "").strip()
    if not repo_id:
        raise ValueError("Enter a Hub repo id, e.g. owner/model-name.")
    folder = pull(repo_id, token=token)
    return f"Pulled `{repo_id}` into the local Hugging Face cache (`{folder}`); it now works offline."


ZOO_HEADER = ("**Classic styles from the ONNX model zoo**: pytorch/examples' fast-neural-style network, "
              "downloaded from `onnxmodelzoo/<style>-9` on the Hub and converted to local models.")
_ZOO_STATUS = {"imported": "imported as", "skipped": "already there as", "failed": "⚠️ failed:"}


def import_classic_styles(token: str | None = None, progress: Callable[[float, str], None] | None = None) -> str:
    """Fetch and convert the zoo's five styles (``registry.onnx_zoo``), skipping those already imported; one
    Markdown line per style. An unreachable Hub raises the registry's ``HubUnavailableError``."""
    results = import_zoo_styles(token=token, progress=progress)
    lines = [ZOO_HEADER]
    for result in results:
        detail = f"`{result.model_id}`" if result.status != "failed" else result.message
        lines.append(f"- {ZOO_STYLES[result.style].style}: {_ZOO_STATUS[result.status]} {detail}")
    done = sum(r.status != "failed" for r in results)
    lines.append(f"\n{done} of {len(results)} ready" + ("; they are in every style picker." if done else "."))
    return "\n".join(lines)
