"""The one Temporal client factory, used by the API, the worker, the CLI and the tests."""

from __future__ import annotations

import functools
import logging
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError, TLSConfig
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from codetether.core.config import Settings
from codetether.core.telemetry import client_interceptors
from codetether.core.search_attributes import SEARCH_ATTRIBUTES


# One cache of pydantic type adapters per process. The SDK builds a payload converter for every
# workflow instance, so the stock converter's per-instance cache rebuilt the adapters (a schema
# build each) for every task's input and every activity result.
_type_adapter = functools.lru_cache(maxsize=1024)(TypeAdapter)


class _SharedAdapterJSONConverter(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint = type_hint if type_hint is not None else Any
        try:
            adapter = _type_adapter(hint)
        except TypeError:
            try:
                hash(hint)
            except TypeError:  # an unhashable hint: no caching
                adapter = TypeAdapter(hint)
            else:
                raise
        return adapter.validate_json(payload.data)


class PayloadConverter(CompositePayloadConverter):
    """The pydantic JSON converter (same wire format as ``temporalio.contrib.pydantic``) with the
    process-wide adapter cache."""

    def __init__(self) -> None:
        super().__init__(
            *(
                _SharedAdapterJSONConverter() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


data_converter = DataConverter(payload_converter_class=PayloadConverter)


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS for the Temporal connection: mTLS with cert/key files, plain TLS, or none."""
    if settings.temporal_tls_cert or settings.temporal_tls_key:
        if not (settings.temporal_tls_cert and settings.temporal_tls_key):
            raise ValueError("CODETETHER_TEMPORAL_TLS_CERT and CODETETHER_TEMPORAL_TLS_KEY go together")
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
            server_root_ca_cert=settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None,
            domain=settings.temporal_tls_server_name,
        )
    if settings.temporal_tls_ca:
        return TLSConfig(server_root_ca_cert=settings.temporal_tls_ca.read_bytes(), domain=settings.temporal_tls_server_name)
    # An API key (Temporal Cloud) always travels over TLS.
    return bool(settings.temporal_api_key or settings.temporal_tls)


async def connect(settings: Settings, *, address: str | None = None, runtime: Runtime | None = None) -> Client:
    kwargs: dict = {}
    if settings.temporal_api_key:
        kwargs["api_key"] = settings.temporal_api_key
    if runtime is not None:
        kwargs["runtime"] = runtime
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter,
        tls=tls_config(settings),
        interceptors=client_interceptors(settings),
        **kwargs,
    )


async def missing_search_attributes(client: Client) -> list[str]:
    """The CodeTether search attributes the client's namespace lacks (creates fail without them)."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [key.name for key in SEARCH_ATTRIBUTES if key.name not in existing.custom_attributes]


async def ensure_search_attributes(client: Client) -> list[str]:
    """Registers CodeTether's search attributes if the namespace lacks them (idempotent).

    Returns the names it added. Raises ``RPCError`` where the server refuses (Temporal Cloud adds
    search attributes only through its own control plane).
    """
    missing = await missing_search_attributes(client)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing},
            )
        )
    return missing


SEARCH_ATTRIBUTES_FIX = (
    "run `codetether migrate --temporal` against this namespace (on Temporal Cloud, add them as "
    "Keyword attributes in the namespace settings)"
)


async def register_search_attributes_if_allowed(client: Client, log: logging.Logger) -> bool:
    """What the API and the worker do when they connect: add missing search attributes where the
    server allows it (the dev server and self-hosted clusters do), and say so in the log either way.
    Returns whether the namespace now has all of them."""
    try:
        added = await ensure_search_attributes(client)
    except RPCError as err:
        try:
            missing = await missing_search_attributes(client)
        except RPCError:
            missing = [key.name for key in SEARCH_ATTRIBUTES]
        if not missing:
            return True
        log.warning(
            "Temporal namespace %r lacks search attributes %s and refused to register them (%s): %s",
            client.namespace, ", ".join(missing), err.status.name if err.status else err, SEARCH_ATTRIBUTES_FIX,
        )
        return False
    if added:
        log.info("registered search attributes %s in Temporal namespace %r", ", ".join(added), client.namespace)
    return True


def dev_server_search_attribute_args() -> list[str]:
    """The dev server's search attributes, and eager activities on (a worker that completes a
    workflow task takes the activities it schedules directly: the agent's turn then runs where
    its workspace is, see codetether/agent/loop.py)."""
    args: list[str] = ["--dynamic-config-value", "system.enableActivityEagerExecution=true"]
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args
