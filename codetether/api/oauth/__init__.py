"""The OAuth 2.0 face: the authorization server (``/oauth/*``, RFC 8414 metadata), its sign-in and
consent pages, and verification of an external OIDC issuer's tokens."""
