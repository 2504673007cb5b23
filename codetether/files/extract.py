"""Text of PDF and DOCX files, so the agent's ``read`` tool can use them (``<name>.txt`` beside
the original in the workspace). ``pypdf`` reads PDFs, ``python-docx`` Word files (paragraphs and
tables in order). Blocking: call it in a thread. A file that cannot be read gives None.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# Text kept from one file; the rest is cut with a note (the original stays for bash).
MAX_TEXT_CHARS = 2_000_000


def _pdf(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        reader.decrypt("")
    pages = []
    size = 0
    for n, page in enumerate(reader.pages, 1):
        text = page.extract_text() or ""
        pages.append(f"--- page {n} ---\n{text.strip()}\n")
        size += len(text)
        if size > MAX_TEXT_CHARS:
            break
    return "\n".join(pages)


def _docx(path: Path) -> str:
    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    doc = Document(str(path))
    out: list[str] = []
    for block in doc.iter_inner_content():
        if isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Table):
            for row in block.rows:
                out.append("\t".join(cell.text.strip() for cell in row.cells))
    return "\n".join(out)


_EXTRACTORS = {"pdf": _pdf, "docx": _docx}


def extract_text(path: Path, kind: str) -> str | None:
    """The text of the file at ``path`` (``kind`` is ``pdf`` or ``docx``), or None if unreadable."""
    extractor = _EXTRACTORS.get(kind)
    if extractor is None:
        return None
    try:
        text = extractor(path)
    except Exception as err:  # noqa: BLE001 - a damaged or encrypted file is just not extracted
        log.info("no text extracted from %s: %s", path.name, err)
        return None
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f"\n\n[... text cut at {MAX_TEXT_CHARS} characters ...]\n"
    return text
