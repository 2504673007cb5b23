"""A task's ``changes.patch`` as HTML: a unified view, one table per file, with line numbers and
the code coloured by Pygments on the server (the console loads no third-party script).

The patch is split into files and hunks by hand; each hunk's old side (context and removed lines)
and new side (context and added lines) are highlighted as two contiguous excerpts, so a string or
comment that spans lines is coloured as it is in the file. Every piece of text reaches the page
through Pygments' HTML formatter or :func:`markupsafe.escape`, never as it came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

# Beyond these the page shows what fits and says the rest is in the download.
MAX_PATCH_BYTES = 1024 * 1024
MAX_LINES = 4000
# Highlighting a very long line costs more than it helps.
MAX_LINE_CHARS = 2000

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_FORMATTER = HtmlFormatter(nowrap=True)


@dataclass
class DiffLine:
    kind: str  # "add", "del", "ctx" or "note" (such as "\ No newline at end of file")
    old: int | None
    new: int | None
    text: str
    html: Markup = Markup("")


@dataclass
class DiffHunk:
    header: str
    lines: list[DiffLine] = field(default_factory=list)


@dataclass
class DiffFile:
    old_path: str | None
    new_path: str | None
    status: str = "modified"  # "added", "deleted", "renamed" or "modified"
    binary: bool = False
    hunks: list[DiffHunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or "?"

    @property
    def additions(self) -> int:
        return sum(1 for h in self.hunks for line in h.lines if line.kind == "add")

    @property
    def deletions(self) -> int:
        return sum(1 for h in self.hunks for line in h.lines if line.kind == "del")


@dataclass
class DiffView:
    files: list[DiffFile]
    truncated: bool = False


def _strip_prefix(path: str) -> str | None:
    path = path.split("\t", 1)[0].strip()
    if path == "/dev/null":
        return None
    if path.startswith('"') and path.endswith('"'):
        path = path[1:-1]
    return path[2:] if path[:2] in ("a/", "b/") else path


def _git_header_paths(line: str) -> tuple[str | None, str | None]:
    # "diff --git a/x b/x": exact for paths without " b/" inside them, which is what a name shows.
    rest = line[len("diff --git "):]
    if " b/" in rest:
        old, new = rest.split(" b/", 1)
        return _strip_prefix(old), new
    return None, None


def _header(current: DiffFile, raw: str) -> None:
    """A line between a file's ``diff --git`` and its first hunk."""
    if raw.startswith("new file mode"):
        current.status = "added"
    elif raw.startswith("deleted file mode"):
        current.status = "deleted"
    elif raw.startswith(("rename from ", "rename to ")):
        current.status = "renamed"
    elif raw.startswith(("Binary files ", "GIT binary patch")):
        current.binary = True
    elif raw.startswith("--- "):
        current.old_path = _strip_prefix(raw[4:])
        if current.old_path is None:
            current.status = "added"
    elif raw.startswith("+++ "):
        current.new_path = _strip_prefix(raw[4:])
        if current.new_path is None:
            current.status = "deleted"


def parse_patch(text: str, *, max_lines: int = MAX_LINES) -> DiffView:
    """The files and hunks of a unified (git) diff; lines past ``max_lines`` are left out.

    A hunk ends when its header's line counts are used up, so a following ``--- a/…`` line is
    read as the next file's header even without a ``diff --git`` line."""
    files: list[DiffFile] = []
    current: DiffFile | None = None
    hunk: DiffHunk | None = None
    old_no = new_no = old_left = new_left = 0
    shown = 0
    truncated = False
    for raw in text.splitlines():
        in_hunk = hunk is not None and (old_left > 0 or new_left > 0)
        if in_hunk and raw[:1] in (" ", "+", "-", ""):
            sign, body = raw[:1] or " ", raw[1:]
            if sign == "+":
                line = DiffLine("add", None, new_no, body)
                new_no, new_left = new_no + 1, new_left - 1
            elif sign == "-":
                line = DiffLine("del", old_no, None, body)
                old_no, old_left = old_no + 1, old_left - 1
            else:
                line = DiffLine("ctx", old_no, new_no, body)
                old_no, new_no, old_left, new_left = old_no + 1, new_no + 1, old_left - 1, new_left - 1
        elif hunk is not None and raw.startswith("\\"):
            line = DiffLine("note", None, None, raw[1:].strip())
        else:
            if raw.startswith("diff --git ") or (raw.startswith("--- ") and (current is None or current.hunks)):
                current = DiffFile(*_git_header_paths(raw)) if raw.startswith("diff --git ") else DiffFile(None, None)
                files.append(current)
                hunk = None
            if current is None:
                continue
            match = _HUNK.match(raw)
            if match:
                old_no, new_no = int(match.group(1)), int(match.group(3))
                old_left = int(match.group(2)) if match.group(2) is not None else 1
                new_left = int(match.group(4)) if match.group(4) is not None else 1
                hunk = DiffHunk(raw)
                current.hunks.append(hunk)
            elif hunk is None:
                _header(current, raw)
            continue
        if shown >= max_lines:
            truncated = True
            continue
        shown += 1
        hunk.lines.append(line)
    return DiffView(files, truncated)


def _lexer(path: str) -> Lexer:
    try:
        return get_lexer_for_filename(path, stripnl=False, ensurenl=True)
    except (ClassNotFound, ValueError):
        return TextLexer(stripnl=False, ensurenl=True)


def _highlighted(lexer: Lexer, lines: list[str]) -> list[Markup]:
    """Each line as coloured HTML; plain escaped text when the formatter's lines do not line up."""
    if not lines:
        return []
    if any(len(line) > MAX_LINE_CHARS for line in lines):
        return [Markup(escape(line)) for line in lines]
    out = highlight("\n".join(lines), lexer, _FORMATTER).split("\n")
    if len(out) < len(lines):
        return [Markup(escape(line)) for line in lines]
    return [Markup(line) for line in out[: len(lines)]]


def _colour(file: DiffFile) -> None:
    lexer = _lexer(file.path)
    for hunk in file.hunks:
        old_side = [line for line in hunk.lines if line.kind in ("ctx", "del")]
        new_side = [line for line in hunk.lines if line.kind in ("ctx", "add")]
        for line, html in zip(old_side, _highlighted(lexer, [line.text for line in old_side])):
            line.html = html
        for line, html in zip(new_side, _highlighted(lexer, [line.text for line in new_side])):
            if line.kind == "add":
                line.html = html
        for line in hunk.lines:
            if line.kind == "note":
                line.html = Markup(escape(line.text))


def render_patch(content: bytes) -> DiffView:
    """The patch ready for ``_diff.html``: parsed, cut to the page's limits and coloured."""
    truncated = len(content) > MAX_PATCH_BYTES
    view = parse_patch(content[:MAX_PATCH_BYTES].decode("utf-8", errors="replace"))
    view.truncated = view.truncated or truncated
    for file in view.files:
        _colour(file)
    return view
