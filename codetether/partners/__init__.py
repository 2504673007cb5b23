"""Partners ("Powered by CodeTether", CONTRACT §14): products that run CodeTether tasks for their
own users.

- :mod:`codetether.partners.registry`: ``codetether partners create`` (a partner is a confidential
  OAuth client with a service account), origins, the partner behind a client;
- :mod:`codetether.partners.end_users`: the partner's end users and workspaces, each end user
  backed by a real user row, provisioned idempotently by external id;
- :mod:`codetether.partners.subject_tokens`: the JWTs a partner signs for one of its users and
  exchanges at ``/oauth/token`` (RFC 8693), verified against its JWKS or shared secret, with a
  replay cache of their ``jti``;
- the guesser (``POST /v1/partner/guess``): :mod:`codetether.partners.guesser` (rules, the
  schema, checking an answer against what the service offers), :mod:`codetether.partners.estimates`
  (cost and time from similar completed tasks), :mod:`codetether.partners.suggestions` (the
  single-use prefilled URLs), and the guess workflow and its activity (``workflow.py``,
  ``activities.py``, ``contracts.py``).

The HTTP faces are ``codetether/api/rest/routes/partners.py`` and
``codetether/api/oauth/token_exchange.py``; acting for an end user with the
``CodeTether-End-User`` header is resolved in ``codetether/api/auth.py``.
"""
