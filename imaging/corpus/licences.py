"""Per-file licences as packages state them: Debian copyright files (``Files:``/``Copyright:``/``License:``
paragraphs, the last matching paragraph wins) and GCompris's per-folder READMEs, which use the same fields
(sometimes listing file names without a ``Files:`` line). Licence names become SPDX ids; a name this module
does not know gives ``None``, and the image is left out."""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

# No SPDX id exists for the public domain; this is the usual LicenseRef form.
PUBLIC_DOMAIN = "LicenseRef-Public-Domain"
_IMAGE_NAME = re.compile(r"^[\w./*-]+\.(webp|jpe?g|png|svg|ogg|wav)$", re.IGNORECASE)
_KNOWN_SPDX = {
    "CC0-1.0", "CC-BY-2.0", "CC-BY-2.5", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-2.0", "CC-BY-SA-2.5", "CC-BY-SA-3.0",
    "CC-BY-SA-4.0", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "Apache-2.0",
    "BSD-3-Clause", "MIT", PUBLIC_DOMAIN,
}
_ALIASES = {
    "PUBLIC-DOMAIN": PUBLIC_DOMAIN, "PUBLICDOMAIN": PUBLIC_DOMAIN, "PD": PUBLIC_DOMAIN, "CC0": "CC0-1.0",
    "GPL-2+": "GPL-2.0-or-later", "GPL-2.0+": "GPL-2.0-or-later", "GPLV2+": "GPL-2.0-or-later",
    "GPL-3+": "GPL-3.0-or-later", "GPLV3-OR-LATER": "GPL-3.0-or-later", "GPLV3+": "GPL-3.0-or-later",
    "GPLV3": "GPL-3.0-only", "GPL-3": "GPL-3.0-only", "GPL-2": "GPL-2.0-only",
}


def spdx_id(name: str) -> str | None:
    """``"CC-BY-SA 4.0"`` -> ``"CC-BY-SA-4.0"``, ``"Public domain"`` -> the public-domain ref, ``"Apache-2.0 AND
    BSD-3-Clause"`` kept as an expression; ``None`` for a licence this module cannot name."""
    parts = re.split(r"\s+(AND|OR)\s+", name.strip())
    if len(parts) > 1:
        ids = [spdx_id(p) if i % 2 == 0 else p for i, p in enumerate(parts)]
        return None if None in ids else " ".join(ids)  # type: ignore[arg-type]
    key = re.sub(r"[\s_]+", "-", name.strip()).upper().replace("-OR-LATER", "-OR-LATER")
    key = re.sub(r"-+", "-", key)
    if key in _ALIASES:
        return _ALIASES[key]
    by_upper = {known.upper(): known for known in _KNOWN_SPDX}
    return by_upper.get(key)


@dataclass
class LicenceParagraph:
    files: list[str] = field(default_factory=list)
    copyright: str = ""
    licence: str = ""
    source: str = ""
    comment: str = ""

    def matches(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) or path.endswith("/" + pattern) for pattern in self.files)


def parse_paragraphs(text: str) -> list[LicenceParagraph]:
    """The paragraphs of a Debian-style copyright text (blank lines between them)."""
    paragraphs: list[LicenceParagraph] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        paragraph, key = LicenceParagraph(), None
        for raw in block.split("\n"):
            line = raw.rstrip()
            if not line.strip():
                continue
            field_match = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if field_match and not raw[0].isspace():
                key, value = field_match.group(1).lower(), field_match.group(2).strip()
                if key == "files":
                    paragraph.files.extend(value.split())
                elif key in ("copyright", "license", "source", "comment"):
                    setattr(paragraph, "licence" if key == "license" else key, value)
                continue
            stripped = line.strip()
            if key == "files" or (_IMAGE_NAME.match(stripped) and key != "comment"):
                paragraph.files.extend(stripped.split())
                if key != "files":
                    key = "files"
            elif key in ("copyright", "comment", "source"):
                current = getattr(paragraph, key)
                setattr(paragraph, key, f"{current}\n{stripped}".strip())
            # continuation lines of License: (the licence's full text) are not needed
        if paragraph.files:
            paragraphs.append(paragraph)
    return paragraphs


def licence_for(path: str, paragraphs: list[LicenceParagraph]) -> LicenceParagraph | None:
    """The paragraph that covers ``path``: the last that matches, as the Debian copyright format says."""
    found = None
    for paragraph in paragraphs:
        if paragraph.matches(path):
            found = paragraph
    return found


def holder(copyright_text: str) -> str:
    """The copyright holders without years, e-mail addresses or a leading "©"/"Copyright"."""
    names = []
    for line in copyright_text.splitlines():
        line = re.sub(r"<[^>]*>", "", line)
        line = re.sub(r"^(copyright\s*)?(\(c\)|©)?\s*", "", line.strip(), flags=re.IGNORECASE)
        line = re.sub(r"^[\d\s,\-–]+", "", line).strip(" ,´'\"")
        if line:
            names.append(line)
    return "; ".join(names)
