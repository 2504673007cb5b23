"""The one Temporal client factory, used by the API, the worker, the CLI and the tests."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.config import Settings
from workflows.types import SEARCH_ATTRIBUTES


async def connect(settings: Settings, *, address: str | None = None) -> Client:
    kwargs: dict = {}
    if settings.temporal_api_key:
        kwargs["api_key"] = settings.temporal_api_key
        kwargs["tls"] = True
    elif settings.temporal_tls:
        kwargs["tls"] = True
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        **kwargs,
    )


async def ensure_search_attributes(client: Client) -> None:
    """Registers CodeTether's search attributes if the namespace lacks them (idempotent)."""
    ns = client.namespace
    existing = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=ns))
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=ns, search_attributes=missing)
        )


def dev_server_search_attribute_args() -> list[str]:
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args
