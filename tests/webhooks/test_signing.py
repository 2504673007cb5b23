"""The verification helpers receivers can use, checked against independently computed values,
and the seeds' n8n Code-node snippet run under Node against a real delivery body."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from codetether.webhooks.activities import parse_retry_after
from codetether.core import jsoncompact
from codetether.webhooks.signing import (
    SignatureError,
    generate_secret,
    signed_headers,
    standard_key,
    verify_codetether,
    verify_standard,
)
from tests.webhooks.helpers import expected_hex, expected_v1

BODY = jsoncompact.dumps({"id": "evt_1", "event": "task.completed", "n": 1.0, "s": "é\u2028", "m": {"2": 1, "a": 0}})


def test_generated_secret_shape():
    s = generate_secret()
    assert s.startswith("whsec_") and len(base64.b64decode(s[6:])) >= 24
    assert standard_key(s) == base64.b64decode(s[6:])
    assert standard_key("plain-secret") == b"plain-secret"


def test_headers_match_independent_computation():
    secret = generate_secret()
    h = signed_headers(body=BODY, event_id="evt_1", event_type="task.completed", delivery_id="dlv_1",
                       secrets=[secret], user_agent="CodeTether-Webhooks/test", timestamp=1700000000)
    raw = BODY.encode()
    assert h["X-CodeTether-Signature"] == expected_hex(secret, raw)
    assert h["webhook-signature"] == expected_v1(secret, "evt_1", "1700000000", raw)
    assert h["webhook-id"] == "evt_1" and h["X-CodeTether-Delivery"] == "dlv_1"
    verify_standard(secret, h, raw, now=1700000000)
    verify_codetether(secret, h, raw, now=1700000100)
    with pytest.raises(SignatureError):
        verify_standard(secret, h, raw + b" ", now=1700000000)
    with pytest.raises(SignatureError):
        verify_standard(secret, h, raw, now=1700009999)  # too old: replay protection
    with pytest.raises(SignatureError):
        verify_codetether("other-secret-xyz", h, raw, now=1700000000)


def test_rotation_sends_one_signature_per_valid_secret():
    new, old = generate_secret(), generate_secret()
    h = signed_headers(body=BODY, event_id="evt_1", event_type="ping", delivery_id="dlv_1",
                       secrets=[new, old], user_agent="x", timestamp=1700000000)
    parts = h["webhook-signature"].split(" ")
    assert parts == [expected_v1(new, "evt_1", "1700000000", BODY.encode()),
                     expected_v1(old, "evt_1", "1700000000", BODY.encode())]
    verify_standard(old, h, BODY, now=1700000000)
    verify_standard(new, h, BODY, now=1700000000)
    assert h["X-CodeTether-Signature"] == expected_hex(new, BODY.encode())


def test_unsigned_without_secret():
    h = signed_headers(body=BODY, event_id="evt_1", event_type="ping", delivery_id="dlv_1", secrets=[], user_agent="x")
    assert "webhook-signature" not in h and "X-CodeTether-Signature" not in h
    assert h["webhook-id"] == "evt_1"


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


N8N_SNIPPET = """
const crypto = require('crypto');
const secret = 'your-webhook-secret';
const payload = JSON.stringify($json.body);
const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(payload).digest('hex');
const actual = $json.headers['x-codetether-signature'];

if (actual !== expected) {
  throw new Error('Invalid webhook signature');
}

return $json;
"""


def run_n8n_snippet(body: bytes, headers: dict[str, str], secret: str) -> subprocess.CompletedProcess:
    """Runs the seeds' Code-node snippet as written (only the secret filled in) the way n8n does:
    ``$json.body`` is the parsed JSON body, ``$json.headers`` the lower-cased headers."""
    node = shutil.which("node")
    assert node is not None
    code = N8N_SNIPPET.replace("your-webhook-secret", secret)
    program = (
        "const fs = require('fs');\n"
        "const input = JSON.parse(fs.readFileSync(0, 'utf8'));\n"
        "const $json = {body: JSON.parse(input.body), headers: input.headers};\n"
        f"const result = (function() {{ {code} }})();\n"
        "process.stdout.write(JSON.stringify(result.body));\n"
    )
    stdin = json.dumps({"body": body.decode("utf-8"), "headers": headers})
    return subprocess.run([node, "-e", program], check=False, input=stdin, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_n8n_snippet_verifies_a_tricky_body():
    secret = "n8n-secret-0123456789"
    payload = {"id": "evt_x", "event": "task.completed", "result": "línea\n\u2028 \"q\" </script> 😀",
               "duration_seconds": 1.5, "metadata": {"10": "a", "2": "b", "z": 1e21, "k": 0.000001, "f": 2.0},
               "data": {"progress": None}}
    body = jsoncompact.dumps(payload).encode()
    h = {k.lower(): v for k, v in signed_headers(body=body, event_id="evt_x", event_type="task.completed",
                                                 delivery_id="dlv_x", secrets=[secret], user_agent="x").items()}
    done = run_n8n_snippet(body, h, secret)
    assert done.returncode == 0, done.stderr
    assert done.stdout.encode() == body
    bad = run_n8n_snippet(body, {**h, "x-codetether-signature": "sha256=00"}, secret)
    assert bad.returncode != 0 and "Invalid webhook signature" in bad.stderr


def _doc_block(begin: str, end: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    block = text.split(begin, 1)[1].split(end, 1)[0]
    return block.split("```js", 1)[1].rsplit("```", 1)[0]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_documented_node_verifier_accepts_real_signatures():
    verifier = _doc_block("<!-- node-verify:begin -->", "<!-- node-verify:end -->")
    old, new = generate_secret(), generate_secret()
    body = jsoncompact.dumps({"id": "evt_n", "event": "task.failed", "error": {"code": "x", "message": "ü"}}).encode()
    h = {k.lower(): v for k, v in signed_headers(body=body, event_id="evt_n", event_type="task.failed",
                                                 delivery_id="dlv_n", secrets=[new, old], user_agent="x").items()}
    program = verifier + (
        "\nconst input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        "const raw = Buffer.from(input.body, 'base64');\n"
        "const ok = input.secrets.map((s) => verifyCodeTether(s, input.headers, raw));\n"
        "process.stdout.write(JSON.stringify(ok));\n"
    )
    stdin = json.dumps({"body": base64.b64encode(body).decode(), "headers": h,
                        "secrets": [new, old, generate_secret()]})
    done = subprocess.run([shutil.which("node"), "-e", program], check=False, input=stdin,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, True, False]
