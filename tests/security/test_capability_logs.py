"""Second probe, L5: capability tokens in the access log.

Whoever holds ``/r/<token>`` (a reply link), ``/console/link/<token>`` (a sign-in link) or
``/console/verify/<token>`` (an address confirmation) can act without a key, and the access log
wrote each of them out in full. The token segment is now ``[redacted]`` in every log line, plain
text and JSON alike.
"""

from __future__ import annotations

import json
import logging

import pytest

from codetether.core.config import Settings
from codetether.core.logging import redact_paths, setup_logging

TOKEN = "cApAbIlItY-token_0123456789.abcdef"


@pytest.mark.parametrize("json_lines", [False, True])
async def test_tokens_of_capability_paths_never_reach_the_log(stack, capsys, restore_logging, json_lines):
    setup_logging(Settings(data_dir=stack.settings.data_dir, log_json=json_lines))
    capsys.readouterr()
    for path in (f"/r/{TOKEN}", f"/console/link/{TOKEN}", f"/console/verify/{TOKEN}"):
        await stack.http.get(path)
        await stack.http.post(path, data={"message": "x"})
    # A line written by other code (an HTTP client, a refusal) is covered too.
    logging.getLogger("codetether.test").warning("fetched https://ct.example.com/r/%s?x=1", TOKEN)
    err = capsys.readouterr().err
    assert TOKEN not in err, err
    access = [line for line in err.splitlines() if "codetether.access" in line]
    assert len(access) >= 6, err
    for prefix in ("/r/", "/console/link/", "/console/verify/"):
        assert any(f"{prefix}[redacted]" in line for line in access), (prefix, err)
    if json_lines:
        assert all(json.loads(line)["message"] for line in access)


def test_redact_paths_keeps_other_paths_and_what_follows_the_token():
    assert redact_paths("GET /r/abc.DEF-1 200") == "GET /r/[redacted] 200"
    assert redact_paths("POST /console/link/abc/x?y") == "POST /console/link/[redacted]/x?y"
    assert redact_paths("https://h/console/verify/tok?next=1") == "https://h/console/verify/[redacted]?next=1"
    assert redact_paths("GET /v1/automation/tasks/task_01 200") == "GET /v1/automation/tasks/task_01 200"
    assert redact_paths("GET /console/login 200") == "GET /console/login 200"
    assert redact_paths("GET /embed/v1/frame/emb_01?suggestion=sgt_abc-1&x=2 200") == \
        "GET /embed/v1/frame/emb_01?suggestion=[redacted]&x=2 200"
