"""A stand-in Hugging Face Hub server for offline tests.

`FakeHub` is a real HTTP server on 127.0.0.1 (stdlib `ThreadingHTTPServer` in a daemon thread) that speaks
the small subset of the Hub HTTP API that huggingface_hub 2.4's *own* client code uses to publish, discover
and download model repos, and to download dataset repos (``snapshot_download`` / ``hf_hub_download`` with
``repo_type="dataset"``).  Tests point the real client at it (``endpoint=hub.url`` or `hub_env`), so the
real request building, error mapping and cache layout are exercised without any network.

Routes served (repo ids must be ``owner/name``; dataset repos are read-only, seeded with
``add_file(..., repo_type="dataset")``, and live in their own namespace: a model and a dataset may share an id):

=========================================================  ====================================================
``POST /api/repos/create``                                 ``create_repo`` (409 when it exists: ``exist_ok``)
``POST /api/validate-yaml``                                README front matter check done by ``create_commit``
``POST /api/models/{id}/preupload/main``                   ``uploadMode: "lfs"`` as the real Hub answers it: a file
                                                           over 10 MiB, a binary one (a NUL byte in the sample) or
                                                           one a new repo's ``.gitattributes`` sends to LFS
                                                           (``*.safetensors``, ``*.onnx``, ...); else "regular"
``POST /{id}.git/info/lfs/objects/batch``                  LFS batch API, ``basic`` transfer: upload actions for
``PUT /lfs-upload/{oid}``                                  objects it lacks; the PUT body must hash to the oid
``GET /api/models/{id}/xet-write-token/{rev}``             refused (501): Xet storage is not emulated, so tests set
                                                           ``HF_HUB_DISABLE_XET`` (`hub_env` does) and 2.4 takes its
                                                           LFS path
``POST /api/models/{id}/commit/main``                      NDJSON: ``header``, ``file`` (base64; refused over 10 MiB
                                                           or for an LFS file, as the Hub refuses them), ``lfsFile``
                                                           (an uploaded LFS object), ``deletedFile``, ``deletedFolder``
``GET /api/models``                                        ``list_models``: filter (tags, AND), author, search,
                                                           pipeline_tag, sort, limit, full / cardData / expand
``GET /api/models/{id}[/revision/{rev}]``                  ``model_info`` / ``repo_info`` (siblings; sizes and
                                                           blob ids with ``blobs=True`` i.e. ``files_metadata``)
``GET /api/models/{id}/tree/{rev}[/{path}]``               ``list_repo_tree`` (``snapshot_download`` needs it)
``HEAD|GET /{id}/resolve/{rev}/{path}``                    ``hf_hub_download``: ETag (git blob sha1),
                                                           X-Repo-Commit, Content-Length
``GET /api/datasets/{id}[/revision/{rev}]``                ``dataset_info`` / ``repo_info(repo_type="dataset")``:
                                                           the first call of a dataset ``snapshot_download``
                                                           (siblings always; sizes, blob ids, lfs with ``blobs=True``)
``GET /api/datasets/{id}/tree/{rev}[/{path}]``             ``list_repo_tree(repo_type="dataset")`` (recursive listing
                                                           ``snapshot_download`` filters with ``allow_patterns``)
``HEAD|GET /datasets/{id}/resolve/{rev}/{path}``           ``hf_hub_download(repo_type="dataset")``: the same headers
                                                           as the model route (``hf_hub_url`` prefixes ``datasets/``)
``GET /api/whoami-v2``, ``GET /api/agent-harnesses``,      harmless answers (2.x fetches the agent registry once
``* /api/telemetry/...``                                   per process unless telemetry is disabled)
=========================================================  ====================================================

Errors carry the ``X-Error-Code`` header the client maps to exceptions: ``RepoNotFound`` ->
`RepositoryNotFoundError`, ``RevisionNotFound`` -> `RevisionNotFoundError`, ``EntryNotFound`` ->
`RemoteEntryNotFoundError`.  Writes need ``Authorization: Bearer <token>`` (any token, or exactly
``required_token`` when given; else 401 -> `HfHubHTTPError`).  Private repos are invisible (404 RepoNotFound,
absent from listings) to requests without such a token.  Every commit's files are kept: a
revision is ``main`` or any commit sha (a download pinned to a checked sha gets that commit).  Tokens can be
checked as the real Hub does (``tokens=``: 401 for an unknown token on every request, 403 for a namespace it
cannot write), and organisations can default to private repos (``private_by_default=``).  Tags are the README ``tags:`` plus ``library_name``,
``pipeline_tag``, ``license:<id>`` and ``safetensors`` when a ``.safetensors`` file is present.  Any other
route answers 501 naming it (not 500: the client retries 500, 502, 503 and 504 with backoff).  LFS files are
listed with their ``lfs`` block (sha256, size) in the tree and in ``files_metadata`` siblings, and resolve with
``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``, as on the Hub; a dataset repo also sends its media
formats (``*.png``, ``*.jpg``, ``*.wav``, ...) to LFS, as the ``.gitattributes`` of a new dataset repo does.
``GET /api/datasets`` (``list_datasets``) is not served (501).

Use: ``with FakeHub(tmp_path / "hub") as hub, hub_env(hub.url, cache_dir=tmp_path / "cache"): ...`` (see
`hub_env` for why patching the environment alone is not enough once huggingface_hub is imported).
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

_REPO = r"(?P<repo>[^/]+/[^/]+)"
_REV = r"(?P<rev>[^/]+)"
_FRONT_MATTER = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
_BAD_TOKEN = "Invalid credentials in Authorization header"  # the client turns this 401 into a plain HfHubHTTPError
INLINE_LIMIT = 10 * 1024 * 1024  # the Hub's limit for a file sent inline in a commit
# The LFS patterns of the .gitattributes the Hub writes into a new model repo (the binary formats among them).
_LFS_PATTERNS = ("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.mlmodel",
                 "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl",
                 "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip",
                 "*.zst", "*tfevents*")
# A new dataset repo's .gitattributes adds these media formats (and compressed archives) to the list above.
_DATASET_LFS_PATTERNS = _LFS_PATTERNS + (
    "*.lz4", "*.mds", "*.tar.*", "*.pcm", "*.sam", "*.raw", "*.aac", "*.flac", "*.mp3", "*.ogg", "*.wav",
    "*.bmp", "*.gif", "*.png", "*.tiff", "*.jpg", "*.jpeg", "*.webp", "*.mp4", "*.webm")
REPO_TYPES = ("model", "dataset")  # the kinds FakeHub serves; the Hub's URL prefix for a dataset is "datasets/"

Response = tuple[int, dict[str, str], bytes]


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub uses as ETag and oid of a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def needs_lfs(path: str, size: int, sample: bytes, patterns: tuple[str, ...] = _LFS_PATTERNS) -> bool:
    """The Hub's rule for a file that may not travel inline: too big, binary, or an LFS pattern of the repo
    (``patterns``: a model repo's by default; `_DATASET_LFS_PATTERNS` for a dataset repo)."""
    name = path.rsplit("/", 1)[-1]
    return size > 0 and (size > INLINE_LIMIT or b"\0" in sample[:512]
                         or any(fnmatch.fnmatch(name, pattern) for pattern in patterns))


def _lfs_block(path: str, data: bytes, sha_key: str, patterns: tuple[str, ...] = _LFS_PATTERNS) -> dict[str, Any]:
    if not needs_lfs(path, len(data), data, patterns):
        return {}
    return {"lfs": {sha_key: hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, default=str).encode()  # default=str: YAML dates in cardData
    return status, {"Content-Type": "application/json", **(headers or {})}, body


def _error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> Response:
    header_safe = " ".join(message.encode("ascii", "replace").decode().split())  # headers are latin-1, one line
    extra = {"X-Error-Message": header_safe, **({"X-Error-Code": code} if code else {}), **(headers or {})}
    return _json(status, {"error": message}, extra)


def _front_matter(readme: bytes | None) -> dict:
    match = _FRONT_MATTER.match(readme.decode("utf-8", "replace")) if readme else None
    data = yaml.safe_load(match.group(2)) if match else None
    return data if isinstance(data, dict) else {}


class _Repo:
    def __init__(self, repo_id: str, folder: pathlib.Path, private: bool, repo_type: str = "model") -> None:
        self.repo_id, self.folder, self.private, self.repo_type = repo_id, folder, private, repo_type
        self.lfs_patterns = _DATASET_LFS_PATTERNS if repo_type == "dataset" else _LFS_PATTERNS
        self.created = self.modified = _now()
        self.sha = secrets.token_hex(20)
        folder.mkdir(parents=True, exist_ok=True)
        # Every commit's files, as the real Hub keeps them: a download pinned to an older sha gets that commit.
        self.history: dict[str, dict[str, bytes]] = {self.sha: {}}

    def bump(self) -> None:
        self.sha, self.modified = secrets.token_hex(20), _now()
        self.history[self.sha] = {name: self.read(name) or b"" for name in self.files()}

    def at(self, sha: str) -> "_Repo":
        """A read-only view of an earlier commit."""
        return _Commit(self, sha)

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def read(self, path: str) -> bytes | None:
        target = self.folder / path
        safe = path and not path.startswith("/") and ".." not in path.split("/")
        return target.read_bytes() if safe and target.is_file() else None


class _Commit(_Repo):
    def __init__(self, repo: _Repo, sha: str) -> None:  # noqa: D107 - no folder of its own
        self.repo_id, self.folder, self.private = repo.repo_id, repo.folder, repo.private
        self.repo_type, self.lfs_patterns = repo.repo_type, repo.lfs_patterns
        self.created, self.modified, self.sha, self._files = repo.created, repo.modified, sha, repo.history[sha]

    def files(self) -> list[str]:
        return sorted(self._files)

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)


class FakeHub:
    """In-process Hub stand-in; see the module docstring for what it serves."""

    def __init__(self, root: pathlib.Path | None = None, required_token: str | None = None, user: str = "fake-user",
                 tokens: dict[str, tuple[str, ...]] | None = None, private_by_default: tuple[str, ...] = ()):
        """``tokens``: the valid tokens and the namespaces each may write, as the real Hub checks them: any other
        token gets 401 on every request, public reads too; writing elsewhere gets 403. ``private_by_default``:
        namespaces (organisations) whose new repos are private unless the request says otherwise."""
        self._tmp = None if root is not None else tempfile.TemporaryDirectory(prefix="fakehub-")
        self.root = pathlib.Path(root if root is not None else self._tmp.name)  # type: ignore[union-attr]
        self.required_token, self.user = required_token, user
        self.tokens, self.private_by_default = tokens, tuple(private_by_default)
        self.requests: list[tuple[str, str]] = []  # (method, path as sent, without query), in arrival order
        self.repos: dict[str, _Repo] = {}  # model repos (kept under this name for existing callers)
        self.datasets: dict[str, _Repo] = {}  # dataset repos: a separate namespace, as on the Hub
        self.lfs_objects: dict[str, bytes] = {}  # sha256 hex -> content, uploaded through the LFS batch API
        self.url = ""
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._routes = [
            ("GET", r"/api/agent-harnesses", lambda **_: _json(200, {"standardEnvVars": [], "harnesses": {}})),
            (None, r"/api/telemetry/.*", lambda **_: _json(200, {})),
            ("GET", r"/api/whoami-v2", self._whoami),
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("GET", r"/api/models", self._list_models),
            ("GET", rf"/api/models/{_REPO}(?:/revision/{_REV})?", self._model_info),
            ("GET", rf"/api/models/{_REPO}/tree/{_REV}(?:/(?P<path>.*))?", self._tree),
            ("POST", rf"/api/models/{_REPO}/preupload/{_REV}", self._preupload),
            ("POST", rf"/api/models/{_REPO}/commit/{_REV}", self._commit),
            ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", self._lfs_batch),
            ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", self._lfs_upload),
            ("GET", rf"/api/(?:models|datasets)/{_REPO}/xet-(?:read|write)-token/{_REV}",
             lambda **_: _error(501, "FakeHub does not emulate Xet storage: set HF_HUB_DISABLE_XET=1 (hub_env does)")),
            ("GET", rf"/api/datasets/{_REPO}(?:/revision/{_REV})?", self._dataset_info),
            ("GET", rf"/api/datasets/{_REPO}/tree/{_REV}(?:/(?P<path>.*))?",
             lambda **kw: self._tree(repo_type="dataset", **kw)),
            ("GET", rf"/datasets/{_REPO}/resolve/{_REV}/(?P<path>.+)",
             lambda **kw: self._resolve(repo_type="dataset", **kw)),
            ("GET", rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)", self._resolve),
        ]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fakehub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------------ seeding
    def add_file(self, repo_id: str, path_in_repo: str, data: bytes, *, private: bool | None = None,
                 repo_type: str = "model") -> None:
        """Write one file straight into a repo (created if missing) as a new commit. ``repo_type``: "model" or
        "dataset" (separate namespaces: a model and a dataset may share an id, as on the Hub)."""
        with self._lock:
            repo = self._repo_or_create(repo_id, bool(private), repo_type)
            target = repo.folder / path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            repo.bump()

    def _store(self, repo_type: str) -> dict[str, _Repo]:
        if repo_type not in REPO_TYPES:
            raise ValueError(f"FakeHub serves {' and '.join(REPO_TYPES)} repos, not {repo_type!r}")
        return self.datasets if repo_type == "dataset" else self.repos

    def _repo_or_create(self, repo_id: str, private: bool, repo_type: str = "model") -> _Repo:
        store = self._store(repo_type)
        if repo_id not in store:
            # Model repos keep their old place (root/owner/name); datasets live under root/.datasets, a name no Hub
            # namespace can take (ids start with a word character), so the two trees never overlap.
            folder = self.root / repo_id if repo_type == "model" else self.root / ".datasets" / repo_id
            store[repo_id] = _Repo(repo_id, folder, private, repo_type)
        return store[repo_id]

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        parts = urlsplit(raw_path)
        self.requests.append((method, parts.path))
        query = parse_qs(parts.query)
        auth = headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token and self.tokens is not None and token not in self.tokens:
            return _error(401, _BAD_TOKEN)  # the real Hub refuses invalid credentials even for public repos
        authorized = bool(token) and (self.required_token is None or token == self.required_token)
        for verb, pattern, func in self._routes:
            match = re.fullmatch(pattern, parts.path)
            if match and (verb is None or verb == method or (verb == "GET" and method == "HEAD")):
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                with self._lock:
                    return func(query=query, body=body, authorized=authorized, token=token, **args)
        return _error(501, f"FakeHub does not serve {method} {parts.path}")  # 501: not retried by the client

    def _visible(self, repo_id: str, authorized: bool, repo_type: str = "model") -> _Repo | None:
        repo = self._store(repo_type).get(repo_id)
        return repo if repo is not None and (authorized or not repo.private) else None

    def _lookup(self, repo_id: str, rev: str | None, authorized: bool, repo_type: str = "model") -> _Repo | Response:
        repo = self._visible(repo_id, authorized, repo_type)
        if repo is None:
            return _error(404, "Repository not found", "RepoNotFound")
        if rev in (None, "main", repo.sha):
            return repo
        if rev in repo.history:
            return repo.at(rev)
        return _error(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    # ------------------------------------------------------------------ info
    def _info(self, repo: _Repo, *, siblings: bool, blobs: bool, card: bool) -> dict:
        files = repo.files()
        meta = _front_matter(repo.read("README.md"))
        raw_tags = meta.get("tags") or []
        tags = [raw_tags] if isinstance(raw_tags, str) else [str(t) for t in raw_tags]
        tags += [t for t in (meta.get("library_name"), meta.get("pipeline_tag")) if t]
        tags += [f"license:{meta['license']}"] if isinstance(meta.get("license"), str) else []
        tags += ["safetensors"] if any(f.endswith(".safetensors") for f in files) else []
        info: dict[str, Any] = {
            "_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
            "sha": repo.sha, "lastModified": repo.modified, "createdAt": repo.created, "private": repo.private,
            "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": list(dict.fromkeys(tags)),
            "pipeline_tag": meta.get("pipeline_tag"), "library_name": meta.get("library_name"),
        }
        if card:
            info["cardData"] = meta
        if siblings:
            info["siblings"] = [{"rfilename": f} for f in files]
            if blobs:
                for sibling in info["siblings"]:
                    data = repo.read(sibling["rfilename"]) or b""
                    sibling.update(size=len(data), blobId=git_blob_sha1(data),
                                   **_lfs_block(sibling["rfilename"], data, "sha256", repo.lfs_patterns))
        return info

    def _dataset_payload(self, repo: _Repo, *, blobs: bool) -> dict:
        """What ``GET /api/datasets/{id}`` answers (the fields `DatasetInfo` reads): no modelId, pipeline_tag or
        library_name; tags from the card (``tags``, ``license:``, ``task_categories:``), siblings always."""
        meta = _front_matter(repo.read("README.md"))
        raw_tags = meta.get("tags") or []
        tags = [raw_tags] if isinstance(raw_tags, str) else [str(t) for t in raw_tags]
        tags += [f"license:{meta['license']}"] if isinstance(meta.get("license"), str) else []
        categories = meta.get("task_categories") or []
        tags += [f"task_categories:{c}" for c in ([categories] if isinstance(categories, str) else categories)]
        siblings = []
        for name in repo.files():
            sibling: dict[str, Any] = {"rfilename": name}
            if blobs:
                data = repo.read(name) or b""
                sibling.update(size=len(data), blobId=git_blob_sha1(data),
                               **_lfs_block(name, data, "sha256", repo.lfs_patterns))
            siblings.append(sibling)
        return {"_id": repo.sha[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": repo.sha,
                "lastModified": repo.modified, "createdAt": repo.created, "private": repo.private, "gated": False,
                "disabled": False, "downloads": 0, "likes": 0, "tags": list(dict.fromkeys(tags)), "cardData": meta,
                "siblings": siblings, "usedStorage": sum(len(repo.read(name) or b"") for name in repo.files())}

    def _dataset_info(self, repo: str, query: dict, authorized: bool, rev: str | None = None, **_: Any) -> Response:
        found = self._lookup(repo, rev, authorized, "dataset")
        if not isinstance(found, _Repo):
            return found
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        return _json(200, self._dataset_payload(found, blobs=blobs))

    def _model_info(self, repo: str, query: dict, authorized: bool, rev: str | None = None, **_: Any) -> Response:
        found = self._lookup(repo, rev, authorized)
        if not isinstance(found, _Repo):
            return found
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        return _json(200, self._info(found, siblings=True, blobs=blobs, card=True))

    def _list_models(self, query: dict, authorized: bool, **_: Any) -> Response:
        expand = query.get("expand", [])
        full = query.get("full", ["false"])[0].lower() == "true"
        card = full or query.get("cardData", ["false"])[0].lower() == "true" or "cardData" in expand
        found = []
        for repo_id in sorted(self.repos):
            repo = self._visible(repo_id, authorized)
            if repo is None:
                continue
            info = self._info(repo, siblings=full or "siblings" in expand, blobs=False, card=card)
            if not all(f in info["tags"] for f in query.get("filter", [])):
                continue
            if "author" in query and info["author"] != query["author"][0]:
                continue
            if "search" in query and query["search"][0].lower() not in repo_id.lower():
                continue
            if "pipeline_tag" in query and info["pipeline_tag"] != query["pipeline_tag"][0]:
                continue
            found.append(info)
        sort = query.get("sort", [None])[0]
        if sort in ("lastModified", "createdAt"):
            found.sort(key=lambda info: info[sort], reverse=True)
        if "limit" in query:
            found = found[: int(query["limit"][0])]
        return _json(200, found)

    def _tree(self, repo: str, rev: str, query: dict, authorized: bool, path: str = "", repo_type: str = "model",
              **_: Any) -> Response:
        found = self._lookup(repo, rev, authorized, repo_type)
        if not isinstance(found, _Repo):
            return found
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        entries: dict[str, dict] = {}
        for name in found.files():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].split("/")
            for depth in range(1, len(rest)):  # folders on the way
                folder = prefix + "/".join(rest[:depth])
                entries.setdefault(folder, {"type": "directory", "oid": git_blob_sha1(folder.encode()), "size": 0,
                                            "path": folder})
                if not recursive:
                    break
            if recursive or len(rest) == 1:
                data = found.read(name) or b""
                entries[name] = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": name,
                                 **_lfs_block(name, data, "oid", found.lfs_patterns)}
        if prefix and not entries:
            return _error(404, f"{path} does not exist on {rev}", "EntryNotFound")
        return _json(200, sorted(entries.values(), key=lambda e: e["path"]))

    def _resolve(self, repo: str, rev: str, path: str, authorized: bool, repo_type: str = "model",
                 **_: Any) -> Response:
        found = self._lookup(repo, rev, authorized, repo_type)
        if not isinstance(found, _Repo):
            return found
        data = found.read(path)
        if data is None:
            return _error(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": found.sha})
        headers = {"Content-Type": "application/octet-stream", "ETag": f'"{git_blob_sha1(data)}"',
                   "X-Repo-Commit": found.sha}
        if needs_lfs(path, len(data), data, found.lfs_patterns):
            headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))})
        return 200, headers, data

    # ------------------------------------------------------------------ writes
    def _whoami(self, authorized: bool, **_: Any) -> Response:
        if not authorized:
            return _error(401, _BAD_TOKEN)
        token_info = {"type": "access_token", "accessToken": {"displayName": "fakehub", "role": "write"}}
        return _json(200, {"type": "user", "id": "0" * 24, "name": self.user, "fullname": "Fake User", "orgs": [],
                           "auth": token_info})

    def _may_write(self, token: str | None, namespace: str) -> bool:
        return self.tokens is None or namespace in self.tokens.get(token or "", ())

    def _create_repo(self, body: bytes, authorized: bool, token: str | None = None, **_: Any) -> Response:
        if not authorized:
            return _error(401, _BAD_TOKEN)
        payload = json.loads(body or b"{}")
        if payload.get("type") not in (None, "model"):
            return _error(400, "FakeHub creates model repos only (seed a dataset with add_file(..., repo_type=\"dataset\"))")
        namespace = payload.get("organization") or self.user
        repo_id = f"{namespace}/{payload['name']}"
        url = f"{self.url}/{repo_id}"
        if not self._may_write(token, namespace):
            return _error(403, f"You don't have the rights to create a model under the namespace \"{namespace}\"")
        if repo_id in self.repos:
            return _json(409, {"error": "You already created this model repo", "url": url})
        # No "visibility" in the request: the namespace's default, as for an organisation set to private.
        visibility = payload.get("visibility") or ("private" if namespace in self.private_by_default else "public")
        self._repo_or_create(repo_id, visibility == "private")
        return _json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, body: bytes, **_: Any) -> Response:
        try:
            _front_matter(json.loads(body).get("content", "").encode())
        except yaml.YAMLError as exc:
            return _json(400, {"errors": [{"message": str(exc)}], "warnings": []})
        return _json(200, {"errors": [], "warnings": []})

    def _writable(self, repo_id: str, rev: str, authorized: bool, token: str | None = None) -> _Repo | Response:
        if not authorized:
            return _error(401, _BAD_TOKEN)
        if not self._may_write(token, repo_id.split("/")[0]):
            return _error(403, f"You don't have the rights to write to {repo_id}")
        found = self._lookup(repo_id, None, authorized)
        if isinstance(found, _Repo) and rev != "main":
            return _error(404, f"FakeHub only commits to main, not {rev}", "RevisionNotFound")
        return found

    def _preupload(self, repo: str, rev: str, body: bytes, authorized: bool, token: str | None = None, **_: Any) -> Response:
        found = self._writable(repo, rev, authorized, token)
        if not isinstance(found, _Repo):
            return found
        files = []
        for entry in json.loads(body)["files"]:
            existing = found.read(entry["path"])
            sample = base64.b64decode(entry.get("sample", ""))
            mode = "lfs" if needs_lfs(entry["path"], int(entry.get("size", len(sample))), sample) else "regular"
            # The remote oid lets the client skip unchanged files: sha256 for an LFS file, git blob sha1 otherwise.
            oid = None if existing is None else (hashlib.sha256(existing).hexdigest() if mode == "lfs"
                                                 else git_blob_sha1(existing))
            files.append({"path": entry["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return _json(200, {"files": files, "commitOid": found.sha})

    def _commit(self, repo: str, rev: str, body: bytes, query: dict, authorized: bool, token: str | None = None,
                **_: Any) -> Response:
        found = self._writable(repo, rev, authorized, token)
        if not isinstance(found, _Repo):
            return found
        if "create_pr" in query:
            return _error(400, "FakeHub does not support pull requests")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        if header.get("parentCommit") not in (None, found.sha):
            return _error(412, "A commit has happened since. Please refresh and try again.")
        writes: dict[str, bytes] = {}
        deletes: list[pathlib.Path] = []
        for line in lines:
            key, value = line["key"], line["value"]
            path = value.get("path", "").strip("/")
            if key == "header":
                continue
            if not path or ".." in path.split("/"):
                return _error(400, f"Invalid path: {path!r}")
            if key == "file":
                data = base64.b64decode(value["content"])
                if len(data) > INLINE_LIMIT:
                    return _error(400, "Your push was rejected because it contains files larger than 10 MiB. "
                                       "Please use https://git-lfs.github.com/ to store large files.")
                if needs_lfs(path, len(data), data):
                    return _error(400, "Your push was rejected because it contains binary files. Please use "
                                       "https://huggingface.co/docs/hub/xet to store binary files.")
                writes[path] = data
            elif key == "lfsFile":
                if value.get("algo") != "sha256" or value.get("oid") not in self.lfs_objects:
                    return _error(400, f"LFS object {value.get('oid')} for {path} was never uploaded")
                writes[path] = self.lfs_objects[value["oid"]]
            elif key in ("deletedFile", "deletedFolder"):
                target = found.folder / path
                if not (target.is_file() if key == "deletedFile" else target.is_dir()):
                    return _error(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                deletes.append(target)
            else:
                return _error(400, f"FakeHub does not accept {key} operations")
        for target in deletes:
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        for path, data in writes.items():
            (found.folder / path).parent.mkdir(parents=True, exist_ok=True)
            (found.folder / path).write_bytes(data)
        found.bump()
        commit_url = f"{self.url}/{repo}/commit/{found.sha}"
        return _json(200, {"success": True, "commitOid": found.sha, "commitUrl": commit_url, "hookOutput": ""})


    def _lfs_batch(self, repo: str, body: bytes, authorized: bool, token: str | None = None, **_: Any) -> Response:
        found = self._writable(repo, "main", authorized, token)
        if not isinstance(found, _Repo):
            return found
        request = json.loads(body)
        if request.get("operation") != "upload" or "basic" not in request.get("transfers", ["basic"]):
            return _error(422, "FakeHub's LFS batch API only offers basic uploads")
        objects = []
        for obj in request.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_objects:  # else: already stored, nothing to send
                entry["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}", "expires_in": 900}}
            objects.append(entry)
        return _json(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _lfs_upload(self, oid: str, body: bytes, **_: Any) -> Response:
        if hashlib.sha256(body).hexdigest() != oid:  # like S3 with a signed checksum: a corrupt upload is refused
            return _error(400, f"uploaded content does not hash to {oid}")
        self.lfs_objects[oid] = body
        return 200, {}, b""


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.0"  # one request per connection: once stopped, no pooled connection answers

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _serve(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, headers, payload = self.hub.handle(self.command, self.path, self.headers, body)
        except Exception as exc:  # a server bug: 501, since the client retries 500s with backoff for ~20 s
            status, headers, payload = _error(501, f"FakeHub error: {exc!r}")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve


@contextlib.contextmanager
def hub_env(url: str, *, cache_dir: str | os.PathLike | None = None, offline: bool = False) -> Iterator[None]:
    """Point an already-imported huggingface_hub at `url` (and optionally a cache folder), then restore.

    huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE and HF_HUB_DISABLE_TELEMETRY into
    `huggingface_hub.constants` at import time, so setting the environment inside a running process is not
    enough.  This patches the constants the 2.4 code reads at call time (ENDPOINT, HUGGINGFACE_CO_URL_TEMPLATE
    for `hf_hub_download`, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_HUB_DISABLE_TELEMETRY, HF_HUB_DISABLE_XET), the endpoint of the
    module-level `HfApi` behind `huggingface_hub.list_models` / `create_repo` / `upload_folder` / ... (bound at
    import), and the environment for subprocesses.  `HfApi` objects created earlier keep their old endpoint.
    """
    from huggingface_hub import constants, hf_api

    url = url.rstrip("/")
    values = {"ENDPOINT": url, "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
              "HF_HUB_OFFLINE": offline, "HF_HUB_DISABLE_TELEMETRY": True, "HF_HUB_DISABLE_XET": True}
    env = {"HF_ENDPOINT": url, "HF_HUB_OFFLINE": "1" if offline else "0", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_XET": "1"}
    if cache_dir is not None:
        values["HF_HUB_CACHE"] = env["HF_HUB_CACHE"] = str(cache_dir)
    saved_values = {name: getattr(constants, name) for name in values}
    saved_env = {name: os.environ.get(name) for name in env}
    saved_endpoint = hf_api.api.endpoint
    for name, value in values.items():
        setattr(constants, name, value)
    os.environ.update(env)
    hf_api.api.endpoint = url
    try:
        yield
    finally:
        for name, value in saved_values.items():
            setattr(constants, name, value)
        for name, old in saved_env.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        hf_api.api.endpoint = saved_endpoint
