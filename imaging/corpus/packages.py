"""The Debian packages the corpus comes from: pinned in ``sources.toml``, fetched by name with the system's
package client (``apt-get download``) or taken from ``.deb`` files given on the command line, and checked
against the pinned sha256 before a byte of them is read."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class PackageError(RuntimeError):
    """A package cannot be fetched or does not match its pin (says why in one line)."""


@dataclass(frozen=True)
class PackagePin:
    name: str
    version: str
    sha256: str

    @property
    def deb_name(self) -> str:
        # apt-get download writes <name>_<version with ':' as '%3a'>_<arch>.deb
        return f"{self.name}_{self.version.replace(':', '%3a')}_all.deb"


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_of_deb(path: Path) -> str:
    """The package name a .deb file's name gives (``name_version_arch.deb``)."""
    match = re.match(r"^([a-z0-9][a-z0-9+.\-]*)_", path.name)
    if not match:
        raise PackageError(f"{path.name}: not a Debian package file name (expected name_version_arch.deb)")
    return match.group(1)


def verify(pin: PackagePin, path: Path) -> Path:
    actual = sha256_of_file(path)
    if actual != pin.sha256:
        raise PackageError(f"{path.name} does not match the pinned {pin.name} {pin.version} (sha256 {actual[:12]}..., "
                           f"expected {pin.sha256[:12]}...); refusing to read it")
    return path


def fetch(pin: PackagePin, cache: Path, given: dict[str, Path]) -> Path:
    """The verified .deb of ``pin``: one given on the command line, one already in ``cache``, or one downloaded
    into ``cache`` with ``apt-get download name=version``."""
    if pin.name in given:
        return verify(pin, given[pin.name])
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / pin.deb_name
    if cached.is_file():
        return verify(pin, cached)
    if shutil.which("apt-get") is None:
        raise PackageError(f"{pin.name}: no apt-get on this machine; download {pin.deb_name} elsewhere and pass it "
                           f"with --deb")
    try:
        result = subprocess.run(["apt-get", "download", f"{pin.name}={pin.version}"], cwd=cache,
                                capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PackageError(f"{pin.name}: apt-get download failed ({exc})") from None
    if result.returncode != 0 or not cached.is_file():
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise PackageError(f"{pin.name} {pin.version}: apt-get download failed ({last}); run 'apt-get update' "
                           f"first, or pass the .deb with --deb")
    return verify(pin, cached)
