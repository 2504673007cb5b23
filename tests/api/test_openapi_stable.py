"""The published contract changes only on purpose: ``/openapi.json`` (default settings) is byte for
byte the committed ``tests/api/fixtures/openapi.json``.

It proved the document identical across the move into the ``codetether`` package. A deliberate
change to the API rewrites the file (``python -m tests.api.test_openapi_stable``) and the diff is
reviewed with the change.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from starlette.testclient import TestClient

from codetether.api.app import create_app
from codetether.core.config import Settings

RECORDED = Path(__file__).parent / "fixtures" / "openapi.json"


def current_document() -> bytes:
    with TestClient(create_app(Settings())) as client:
        return client.get("/openapi.json").content


def test_openapi_is_byte_identical_to_the_committed_document(tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_DATA_DIR", str(tmp_path))
    assert current_document() == RECORDED.read_bytes(), (
        "the OpenAPI document changed: if on purpose, run `python -m tests.api.test_openapi_stable` and commit it"
    )


def test_servers_name_the_public_url(tmp_path):
    # Default settings: relative to where the document was fetched, so the snapshot is the same everywhere.
    assert create_app(Settings(data_dir=tmp_path)).openapi()["servers"][0]["url"] == "/"
    app = create_app(Settings(data_dir=tmp_path, public_url="https://codetether.example.com/"))
    assert app.openapi()["servers"] == [{"url": "https://codetether.example.com", "description": "This server"}]


if __name__ == "__main__":
    os.environ["CODETETHER_DATA_DIR"] = tempfile.mkdtemp()
    RECORDED.write_bytes(current_document())
    print(f"wrote {RECORDED}", file=sys.stderr)
