"""Uploaded files of the apps (REPERNET's legal documents, SAM's DCE and responses): the type read
from the content (never from the name or the browser), size limits, a SHA-256, and an atomic
write on disk under that hash. Nothing here knows Flask."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask_babel import get_locale
from flask_babel import gettext as _

PDF, PNG, JPEG, ZIP = "pdf", "png", "jpg", "zip"
OFFICE = ("doc", "xls", "ppt", "docx", "xlsx", "pptx", "odt", "ods", "odp")
LABELS = {PDF: "PDF", PNG: "PNG", JPEG: "JPEG", ZIP: "ZIP", **{e: "document bureautique" for e in OFFICE}}

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_TYPES = {"doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint"}
_OOXML = {"word/": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
          "xl/": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
          "ppt/": ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation")}
_ODF = {"application/vnd.oasis.opendocument.text": "odt", "application/vnd.oasis.opendocument.spreadsheet": "ods",
        "application/vnd.oasis.opendocument.presentation": "odp"}


class UploadRefused(Exception):
    """An upload refused with a French message; `too_large` for a 413."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.too_large = too_large


@dataclass(frozen=True)
class Upload:
    content: bytes
    content_type: str
    extension: str
    sha256: str
    filename: str  # a clean download name ending in the extension found

    @property
    def size(self) -> int:
        return len(self.content)


def sniff(content: bytes, filename: str = "") -> tuple[str, str] | None:
    """(content type, extension) read from the bytes; the name only tells a legacy Word file from
    a legacy Excel one. None for any kind not listed here."""
    if content.startswith(b"%PDF-"):
        return "application/pdf", PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", PNG
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", JPEG
    if content.startswith(_OLE2):
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        extension = extension if extension in _OLE_TYPES else "doc"
        return _OLE_TYPES[extension], extension
    if content.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = archive.namelist()
                if "mimetype" in names:
                    odf = archive.read("mimetype").decode("ascii", "replace").strip()
                    if odf in _ODF:
                        return odf, _ODF[odf]
                if "[Content_Types].xml" in names:
                    for prefix, (extension, content_type) in _OOXML.items():
                        if any(n.startswith(prefix) for n in names):
                            return content_type, extension
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            return None
        return "application/zip", ZIP
    return None


def accepted_label(accepted: tuple[str, ...]) -> str:
    """ "PDF, PNG ou JPEG" for the extensions accepted."""
    labels = list(dict.fromkeys(LABELS.get(e, e.upper()) for e in accepted))
    if len(labels) == 1:
        return labels[0]
    return _("%(first)s ou %(last)s", first=", ".join(labels[:-1]), last=labels[-1])


def size_label(count: int) -> str:
    """ "5 Mo", "1,5 Mo", "64 Ko"."""
    if count >= 1024 * 1024:
        number = f"{count / (1024 * 1024):.1f}".removesuffix(".0")
        return _("%(size)s Mo", size=number.replace(".", ",") if _french() else number)
    return _("%(size)s Ko", size=max(count // 1024, 1))


def _french() -> bool:
    locale = get_locale()
    return locale is None or locale.language != "en"


def clean_filename(filename: str, extension: str, default: str = "document") -> str:
    """A readable download name (accents kept, no path, no control characters) ending in the
    extension the content was found to be."""
    name = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f\x7f\"<>:|?*;]", "", name).strip(" .")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{(stem or default)[:150]}.{extension}"


def download_name(words: str, extension: str) -> str:
    """A download name made of our words and stored text (a consultation's reference): the rule of
    `clean_filename`, its slashes kept as dashes rather than read as folders. A line break or a quote
    would break the Content-Disposition header (a 500); werkzeug's `send_file` writes what is beyond
    ASCII as RFC 6266's `filename*`.

    :param words: the name without its extension.
    :param extension: the extension, without its dot.
    """
    return clean_filename(re.sub(r"[/\\]", "-", words) + f".{extension}", extension)


def read_upload(stream: IO[bytes], filename: str, *, max_bytes: int, accepted: tuple[str, ...]) -> Upload:
    """Read an upload whole (at most `max_bytes`) and check it.

    :raises UploadRefused: empty, too large, or not of an accepted type (by its content).
    """
    content = stream.read(max_bytes + 1)
    if not content:
        raise UploadRefused(_("Choisissez un fichier à déposer (le fichier reçu est vide)."))
    if len(content) > max_bytes:
        raise UploadRefused(_("Le fichier dépasse la taille maximale de %(size)s.", size=size_label(max_bytes)),
                            too_large=True)
    found = sniff(content, filename)
    if found is None or found[1] not in accepted:
        raise UploadRefused(_("Type de fichier non accepté : déposez un fichier %(types)s.",
                              types=accepted_label(accepted)))
    content_type, extension = found
    return Upload(content, content_type, extension, hashlib.sha256(content).hexdigest(),
                  clean_filename(filename, extension))


def store(folder: Path, name: str, content: bytes) -> Path:
    """Write `content` as `folder/name` unless it is there (names carry the hash): atomically, so a
    reader never sees half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
            tmp.write(content)
        os.replace(tmp.name, target)
    return target
