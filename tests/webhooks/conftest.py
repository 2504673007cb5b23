"""Webhook tests run with a short retry schedule (seconds) so retries happen within a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from codetether.core.config import Settings
from tests.conftest import make_settings

SHORT_SCHEDULE = "0.2,0.2,0.2"


@pytest.fixture
def settings(temporal_address: str, database_url: str, tmp_path: Path) -> Settings:
    return make_settings(temporal_address, database_url, tmp_path, webhook_retry_schedule=SHORT_SCHEDULE)
