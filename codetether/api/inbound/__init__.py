"""The inbound-email face: providers' inbound-parse webhooks that deliver email replies
(``POST /v1/inbound/email/mailgun``, ``POST /v1/inbound/email/postmark``), see
:mod:`codetether.replies.inbound_email`."""
