"""``/v1/automation/files`` (CONTRACT §11): upload a file (``tasks:write``), read its metadata and
its bytes (``tasks:read``), delete it. Another user's file is 404 everywhere.

The upload is ``multipart/form-data`` with the file in the part named ``file``. It is streamed to
the file storage while it is hashed (:mod:`codetether.api.rest.uploads`,
:func:`codetether.files.service.store_stream`): a ``Content-Length`` over the limit is refused
before a byte is read, a body that grows past it is cut off, and either is
``413 file_too_large`` with nothing stored.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from codetether.api.deps import SettingsDep, State, Storage, TasksRead, TasksWrite
from codetether.api.edge.errors import problem_responses
from codetether.api.edge.idempotency import streams_body
from codetether.api.rest.schemas.files import FilePublic
from codetether.api.rest.uploads import ENVELOPE_BYTES, MULTIPART, MultipartFile
from codetether.core.errors import ServiceError
from codetether.files import service as files
from codetether.files.storage import StoredFileMissing

router = APIRouter(prefix="/v1/automation/files", tags=["files"])

UPLOAD_BODY = {
    "required": True,
    "content": {
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "contentMediaType": "application/octet-stream",
                        "description": "The file, at most 25 MiB (the server's files_max_bytes). Its content type is "
                        "sniffed from the bytes; the part's Content-Type counts only when they say nothing.",
                    },
                },
            },
        },
    },
}


def _public(row) -> FilePublic:
    return FilePublic.model_validate(files.file_to_dict(row))


def _disposition(name: str) -> str:
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._- ()") else "_" for c in name)[:200] or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.post(
    "",
    operation_id="uploadFile",
    status_code=201,
    response_model=FilePublic,
    summary="Upload a file",
    description="Stores a file for tasks to use (`attachments: [{\"file_id\": ...}]` on create). At most 25 MiB "
    "(413 `file_too_large`); the caller's unexpired files may take at most the server's quota "
    "(413 `file_quota_exceeded`). Files expire after the server's files_ttl_seconds (7 days by default).",
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429),
)
@streams_body
async def upload_file(request: Request, response: Response, principal: TasksWrite, state: State,
                      settings: SettingsDep, storage: Storage) -> FilePublic:
    limit = settings.files_max_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + ENVELOPE_BYTES:
        raise files.too_large(limit)
    reader = MultipartFile(request, max_body=limit + ENVELOPE_BYTES, too_large=files.too_large(limit))
    part = await reader.open()
    row = await files.store_stream(state.db, storage, settings, principal.user_id, name=part.filename,
                                   claimed_type=part.content_type, chunks=reader.chunks())
    response.headers["Location"] = f"/v1/automation/files/{row.id}"
    return _public(row)


@router.get("/{file_id}", operation_id="getFile", response_model=FilePublic, summary="A file's metadata",
            responses=problem_responses(401, 403, 404, 429))
async def get_file(file_id: str, principal: TasksRead, state: State) -> FilePublic:
    return _public(await files.load_file(state.db, principal.user_id, file_id))


@router.get(
    "/{file_id}/content",
    operation_id="getFileContent",
    summary="Download a file",
    response_class=StreamingResponse,
    responses={200: {"description": "The file's bytes, as an attachment, with the file's own content type",
                     "content": {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
               **problem_responses(401, 403, 404, 429)},
)
async def get_file_content(file_id: str, principal: TasksRead, state: State, storage: Storage) -> StreamingResponse:
    row = await files.load_file(state.db, principal.user_id, file_id)
    stream = storage.open(row.storage_key)
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        first = b""
    except StoredFileMissing:
        raise ServiceError(404, "file_not_found", f"no file {file_id!r}") from None

    async def body():
        yield first
        async for block in stream:
            yield block

    return StreamingResponse(
        body(),
        media_type=row.content_type,
        headers={
            "Content-Length": str(row.size),
            "Content-Disposition": _disposition(row.name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "ETag": f'"{row.sha256}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.delete("/{file_id}", operation_id="deleteFile", status_code=204, summary="Delete a file",
               responses=problem_responses(401, 403, 404, 429))
async def delete_file(file_id: str, principal: TasksWrite, state: State, storage: Storage) -> Response:
    await files.delete_file(state.db, storage, principal.user_id, file_id)
    return Response(status_code=204)
