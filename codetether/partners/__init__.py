"""Partners ("Powered by CodeTether", CONTRACT §14): products that run CodeTether tasks for their
own users.

- :mod:`codetether.partners.registry`: ``codetether partners create`` (a partner is a confidential
  OAuth client with a service account), origins, the partner behind a client;
- :mod:`codetether.partners.end_users`: the partner's end users and workspaces, each end user
  backed by a real user row, provisioned idempotently by external id;
- :mod:`codetether.partners.subject_tokens`: the JWTs a partner signs for one of its users and
  exchanges at ``/oauth/token`` (RFC 8693), verified against its JWKS or shared secret, with a
  replay cache of their ``jti``.

The HTTP faces are ``codetether/api/rest/routes/partners.py`` and
``codetether/api/oauth/token_exchange.py``; acting for an end user with the
``CodeTether-End-User`` header is resolved in ``codetether/api/auth.py``.
"""
