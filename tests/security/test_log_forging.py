"""Finding 6: log forging.

``%0a`` in a URL path wrote a forged line into the plain-text access log and ``%00`` a NUL. Every
control character of a log message is now escaped, so one record stays one line.
"""

from __future__ import annotations

import json

import pytest

from codetether.core.config import Settings
from codetether.core.logging import escape_controls, setup_logging


@pytest.mark.parametrize("json_lines", [False, True])
async def test_forged_lines_and_nul_never_reach_the_access_log(stack, capsys, restore_logging, json_lines):
    setup_logging(Settings(data_dir=stack.settings.data_dir, log_json=json_lines))
    capsys.readouterr()
    forged = "/v1/x%0a2026-12-02 00:00:00,000 INFO codetether.access: GET /admin 200 0.1ms%0d%00%1b[31m%e2%80%a8end"
    r = await stack.http.get(forged)
    assert r.status_code in (401, 404)
    err = capsys.readouterr().err
    access = [line for line in err.splitlines() if "codetether.access" in line or '"codetether.access"' in line]
    assert access, err
    assert "\x00" not in err and "\x1b" not in err and "\r" not in err and "\u2028" not in err
    assert not any(line.startswith("2026-12-02 00:00:00,000") for line in err.splitlines())
    line = next(line for line in access if "/v1/x" in line)
    if json_lines:
        message = json.loads(line)["message"]
        assert "\n" in message  # escaped by the JSON encoder, restored by a JSON reader only
    else:
        assert "/v1/x\\n2026-12-02" in line and "\\x00" in line and "\\x1b" in line and "\\u2028" in line


def test_escape_controls_covers_c0_del_c1_and_line_separators():
    assert escape_controls("a\nb\rc\td\x00e\x7ff\x85g\u2028h\u2029") == "a\\nb\\rc\\td\\x00e\\x7ff\\x85g\\u2028h\\u2029"
    assert escape_controls("plain ascii and ünïcode ☃") == "plain ascii and ünïcode ☃"
