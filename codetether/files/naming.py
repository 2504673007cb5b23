"""File names: what an upload is called, and where each attachment sits in a task's workspace
(pure, sandbox-safe: the prompt and the workspace preparation compute the same names)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from codetether.files.contracts import ATTACHMENTS_DIR, Attachment

NAME_LIMIT = 255
DEFAULT_NAME = "file"
# Content types whose text the worker extracts beside the original (``<name>.txt``).
EXTRACTABLE = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+,=@-]+")


def clean_name(raw: str | None, default: str = DEFAULT_NAME) -> str:
    """A display name: the last path segment, without control characters, at most 255 characters."""
    text = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()
    if text in ("", ".", ".."):
        return default
    return text[:NAME_LIMIT]


def _safe_segment(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    safe = _UNSAFE.sub("_", ascii_name).strip(" .")
    safe = re.sub(r"_+", "_", safe)
    return (safe or DEFAULT_NAME)[:120]


def workspace_names(attachments: Sequence[Attachment]) -> list[str]:
    """``attachments/<name>`` of each attachment, in order: names made safe for a file system and
    shell, and unique (``report.pdf``, ``report-2.pdf``, ...), case-insensitively."""
    taken: set[str] = set()
    out: list[str] = []
    for a in attachments:
        base = _safe_segment(a.name)
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem:
            stem, ext = base, ""
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
        taken.add(candidate.lower())
        # The extracted text's name is taken too, so no other attachment lands on it.
        if a.content_type in EXTRACTABLE:
            taken.add(candidate.lower() + ".txt")
        out.append(f"{ATTACHMENTS_DIR}/{candidate}")
    return out


def text_extract_path(attachment: Attachment, path: str) -> str | None:
    """Where the extracted text of the attachment at ``path`` goes, or None for no extraction."""
    return f"{path}.txt" if attachment.content_type in EXTRACTABLE else None
