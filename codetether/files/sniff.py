"""The content type of a file, from its first bytes.

Binary formats are recognised by their signatures (``puremagic``); a file that decodes as UTF-8
text is text, refined by its name's extension among the text types (``text/csv``,
``application/json``, ...). The type the client claimed counts only when neither says anything.
"""

from __future__ import annotations

import codecs
import mimetypes

import puremagic

HEAD_BYTES = 8192
OCTET_STREAM = "application/octet-stream"
# Zip-based office files that puremagic may report by their container only.
_ZIP_FAMILY = {"application/zip", "application/x-zip-compressed"}
_OFFICE = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_TEXTUAL = ("text/", "application/json", "application/xml", "application/yaml", "application/x-yaml",
            "application/javascript", "application/sql", "application/toml")


def _magic(head: bytes, name: str) -> str | None:
    try:
        matches = puremagic.magic_string(head, filename=name or None)
    except Exception:  # noqa: BLE001 - puremagic raises its own error for "no match"
        return None
    best = [m for m in matches if getattr(m, "mime_type", "")]
    if not best:
        return None
    best.sort(key=lambda m: getattr(m, "confidence", 0), reverse=True)
    return str(best[0].mime_type)


def _is_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\x00" in head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)  # a character cut at the end of the head is fine
    except UnicodeDecodeError:
        return False
    return True


def _ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def sniff(head: bytes, name: str, claimed: str | None = None) -> str:
    """The content type of a file whose first bytes are ``head`` and whose name is ``name``."""
    found = _magic(head[:HEAD_BYTES], name)
    if found in _ZIP_FAMILY and _ext(name) in _OFFICE:
        return _OFFICE[_ext(name)]
    if found and not found.startswith("text/"):
        return found
    if _is_text(head[:HEAD_BYTES]):
        guessed, _enc = mimetypes.guess_type(name or "", strict=False)
        if guessed and guessed.startswith(_TEXTUAL):
            return guessed
        return "text/plain"
    if found:
        return found
    claimed = (claimed or "").split(";")[0].strip().lower()
    if claimed and "/" in claimed and len(claimed) <= 100 and claimed.isascii():
        return claimed
    return OCTET_STREAM
