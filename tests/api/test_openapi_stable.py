"""The published contract survives refactors: ``/openapi.json`` is byte-identical to the document
recorded before the code moved into the ``codetether`` package."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from codetether.api.app import create_app
from codetether.core.config import Settings

RECORDED = Path(__file__).parent / "fixtures" / "openapi_before_package_move.json"


def test_openapi_is_byte_identical_to_the_recorded_document(tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_DATA_DIR", str(tmp_path))
    with TestClient(create_app(Settings())) as client:
        body = client.get("/openapi.json").content
    assert body == RECORDED.read_bytes()
