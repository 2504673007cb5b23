"""A loopback HTTP server that plays recorded provider traffic (VCR-style cassettes).

Each cassette is a public recording of a real provider's answers (``tests/fixtures/
provider_traffic/``; SOURCES.md says where each came from). The server answers every request
with the next recorded response of the cassettes it was given, in order: status, the headers a
client reads (content type, ``retry-after``, rate-limit headers) and the body, streamed line by
line when it is an SSE body. It keeps each request body so a test can check what the client sent.
:class:`Conversation` plays one recorded exchange to any number of concurrent conversations, and
``hold`` keeps the first requests unanswered until the test releases them (a provider that is
slow to answer, so a turn stays in flight). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from collections.abc import Callable
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "provider_traffic"
# Headers a client may act on; transport headers (length, encoding, connection) are the server's own.
_KEPT_HEADERS = ("content-type", "retry-after", "retry-after-ms", "x-should-retry")


@dataclass
class Recorded:
    status: int
    headers: dict[str, str]
    body: bytes
    uri: str = ""


@dataclass
class ReplayServer:
    responses: list[Recorded]
    requests: list[dict[str, Any]] = field(default_factory=list)
    # For scripted flows: builds each response from the request body (used when set).
    responder: Callable[[dict[str, Any]], Recorded | None] | None = None
    # The first ``hold`` requests get no answer until release() (or the server closes).
    hold: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Lets the held requests be answered."""
        self._released.set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "ReplayServer":
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                # One request at a time takes its place and its response (the handlers run in threads).
                with replay._lock:
                    number = len(replay.requests)
                    replay.requests.append({"path": self.path, "body": body, "headers": dict(self.headers),
                                            "at": time.monotonic()})
                    rec = replay.responder(body) if replay.responder is not None else (
                        replay.responses.pop(0) if replay.responses else None)
                if number < replay.hold:
                    # Bounded: a test that forgets to release still ends.
                    replay._released.wait(timeout=300)
                if rec is None:
                    self.send_response(599)
                    self.end_headers()
                    return
                try:
                    self._answer(rec)
                except OSError:
                    # The client went away while its answer was held or streamed (a killed worker).
                    self.close_connection = True

            def _answer(self, rec: Recorded) -> None:
                self.send_response(rec.status)
                for name, value in rec.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(rec.body)))
                self.end_headers()
                if rec.headers.get("content-type", "").startswith("text/event-stream"):
                    # Event by event, as a provider streams them.
                    for piece in rec.body.split(b"\n\n"):
                        if piece:
                            self.wfile.write(piece + b"\n\n")
                            self.wfile.flush()
                    return
                self.wfile.write(rec.body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._released.set()
        self._server.shutdown()
        self._server.server_close()


def load_cassette(name: str) -> list[Recorded]:
    """The responses of one cassette, ``provider/name`` under tests/fixtures/provider_traffic."""
    data = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    out: list[Recorded] = []
    for interaction in data["interactions"]:
        resp = interaction["response"]
        headers = {
            k.lower(): (v[0] if isinstance(v, list) else str(v))
            for k, v in (resp.get("headers") or {}).items()
            if k.lower() in _KEPT_HEADERS
        }
        if "parsed_body" in resp:
            body = json.dumps(resp["parsed_body"]).encode()
            headers.setdefault("content-type", "application/json")
        else:
            body = (resp.get("body") or {}).get("string", "").encode()
        out.append(Recorded(status=int(resp["status"]["code"]), headers=headers, body=body,
                            uri=interaction["request"].get("uri", "")))
    return out


def recorded_requests(name: str) -> list[dict[str, Any]]:
    """The request bodies the cassette recorded (what the real client sent)."""
    data = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    return [i["request"].get("parsed_body") or {} for i in data["interactions"]]


class Conversation:
    """A responder that plays one recorded exchange to every conversation that comes: a request
    whose history already holds n assistant messages gets the n-th recorded response. Concurrent
    tasks each see the whole exchange in its recorded order, whatever order their requests
    arrive in. A turn past the recording's end gets a 599 (nothing was recorded for it)."""

    def __init__(self, name: str) -> None:
        self.responses = load_cassette(name)

    def __call__(self, body: dict[str, Any]) -> Recorded | None:
        turn = sum(1 for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant")
        return self.responses[turn] if turn < len(self.responses) else None


def replay(*names: str, extra: list[Recorded] | None = None) -> ReplayServer:
    responses: list[Recorded] = []
    for name in names:
        responses.extend(load_cassette(name))
    return ReplayServer(responses + list(extra or []))
