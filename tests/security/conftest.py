"""Fixtures shared by the security tests."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def restore_logging():
    """Puts the root logger back as it was after a test that calls ``setup_logging``."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
