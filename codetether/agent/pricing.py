"""What a model turn cost, in US dollars, for ``usage.cost_usd`` (CONTRACT §10).

Prices come from the ``genai-prices`` package (a maintained table of providers' published prices,
matched by model id and API URL); a model's ``pricing`` in the models file overrides it. Computed
in the ``model_turn`` activity (never in workflow code: the table changes between releases) from
the provider's own token counts, cached input priced as cached.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from codetether.agent.catalog import ModelSpec

log = logging.getLogger("codetether.agent.pricing")

_PER_MTOK = Decimal(1_000_000)


def turn_cost(spec: ModelSpec, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float | None:
    """The turn's price, or None when no price is known for the model (or the counts are estimates)."""
    if spec.pricing is not None:
        return _from_override(spec.pricing, input_tokens, output_tokens, cached_input_tokens)
    if spec.kind == "demo":
        return 0.0
    try:
        from genai_prices import Usage, calc_price

        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached_input_tokens)
        # The models file's provider name says whose prices apply; the base URL is the fallback
        # (a self-hosted or proxied endpoint has a URL the table cannot know).
        provider_id = _PROVIDER_IDS.get(spec.provider, spec.provider)
        try:
            price = calc_price(usage, spec.provider_model, provider_id=provider_id)
        except LookupError:
            if not spec.base_url:
                raise
            price = calc_price(usage, spec.provider_model, provider_api_url=spec.base_url)
    except Exception:  # noqa: BLE001 - an unknown model or provider has no price: cost_usd is null
        log.debug("no price for %s (%s)", spec.provider_model, spec.provider, exc_info=True)
        return None
    return float(price.total_price)


# The price table's ids for provider names of the default models file that differ from them.
_PROVIDER_IDS = {"gemini": "google", "xai": "x-ai"}


def _from_override(pricing: dict, input_tokens: int, output_tokens: int, cached: int) -> float:
    per_in = Decimal(str(pricing.get("input_per_mtok_usd") or 0))
    per_out = Decimal(str(pricing.get("output_per_mtok_usd") or 0))
    per_cached = Decimal(str(pricing.get("cached_input_per_mtok_usd", pricing.get("input_per_mtok_usd")) or 0))
    total = (Decimal(input_tokens - cached) * per_in + Decimal(cached) * per_cached + Decimal(output_tokens) * per_out)
    return float(total / _PER_MTOK)


_PUBLIC: dict[tuple, dict | None] = {}


def public_pricing(spec: ModelSpec) -> dict | None:
    """The per-million-token prices ``GET /v1/automation/models`` shows, or None when unknown."""
    key = (spec.kind, spec.provider, spec.provider_model, spec.base_url, repr(spec.pricing))
    if key not in _PUBLIC:
        _PUBLIC[key] = _public_pricing(spec)
    return _PUBLIC[key]


def _public_pricing(spec: ModelSpec) -> dict | None:
    if spec.kind == "demo":
        return {"input_per_mtok_usd": 0.0, "output_per_mtok_usd": 0.0, "cached_input_per_mtok_usd": 0.0}
    if spec.pricing is not None:
        p = spec.pricing
        return {"input_per_mtok_usd": float(p.get("input_per_mtok_usd") or 0),
                "output_per_mtok_usd": float(p.get("output_per_mtok_usd") or 0),
                "cached_input_per_mtok_usd": float(p.get("cached_input_per_mtok_usd", p.get("input_per_mtok_usd")) or 0)}
    million = 1_000_000
    full = turn_cost(spec, input_tokens=million, output_tokens=0)
    out = turn_cost(spec, input_tokens=0, output_tokens=million)
    cached = turn_cost(spec, input_tokens=million, output_tokens=0, cached_input_tokens=million)
    if full is None or out is None:
        return None
    return {"input_per_mtok_usd": full, "output_per_mtok_usd": out, "cached_input_per_mtok_usd": cached}
