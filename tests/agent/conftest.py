"""Fixtures shared by the agent tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def agent_settings(settings):
    """Settings that let codebases point at local repositories (the tests' bare remotes)."""
    settings.codebase_allow_local = True
    return settings
