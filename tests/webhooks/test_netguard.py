"""SSRF rules: a vector list of addresses, save-time URL checks and the connect-time guard."""

from __future__ import annotations

import httpx
import pytest

from codetether.core.netguard import (
    canonical_host,
    UnsafeURL,
    is_public_address,
    validate_webhook_url,
    webhook_http_client,
)
from tests.support.receiver import Receiver

BLOCKED = [
    "127.0.0.1", "127.1.2.3", "0.0.0.0", "0.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "192.0.0.8",
    "192.0.2.1", "198.18.0.1", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1",
    "::8.8.8.8", "64:ff9b::a00:1", "2002:7f00:1::", "2002:a9fe:a9fe::", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "fe80::1%eth0",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.32.0.1",
          "2606:4700:4700::1111", "2001:4860:4860::8888"]


@pytest.mark.parametrize("addr", BLOCKED)
def test_blocked_addresses(addr):
    assert not is_public_address(addr)


@pytest.mark.parametrize("addr", PUBLIC)
def test_public_addresses(addr):
    assert is_public_address(addr)


def resolver_for(mapping):
    async def resolve(host, port):
        return mapping[host]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",  # not https
        "ftp://example.com/hook",
        "https:///nohost",
        "https://user:pass@example.com/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/",
        "https://internal.example/hook",  # resolves to a private address
        "https://mixed.example/hook",  # one public, one private address: refused
        "https://nxdomain.example/hook",
        "https://example.com:99999/hook",
    ],
)
async def test_save_time_refusals(url):
    def boom(host, port):
        raise OSError("no such host")

    async def resolve(host, port):
        table = {"internal.example": ["10.1.2.3"], "mixed.example": ["8.8.8.8", "192.168.0.5"]}
        if host not in table:
            boom(host, port)
        return table[host]

    with pytest.raises(UnsafeURL):
        await validate_webhook_url(url, allow_private=False, resolver=resolve)


async def test_save_time_accepts_public_https():
    await validate_webhook_url(
        "https://hooks.example/x", allow_private=False, resolver=resolver_for({"hooks.example": ["93.184.216.34"]})
    )


async def test_allow_private_accepts_loopback_http():
    await validate_webhook_url("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(UnsafeURL):
        await validate_webhook_url("ftp://127.0.0.1/", allow_private=True)


async def test_connect_time_guard_blocks_dns_rebinding():
    """The name resolved to a public address when saved, and to loopback at send time: the
    guard resolves at connect time and refuses, so nothing reaches the local receiver."""
    answers = {"rebind.example": ["93.184.216.34"]}

    async def resolve(host, port):
        return answers[host]

    await validate_webhook_url("https://rebind.example/hook", allow_private=False, resolver=resolve)
    async with Receiver() as rx:
        answers["rebind.example"] = ["127.0.0.1"]
        client = webhook_http_client(allow_private=False, timeout=5, resolver=resolve)
        async with client:
            with pytest.raises(httpx.ConnectError, match="non-public"):
                await client.post(f"http://rebind.example:{rx.port}/hook", content=b"{}")
            with pytest.raises(httpx.ConnectError, match="non-public"):
                await client.post(f"http://127.0.0.1:{rx.port}/hook", content=b"{}")
        assert rx.requests == []


async def test_guard_connects_to_the_checked_address_with_original_host(monkeypatch):
    """The guard connects to the address it resolved and checked, and the request keeps the URL's
    host name (Host header; SNI for https). Loopback is let through by the check only here."""
    import codetether.core.netguard as ng

    monkeypatch.setattr(ng, "is_public_address", lambda ip: True)

    async def resolve(host, port):
        assert host == "hooks.example"
        return ["127.0.0.1"]

    async with Receiver() as rx:
        transport = ng.GuardedTransport(resolver=resolve, trust_env=False)
        async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:
            r = await client.post(f"http://hooks.example:{rx.port}/hook", content=b"{}")
        assert r.status_code == 200
        assert transport.backend.last_address == "127.0.0.1"
        assert rx.requests[0].headers["host"] == f"hooks.example:{rx.port}"


async def test_redirects_are_not_followed():
    async with Receiver() as rx:
        from tests.support.receiver import Reply

        rx.script([Reply(302, {"Location": "http://127.0.0.1:1/elsewhere"})])
        async with webhook_http_client(allow_private=True, timeout=5) as client:
            r = await client.post(rx.url, content=b"{}")
        assert r.status_code == 302
        assert len(rx.requests) == 1


@pytest.mark.parametrize("spelling", ["0x7f.1", "2130706433", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]",
                                      "::ffff:7f00:1", "127.0.0.1.", "127.0.0.1"])
def test_canonical_host_reads_every_spelling_of_one_address(spelling):
    assert canonical_host(spelling) == "127.0.0.1"


def test_canonical_host_folds_case_trailing_dot_and_idna_but_does_not_resolve():
    assert canonical_host("Hooks.Example.COM.") == "hooks.example.com"
    assert canonical_host("bücher.de") == "xn--bcher-kva.de"
    assert canonical_host("[2001:DB8::0:1]") == "2001:db8::1"
    assert canonical_host("cafe") == "cafe"
