"""Task tags (CONTRACT §11): the rule for a tag list and the SQL test "this task has tag X".

Create (every face, through ``check_task_input``), the list filter ``tag`` and bulk cancel's
``filter.tag`` use these. Tags are stored as a JSON list on the task row; PostgreSQL answers
"has tag" by JSON containment, SQLite by ``json_each``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from sqlalchemy import ColumnElement, cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB

from codetether.core.errors import ServiceError
from codetether.core.models import Task

MAX_TAGS = 20
TAG_MAX_LENGTH = 64
TAG_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_TAG = re.compile(TAG_PATTERN)


def _invalid(field_name: str, message: str) -> ServiceError:
    return ServiceError(422, "validation_error", f"{field_name}: {message}",
                        errors=[{"field": field_name, "message": message, "type": "invalid_tag"}])


def check_tags(tags: object, *, field_name: str = "tags", limit: int = MAX_TAGS) -> list[str]:
    """The tags in their given order without repeats; 422 for anything but a list of at most
    ``limit`` strings of 1..64 characters from ``[A-Za-z0-9_.:-]``."""
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise _invalid(field_name, "must be a list of strings")
    seen: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.match(tag):
            shown = tag[:80] if isinstance(tag, str) else tag
            raise _invalid(field_name, f"{shown!r} is not a tag (1 to 64 characters of A-Z a-z 0-9 _ . : -)")
        if tag not in seen:
            seen.append(tag)
    if len(seen) > limit:
        raise _invalid(field_name, f"at most {limit} tags")
    return seen


def has_tag(tag: str, *, is_sqlite: bool) -> ColumnElement[bool]:
    """True for tasks whose ``tags`` hold ``tag``."""
    if is_sqlite:
        items = func.json_each(Task.tags).table_valued("value")
        return exists(select(1).select_from(items).where(items.c.value == tag))
    return cast(Task.tags, JSONB).op("@>")(cast(literal(json.dumps([tag])), JSONB))
