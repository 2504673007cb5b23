"""The model catalog: public model names → provider, provider model id and credentials.

Read from ``codetether/agent/models_default.yaml`` or ``CODETETHER_MODELS_FILE``. ``demo`` is built in and
always available. Used by the API (``GET /v1/automation/models``, refusing unavailable models at
creation) and by the worker (choosing a backend).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from codetether.core.config import Settings

DEMO_MODEL = "demo"
_DEFAULT_FILE = Path(__file__).with_name("models_default.yaml")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    provider: str
    kind: str  # "openai" | "anthropic" | "demo"
    provider_model: str
    api_key: str | None
    base_url: str | None
    available: bool
    description: str = ""
    # From the models file (CONTRACT §10); None when unknown.
    context_window: int | None = None
    max_output_tokens: int | None = None
    # False for a server or model that must not be streamed to (answers come whole).
    stream: bool = True
    # {input_per_mtok_usd, output_per_mtok_usd, cached_input_per_mtok_usd?}: overrides the price table.
    pricing: dict | None = None


class ModelCatalog:
    def __init__(self, models: dict[str, ModelSpec], aliases: dict[str, str], default_model: str) -> None:
        self.models = models
        self.aliases = aliases
        self.default_model = default_model

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelCatalog":
        path = settings.models_file or _DEFAULT_FILE
        raw = yaml.safe_load(Path(path).read_text()) or {}
        providers = raw.get("providers", {}) or {}
        models: dict[str, ModelSpec] = {
            DEMO_MODEL: ModelSpec(
                name=DEMO_MODEL,
                provider="codetether",
                kind="demo",
                provider_model=DEMO_MODEL,
                api_key=None,
                base_url=None,
                available=True,
                description="Built-in offline demonstration model (not a language model).",
            )
        }
        for name, spec in (raw.get("models", {}) or {}).items():
            prov_name = spec.get("provider", "openai")
            prov = providers.get(prov_name, {})
            kind = spec.get("kind") or prov.get("kind") or prov_name
            api_key = spec.get("api_key") or _env(settings, spec.get("api_key_env") or prov.get("api_key_env"))
            base_url = (
                _env(settings, spec.get("base_url_env") or prov.get("base_url_env"))
                or spec.get("base_url")
                or prov.get("base_url")
            )
            # A keyless local server (Ollama, vLLM) is usable when a base URL is set explicitly.
            keyless = bool(spec.get("keyless") or prov.get("keyless"))
            models[name] = ModelSpec(
                name=name,
                provider=prov_name,
                kind=kind,
                provider_model=spec.get("model", name),
                api_key=api_key,
                base_url=base_url,
                # A model of kind demo (e.g. a priced one for trying budgets) needs nothing.
                available=bool(api_key) or (keyless and bool(base_url)) or kind == "demo",
                description=spec.get("description", ""),
                context_window=_int(spec.get("context_window", prov.get("context_window"))),
                max_output_tokens=_int(spec.get("max_output_tokens", prov.get("max_output_tokens"))),
                stream=bool(spec.get("stream", prov.get("stream", True))),
                pricing=_pricing(spec.get("pricing", prov.get("pricing"))),
            )
        aliases = {k: v for k, v in (raw.get("aliases", {}) or {}).items() if v in models}
        default = settings.default_model or _pick_default(models)
        return cls(models, aliases, default)

    def resolve(self, name: str | None) -> ModelSpec | None:
        name = name or self.default_model
        name = self.aliases.get(name, name)
        return self.models.get(name)

    def public_list(self) -> list[ModelSpec]:
        return list(self.models.values())


def _pricing(value: object) -> dict | None:
    if not isinstance(value, dict) or "input_per_mtok_usd" not in value or "output_per_mtok_usd" not in value:
        return None
    return {k: float(v) for k, v in value.items()
            if k in ("input_per_mtok_usd", "output_per_mtok_usd", "cached_input_per_mtok_usd") and v is not None}


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float, str)) and str(value).strip().isdigit() else None


def _env(settings: Settings, name: str | None) -> str | None:
    return settings.provider_env(name) if name else None


def _pick_default(models: dict[str, ModelSpec]) -> str:
    for candidate in ("claude-sonnet-4", "gpt-4o", "gemini-2.5-flash", "grok-3"):
        spec = models.get(candidate)
        if spec is not None and spec.available:
            return candidate
    return DEMO_MODEL
