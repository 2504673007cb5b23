"""The declarative base every table of ``codetether.core.models`` derives from, with the column
types shared by all of them (timezone-aware datetimes, JSON dicts and lists).

Alembic's ``codetether/migrations/env.py`` compares ``Base.metadata`` with the migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }
