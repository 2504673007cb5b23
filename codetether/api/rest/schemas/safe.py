"""A base for request bodies whose strings end up in database text columns.

PostgreSQL text refuses NUL and unpaired surrogates; a body carrying one would be accepted and
then fail half-written. :class:`StoredText` refuses them at validation (``422`` with
``code: "json_invalid_string"``, see ``codetether/core/jsonsafe.py``), for every top-level string field
and every string in a top-level list. Nested JSON (``metadata``) is checked whole by
:func:`codetether.core.jsonsafe.check_json`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError

from codetether.core.jsonsafe import find_bad_string


def _bad(value: Any) -> bool:
    if isinstance(value, str):
        return find_bad_string(value)
    if isinstance(value, list):
        return any(isinstance(v, str) and find_bad_string(v) for v in value)
    return False


class StoredText(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _storable_strings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if _bad(value):
                    raise PydanticCustomError(
                        "json_invalid_string",
                        "{field} must not contain NUL or unpaired surrogate characters",
                        {"field": str(name)},
                    )
        return data
