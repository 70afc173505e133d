"""Every Hugging Face Hub call the registry makes, each bounded in time and guarded by a reachability probe.

huggingface_hub's HTTP client has no timeout by default and retries connection errors for ~25 s, and
``list_models`` takes no timeout argument. So: ``probe_hub`` first (one retry-free request); calls that
accept a timeout get ``HUB_TIMEOUT_S``; listing runs in a daemon thread the caller stops waiting for after
``HUB_LIST_DEADLINE_S``. Endpoint, cache folder and offline mode are read at call time (``HF_ENDPOINT``,
``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``), not frozen at import like huggingface_hub's constants.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from perceptual_studio import settings
from perceptual_studio.hub_probe import hub_endpoint, probe_hub

from .card import CARD_DATA_KEY
from .errors import (
    HubUnavailableError,
    InvalidModelIdError,
    ModelFormatError,
    ModelNotFoundError,
    PrivateModelError,
    PublishError,
    UnsafeModelError,
)
from .model_format import (
    CARD_FILE,
    CONFIG_FILE,
    MAX_CARD_BYTES,
    MAX_CONFIG_BYTES,
    MAX_IMAGE_BYTES,
    MODEL_FILES,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    max_weights_bytes,
    refuse_pickles_message,
    validate_folder,
)

logger = logging.getLogger(__name__)

HUB_TIMEOUT_S = 5.0
# A whole model download (a few files, at most PERCEPTUAL_MAX_MODEL_MB) must end; huggingface_hub sets no limit.
HUB_DOWNLOAD_DEADLINE_S = 300.0
HUB_LIST_DEADLINE_S = 6.0
HUB_LIST_LIMIT = 200
OFFLINE_NOTICE = "Hub unreachable: showing local and cached models"

T = TypeVar("T")


def cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(settings.hf_hub_cache() or constants.HF_HUB_CACHE).expanduser()


def validate_repo_id(repo_id: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hf_validate

    try:
        hf_validate(repo_id)
    except HFValidationError as exc:
        raise InvalidModelIdError(f"invalid Hub repo id {repo_id!r}: {exc}") from None
    if "/" not in repo_id:
        raise InvalidModelIdError(f"invalid Hub repo id {repo_id!r}: expected 'owner/name'")
    return repo_id


def hub_status() -> tuple[bool, str | None]:
    """``(usable, notice)``: whether to call the Hub now, and if not, the notice to show."""
    reachable, reason = probe_hub()
    if reachable:
        return True, None
    return False, f"{OFFLINE_NOTICE} ({reason})"


def require_hub() -> str:
    usable, notice = hub_status()
    if not usable:
        raise HubUnavailableError(notice or OFFLINE_NOTICE)
    return hub_endpoint()


def http_errors() -> tuple[type[BaseException], ...]:
    """The HTTP library's error base class: huggingface_hub 2.x uses ``httpx2``, 1.x ``httpx``."""
    try:
        import httpx2

        return (httpx2.HTTPError,)
    except ImportError:
        import httpx

        return (httpx.HTTPError,)


def read_token(token: str | None) -> str | bool | None:
    """The token for listing and downloading: the caller's (typed, or a visitor's OAuth sign-in); on a Space
    otherwise ``False`` (anonymous), so the owner's ``HF_TOKEN`` never lists or serves private models to
    visitors; elsewhere ``None`` (huggingface_hub's own: ``HF_TOKEN`` or the cached login)."""
    if token:
        return token
    return False if settings.running_on_space() else None


def with_anonymous_retry(call: Callable[[str | bool | None], T], token: str | bool | None, what: str) -> T:
    """Run a read with ``token``; if the Hub refuses the token itself (401), read again anonymously and say why.

    The real Hub answers 401 to an invalid or expired token even for public repos."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return call(token)
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status != 401 or token is False:
            raise
    logger.warning("the Hub refused the token (401: invalid or expired) for %s; reading anonymously instead", what)
    return call(False)


def _api(token: str | bool | None = None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_endpoint(), token=token)


def run_with_deadline(func: Callable[[], T], deadline: float) -> T:
    """Run ``func`` in a daemon thread; raise ``TimeoutError`` if it has not finished by ``deadline`` seconds."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = func()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="registry-hub", daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise TimeoutError(f"the Hub did not answer within {deadline:.0f} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


@dataclass(frozen=True)
class HubModel:
    """One repo found on the Hub, with what its card data says about it."""

    repo_id: str
    sha: str | None
    tags: tuple[str, ...]
    summary: dict[str, Any]  # the card's ``perceptual_studio`` block, {} if absent


def _hub_model(info: Any) -> HubModel:
    card = getattr(info, "card_data", None)
    summary = card.get(CARD_DATA_KEY) if card is not None else None
    return HubModel(info.id, getattr(info, "sha", None), tuple(info.tags or ()),
                    summary if isinstance(summary, dict) else {})


def list_hub_models(tag: str, authors: list[str], extra_repo_ids: list[str],
                    token: str | None = None) -> tuple[list[HubModel], list[str]]:
    """Models carrying ``tag`` (by any author, or only ``authors``) plus ``extra_repo_ids``; and notices."""
    from huggingface_hub.errors import HfHubHTTPError

    found: dict[str, HubModel] = {}
    notices: list[str] = []
    token = read_token(token)

    def listing(use: str | bool | None) -> list[Any]:
        api = _api(use)
        return [info for author in authors or [None]
                for info in api.list_models(filter=[tag], author=author, cardData=True, limit=HUB_LIST_LIMIT)]

    for info in with_anonymous_retry(listing, token, "listing"):
        found[info.id] = _hub_model(info)
    for repo_id in extra_repo_ids:
        if repo_id in found:
            continue
        try:
            info = with_anonymous_retry(
                lambda use: _api(use).model_info(validate_repo_id(repo_id), timeout=HUB_TIMEOUT_S), token, repo_id)
            found[repo_id] = _hub_model(info)
        except (InvalidModelIdError, HfHubHTTPError) as exc:
            notices.append(f"extra Hub model {repo_id!r} skipped: {str(exc).splitlines()[0]}")
    return sorted(found.values(), key=lambda m: m.repo_id), notices


def _refuse_private_on_space(info: Any, repo_id: str) -> None:
    if getattr(info, "private", False) and settings.running_on_space():
        # The Space's Hub cache is one folder for every visitor: a private model pulled into it with one
        # visitor's sign-in could be loaded by all the others.
        raise PrivateModelError(f"{repo_id} is private: this shared Space does not copy private models into the cache "
                                "every visitor uses; run the app on your own machine to use it")


def check_remote_files(repo_id: str, token: str | bool | None = None) -> str | None:
    """Refuse a repo before downloading anything: missing weights, pickles only, or files over the limits.

    Returns the commit sha that was checked, so the download fetches exactly those files."""
    info = _api(token).model_info(repo_id, files_metadata=True, timeout=HUB_TIMEOUT_S)
    _refuse_private_on_space(info, repo_id)
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    if WEIGHTS_FILE not in sizes:
        pickles = sorted(f for f in sizes if f.lower().endswith(PICKLE_SUFFIXES))
        if pickles:
            raise UnsafeModelError(refuse_pickles_message(repo_id, pickles))
        raise ModelFormatError(f"{repo_id}: the repo has no {WEIGHTS_FILE}")
    if CONFIG_FILE not in sizes:
        raise ModelFormatError(f"{repo_id}: the repo has no {CONFIG_FILE}")
    limits = {WEIGHTS_FILE: max_weights_bytes(), CONFIG_FILE: MAX_CONFIG_BYTES, CARD_FILE: MAX_CARD_BYTES}
    for name in MODEL_FILES:
        size, limit = sizes.get(name), limits.get(name, MAX_IMAGE_BYTES)
        if size is not None and size > limit:
            raise UnsafeModelError(
                f"{repo_id}: {name} is {size / (1 << 20):.1f} MiB, over the {limit / (1 << 20):.0f} MiB limit"
            )
    return getattr(info, "sha", None)


def download(repo_id: str, token: str | bool | None = None) -> Path:
    """Download a model repo's files (only MODEL_FILES) into the HF cache; return the snapshot folder."""
    from huggingface_hub import snapshot_download

    endpoint = require_hub()
    validate_repo_id(repo_id)

    def fetch(use: str | bool | None) -> str:
        sha = check_remote_files(repo_id, use)
        # Pinned to the checked commit: a push between the check and the download cannot slip other files in.
        return run_with_deadline(
            lambda: snapshot_download(repo_id, revision=sha, allow_patterns=list(MODEL_FILES), cache_dir=cache_dir(),
                                      endpoint=endpoint, token=use, etag_timeout=HUB_TIMEOUT_S),
            HUB_DOWNLOAD_DEADLINE_S)

    folder = Path(with_anonymous_retry(fetch, read_token(token), repo_id))
    _remember_as_main(repo_id, folder.name)
    return folder


@dataclass(frozen=True)
class HubFile:
    """One file downloaded into the HF cache, and the commit it was taken from."""

    repo_id: str
    filename: str
    path: Path
    commit: str | None


