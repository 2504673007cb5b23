"""Adds ``Authorization: Bearer $TCK_BEARER`` to every httpx client the A2A TCK makes (its runner
has no option for credentials). Put this folder first on PYTHONPATH when running the TCK; see
docs/agents.md, "A2A conformance"."""
import os

import httpx

_orig = httpx.Client.__init__
def _init(self, *a, **kw):
    h = dict(kw.pop("headers", None) or {})
    h.setdefault("Authorization", "Bearer " + os.environ["TCK_BEARER"])
    _orig(self, *a, headers=h, **kw)
httpx.Client.__init__ = _init
_orig_a = httpx.AsyncClient.__init__
def _init_a(self, *a, **kw):
    h = dict(kw.pop("headers", None) or {})
    h.setdefault("Authorization", "Bearer " + os.environ["TCK_BEARER"])
    _orig_a(self, *a, headers=h, **kw)
httpx.AsyncClient.__init__ = _init_a
