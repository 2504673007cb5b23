"""Reading one file out of a ``multipart/form-data`` request body as it arrives.

Starlette's form parser spools a whole upload before the route sees it; this one hands the named
part's bytes on chunk by chunk (``python-multipart``'s push parser under the hood), so the file
service can stream them to storage, hash them and stop at its size limit with only one network
chunk in memory. Other parts are read past and dropped. Malformed bodies are
``400 malformed_multipart``; a body without the part is ``422``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from codetether.core.errors import ServiceError

MULTIPART = "multipart/form-data"
# Bytes a multipart body may carry beyond the file itself (boundaries, part headers, small fields).
ENVELOPE_BYTES = 64 * 1024


def _malformed(detail: str) -> ServiceError:
    return ServiceError(400, "malformed_multipart", f"the multipart body could not be read: {detail}")


def _missing(field: str) -> ServiceError:
    return ServiceError(422, "validation_error", f"{field}: the multipart body has no part named {field!r}",
                        errors=[{"field": field, "location": "body", "message": "field required", "type": "missing"}])


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` content type; 415 for any other type."""
    kind, params = parse_options_header(content_type or "")
    if kind.decode("latin-1").lower() != MULTIPART:
        raise ServiceError(415, "unsupported_media_type", f"send the file as {MULTIPART} with a part named 'file'")
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise _malformed("the content type has no usable boundary")
    return boundary


@dataclass
class FilePart:
    filename: str | None
    content_type: str | None


class MultipartFile:
    """``await open()`` finds the part named ``field``; then ``chunks()`` yields its bytes, and reads
    (and drops) the rest of the body after it."""

    def __init__(self, request: Request, *, max_body: int, too_large: ServiceError, field: str = "file") -> None:
        self.request, self.field = request, field
        # The whole body may not pass this (the file's limit plus the envelope).
        self.max_body, self.too_large, self.received = max_body, too_large, 0
        self._stream = request.stream()
        self._events: list[tuple[str, object]] = []
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._in_target = False
        self._done = False
        self._parser = MultipartParser(multipart_boundary(request.headers.get("content-type")), {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add_field(d[s:e]),
            "on_header_value": lambda d, s, e: self._add_value(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        })

    # ---- parser callbacks (synchronous; they only queue events) --------------------------------

    def _part_begin(self) -> None:
        self._headers, self._header_field, self._header_value = {}, b"", b""

    def _add_field(self, data: bytes) -> None:
        self._header_field += data

    def _add_value(self, data: bytes) -> None:
        self._header_value += data

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _disp, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._in_target = name == self.field and not any(kind == "part" for kind, _ in self._events)
        if self._in_target:
            filename = options.get(b"filename")
            ctype = self._headers.get(b"content-type")
            self._events.append(("part", FilePart(
                filename.decode("utf-8", "replace") if filename is not None else None,
                ctype.decode("latin-1") if ctype else None,
            )))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_target and end > start:
            self._events.append(("data", bytes(data[start:end])))

    def _part_end(self) -> None:
        if self._in_target:
            self._events.append(("end", None))
        self._in_target = False

    def _end(self) -> None:
        self._done = True

    # ---- the reader ------------------------------------------------------------------------

    async def _feed(self) -> bool:
        """Parses the next chunk of the body; False once the body has ended."""
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            return False
        except ClientDisconnect:
            raise _malformed("the client went away") from None
        self.received += len(chunk)
        if self.received > self.max_body:
            raise self.too_large
        if chunk:
            try:
                self._parser.write(chunk)
            except MultipartParseError as err:
                raise _malformed(str(err) or "bad framing") from None
        return True

    async def open(self) -> FilePart:
        while True:
            for i, (kind, value) in enumerate(self._events):
                if kind == "part":
                    del self._events[: i + 1]
                    assert isinstance(value, FilePart)
                    return value
            if not await self._feed():
                if not self._done:
                    raise _malformed("the body ended before its closing boundary")
                raise _missing(self.field)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            while self._events:
                kind, value = self._events.pop(0)
                if kind == "end":
                    await self._drain()
                    return
                if kind == "data":
                    assert isinstance(value, bytes)
                    yield value
            if not await self._feed():
                raise _malformed("the body ended inside the file part")

    async def _drain(self) -> None:
        while await self._feed():
            self._events.clear()
        if not self._done:
            raise _malformed("the body ended before its closing boundary")
