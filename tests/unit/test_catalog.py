"""codetether.agent.catalog: the built-in mapping, models files, aliases, credentials → availability, the
default model; and codetether.core.ids (prefixed ULIDs, ISO 8601 times)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from codetether.agent.catalog import DEMO_MODEL, ModelCatalog
from codetether.core.config import Settings
from codetether.core.ids import as_utc, iso, new_id, parse_iso, ulid

PUBLIC_MODELS = {
    "claude-sonnet-4", "claude-opus", "claude-haiku", "gpt-4o", "gpt-4.1", "gemini-2.5-pro",
    "gemini-2.5-flash", "grok-3", "minimax-m2.1", "o3", "o3-mini",
}
PROVIDER_VARS = [
    f"{p}_{v}" for p in ("OPENAI", "ANTHROPIC", "GEMINI", "XAI", "MINIMAX") for v in ("API_KEY", "BASE_URL")
]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    # provider_env also reads a .env in the working directory: use an empty one.
    monkeypatch.chdir(tmp_path)
    from codetether.core.config import reset_settings_cache

    reset_settings_cache()
    yield monkeypatch
    reset_settings_cache()


def catalog(**settings) -> ModelCatalog:
    return ModelCatalog.from_settings(Settings(**settings))


def test_builtin_catalog_without_credentials(clean_env):
    cat = catalog()
    assert PUBLIC_MODELS | {DEMO_MODEL} == set(cat.models)
    assert [m.name for m in cat.public_list() if m.available] == [DEMO_MODEL]
    assert cat.default_model == DEMO_MODEL
    assert cat.resolve(None).name == DEMO_MODEL
    demo = cat.resolve("demo")
    assert demo.kind == "demo" and demo.available and demo.api_key is None


def test_credentials_make_a_provider_available(clean_env):
    clean_env.setenv("OPENAI_API_KEY", "sk-1")
    clean_env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    cat = catalog()
    for name in ("gpt-4o", "gpt-4.1", "o3", "o3-mini"):
        spec = cat.resolve(name)
        assert spec.available and spec.kind == "openai" and spec.api_key == "sk-1"
        assert spec.base_url == "http://127.0.0.1:9/v1"
    assert cat.resolve("gpt-4o").provider_model == "gpt-4o"
    assert not cat.resolve("claude-sonnet-4").available
    assert not cat.resolve("grok-3").available
    # With a provider configured the default moves off demo.
    assert cat.default_model == "gpt-4o"


def test_anthropic_and_gemini_defaults(clean_env):
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant")
    clean_env.setenv("GEMINI_API_KEY", "g-key")
    cat = catalog()
    sonnet = cat.resolve("claude-sonnet-4")
    assert sonnet.kind == "anthropic" and sonnet.available and sonnet.provider_model.startswith("claude-sonnet-4")
    assert sonnet.base_url is None  # the SDK's own default
    gemini = cat.resolve("gemini-2.5-flash")
    assert gemini.kind == "openai" and gemini.available
    assert gemini.base_url == "https://generativelanguage.googleapis.com/v1beta/openai/"
    assert cat.default_model == "claude-sonnet-4"
    # An explicit default wins.
    assert catalog(default_model="gemini-2.5-pro").default_model == "gemini-2.5-pro"


def test_aliases(clean_env):
    cat = catalog()
    assert cat.resolve("claude-sonnet").name == "claude-sonnet-4"
    assert cat.resolve("gpt-4").name == "gpt-4.1"
    assert cat.resolve("claude-opus-4").name == "claude-opus"
    assert cat.resolve("no-such-model") is None


def test_models_file(clean_env, tmp_path: Path):
    path = tmp_path / "models.yaml"
    path.write_text(
        """
providers:
  local:
    kind: openai
    base_url: http://127.0.0.1:11434/v1
    keyless: true
  vendor:
    kind: anthropic
    api_key_env: VENDOR_KEY
models:
  llama: {provider: local, model: llama3.1:8b, description: Local Llama}
  vendor-big: {provider: vendor, model: big-2}
  inline: {provider: vendor, api_key: sk-inline, base_url: http://127.0.0.1:1}
aliases:
  ll: llama
  dangling: nowhere
"""
    )
    cat = catalog(models_file=path)
    assert set(cat.models) == {"demo", "llama", "vendor-big", "inline"}
    llama = cat.resolve("ll")
    assert llama.name == "llama" and llama.available and llama.api_key is None
    assert llama.provider_model == "llama3.1:8b" and llama.description == "Local Llama"
    assert not cat.resolve("vendor-big").available
    inline = cat.resolve("inline")
    assert inline.available and inline.api_key == "sk-inline" and inline.base_url == "http://127.0.0.1:1"
    assert cat.resolve("dangling") is None  # an alias to nothing is dropped
    clean_env.setenv("VENDOR_KEY", "v")
    assert catalog(models_file=path).resolve("vendor-big").available


# ---- ids --------------------------------------------------------------------------------------


def test_prefixed_ids_sort_by_time():
    a = new_id("task")
    assert re.fullmatch(r"task_[0-9a-hjkmnp-tv-z]{26}", a)
    assert ulid(1000, bytes(10)) < ulid(1001, bytes(10)) < ulid(1001, b"\x01" + bytes(9))
    assert ulid(0, bytes(10)) == "0" * 26
    assert len({new_id("evt") for _ in range(1000)}) == 1000


def test_iso_and_parse():
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    assert iso(when) == "2026-01-02T03:04:05.678Z"
    assert iso(when.replace(tzinfo=None)) == "2026-01-02T03:04:05.678Z"  # naive means UTC
    assert iso(when.astimezone(timezone(timedelta(hours=2)))) == "2026-01-02T03:04:05.678Z"
    assert iso(None) is None
    assert parse_iso("2026-01-02T03:04:05.678Z") == when.replace(microsecond=678000)
    assert parse_iso("2026-01-02T05:04:05+02:00") == when.replace(microsecond=0)
    assert parse_iso("2026-01-02T03:04:05").tzinfo == timezone.utc
    assert parse_iso(None) is None and parse_iso("") is None
    with pytest.raises(ValueError):
        parse_iso("yesterday")
    assert as_utc(datetime(2026, 1, 1)).tzinfo == timezone.utc
