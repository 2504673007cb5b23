"""REST schemas of ``/v1/automation/files`` (CONTRACT §11)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FilePublic(BaseModel):
    file_id: str = Field(examples=["file_01j0000000000000000000000"])
    name: str = Field(description="The uploaded file's name (its last path segment, control characters removed).")
    size: int = Field(ge=0, description="Bytes.")
    content_type: str = Field(description="Sniffed from the bytes; the client's type only when the bytes say nothing.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    created_at: str
    expires_at: str = Field(description="When the file is deleted (the server's files_ttl_seconds after upload).")
