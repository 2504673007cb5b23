"""The reply-link face: ``GET``/``POST /r/<token>``, a page that answers one task question without
an API key (see :mod:`codetether.replies.link`)."""
