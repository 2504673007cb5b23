"""How CODETETHER_TEMPORAL_* settings become the Temporal connection's TLS (self-hosted mTLS and
Temporal Cloud with mTLS or an API key)."""

from __future__ import annotations

import pytest
from temporalio.service import TLSConfig

from codetether.core.config import Settings
from codetether.core.telemetry import client_interceptors
from codetether.core.temporal import tls_config


def test_plain_connection_by_default():
    assert tls_config(Settings(_env_file=None)) is False


def test_api_key_implies_tls():
    assert tls_config(Settings(_env_file=None, temporal_api_key="k")) is True
    assert tls_config(Settings(_env_file=None, temporal_tls=True)) is True


def test_mtls_reads_cert_key_and_ca(tmp_path):
    cert, key, ca = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    ca.write_bytes(b"CA")
    cfg = tls_config(
        Settings(_env_file=None, temporal_tls_cert=cert, temporal_tls_key=key, temporal_tls_ca=ca,
                 temporal_tls_server_name="ns.tmprl.cloud")
    )
    assert isinstance(cfg, TLSConfig)
    assert (cfg.client_cert, cfg.client_private_key, cfg.server_root_ca_cert, cfg.domain) == (
        b"CERT", b"KEY", b"CA", "ns.tmprl.cloud"
    )


def test_cert_without_key_is_refused(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_bytes(b"CERT")
    with pytest.raises(ValueError, match="go together"):
        tls_config(Settings(_env_file=None, temporal_tls_cert=cert))


def test_tracing_interceptor_only_when_enabled():
    assert client_interceptors(Settings(_env_file=None)) == []
    (interceptor,) = client_interceptors(Settings(_env_file=None, otel_enabled=True))
    assert type(interceptor).__name__ == "TracingInterceptor"
