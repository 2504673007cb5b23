"""Markdown as safe HTML, for every page that shows what an agent wrote (a task's result in the
console, a plan waiting for approval on a reply link): CommonMark without raw HTML, then nh3."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def render_markdown(text: str | None) -> str:
    """Markdown to HTML, sanitised (raw HTML is escaped by the parser, and nh3 cleans the rest)."""
    if not text:
        return ""
    return nh3.clean(_md.render(text), link_rel="noopener noreferrer nofollow")