def download_file(repo_id: str, filename: str, *, max_bytes: int, token: str | None = None) -> HubFile:
    """Download one file of a model repo (e.g. a foreign model to convert) into the HF cache.

    Its size on the Hub is checked against ``max_bytes`` before anything is downloaded, and the download is
    pinned to the commit that was checked. Every failure is a ``RegistryError`` with one sentence: the Hub
    unreachable or offline (``HubUnavailableError``), no such repo or file (``ModelNotFoundError``), too big
    (``UnsafeModelError``)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    endpoint = require_hub()
    validate_repo_id(repo_id)

    def fetch(use: str | bool | None) -> HubFile:
        info = _api(use).model_info(repo_id, files_metadata=True, timeout=HUB_TIMEOUT_S)
        _refuse_private_on_space(info, repo_id)
        sizes = {s.rfilename: s.size for s in info.siblings or []}
        if filename not in sizes:
            raise ModelNotFoundError(f"{repo_id} on the Hub has no file {filename}")
        size = sizes[filename]
        if size is not None and size > max_bytes:
            raise UnsafeModelError(f"{repo_id}: {filename} is {size / (1 << 20):.1f} MiB, over the "
                                   f"{max_bytes / (1 << 20):.0f} MiB limit (PERCEPTUAL_MAX_MODEL_MB raises it)")
        sha = getattr(info, "sha", None)
        path = run_with_deadline(
            lambda: hf_hub_download(repo_id, filename, revision=sha, cache_dir=cache_dir(), endpoint=endpoint,
                                    token=use, etag_timeout=HUB_TIMEOUT_S),
            HUB_DOWNLOAD_DEADLINE_S)
        return HubFile(repo_id, filename, Path(path), sha)

    try:
        return with_anonymous_retry(fetch, read_token(token), repo_id)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"{repo_id} was not found on the Hub (or is private: pass a token)") from None
    except RemoteEntryNotFoundError:  # not LocalEntryNotFoundError: that one means the Hub was not reached
        raise ModelNotFoundError(f"{repo_id} on the Hub has no file {filename}") from None
    except (HfHubHTTPError, OfflineModeIsEnabled, *http_errors(), OSError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()
        raise HubUnavailableError(
            f"downloading {filename} from {repo_id} failed: {first[0] if first else type(exc).__name__}"
        ) from None


def _remember_as_main(repo_id: str, sha: str) -> None:
    """Point the cache's ``refs/main`` at the pinned commit we fetched (a download by sha does not), so the
    cached copy serves offline, as a download of ``main`` would have."""
    from huggingface_hub.file_download import repo_folder_name

    refs = cache_dir() / repo_folder_name(repo_id=repo_id, repo_type="model") / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(sha)


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of ``repo_id``'s main branch (no network), or None."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=list(MODEL_FILES), cache_dir=cache_dir(),
                                      local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def resolve_token(token: str | None) -> str | None:
    """The token to publish with: the argument (typed, or the visitor's OAuth sign-in); off a Space also
    ``HF_TOKEN`` or the cached ``hf auth login``. On a Space never those: they are the owner's identity."""
    from huggingface_hub import get_token

    if token or settings.running_on_space():
        return token or None
    return settings.hf_token() or get_token()


def scrub(text: str, token: str | None) -> str:
    return text.replace(token, "hf_***") if token else text


@dataclass(frozen=True)
class PublishResult:
    repo_id: str
    url: str
    commit: str | None
    private: bool | None  # None: the namespace's default visibility


def publish_folder(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool | None = None,
                   commit_message: str | None = None) -> PublishResult:
    """Validate a model folder and upload its model files to ``repo_id`` (created if missing).

    ``private`` applies when the repo is created (``None``: the namespace's default, e.g. an organisation's
    private default); an existing repo keeps its visibility. Model files of an earlier upload that this one
    lacks are deleted, so a stale preview never outlives its model. The token never appears in logs or
    error messages.
    """
    folder = Path(folder)
    validate_repo_id(repo_id)
    config = validate_folder(folder)
    if not (folder / CARD_FILE).is_file():
        raise ModelFormatError(f"{folder.name}: missing {CARD_FILE} (save models with registry.save_model)")
    token = resolve_token(token)
    if not token:
        if settings.running_on_space():
            raise PublishError("sign in with Hugging Face (the button above) or type a token with write access: "
                               "this Space never publishes with its owner's token")
        raise PublishError("no Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login`")
    endpoint = require_hub()
    with tempfile.TemporaryDirectory(prefix="registry-publish-") as staging_dir:
        staging = Path(staging_dir)
        # Upload a validated copy holding only the model files: nothing else in the folder leaks out.
        for name in MODEL_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, staging / name)
        # A generated card's usage examples load "local:<folder>"; on the Hub they should load the repo.
        card = (staging / CARD_FILE).read_text(encoding="utf-8")
        card = re.sub(rf"local:{re.escape(folder.name)}(?![A-Za-z0-9._-])", f"hub:{repo_id}", card)
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        try:
            api = _api(token)
            api.create_repo(repo_id, private=private, exist_ok=True)
            # delete_patterns: an earlier upload's model files that this one lacks (an old preview.jpg) go.
            commit = api.upload_folder(folder_path=staging, repo_id=repo_id, delete_patterns=list(MODEL_FILES),
                                       commit_message=commit_message or f"Upload {config.label} ({config.architecture})")
        except Exception as exc:  # noqa: BLE001 - one message, without the token, whatever went wrong
            first = scrub(str(exc), token).strip().splitlines()
            raise PublishError(
                f"publishing {folder.name} to {repo_id} failed: {type(exc).__name__}: {first[0] if first else ''}"
            ) from None
    logger.info("published %s to %s", folder, repo_id)
    return PublishResult(repo_id, f"{endpoint}/{repo_id}", getattr(commit, "oid", None), private)
