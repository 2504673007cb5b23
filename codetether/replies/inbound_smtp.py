"""``codetether inbound-smtp``: an SMTP listener (aiosmtpd) for replies to CodeTether's emails.

Meant to sit behind the MX of ``CODETETHER_INBOUND_EMAIL_DOMAIN`` or behind a relay. It accepts
``RCPT TO`` only for ``reply+<token>@<that domain>`` with a token this server signed (anything else
is ``550``, and logged), refuses messages over ``CODETETHER_INBOUND_EMAIL_MAX_BYTES`` (``552``),
and hands each accepted message to :func:`codetether.replies.inbound_email.handle_reply`, the same logic as the
providers' webhooks. The listener sees the sending host, so it checks the sender itself
(:func:`codetether.replies.senderauth.check_message`: DKIM, then SPF for the connecting address
and ``MAIL FROM``). A message that is accepted but does nothing (an automatic reply, a wrong or
unauthenticated sender) is answered ``250`` so no bounce goes back to a forged sender; the log
says why.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.client import Client

from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.replies.inbound_email import (
    BAD_TOKEN,
    NOT_FOR_US,
    InboundReply,
    handle_reply,
    reply_from_message,
)
from codetether.replies.senderauth import TxtLookup, check_message
from codetether.replies.tokens import token_from_address, verify_email

log = logging.getLogger("codetether.inbound_email")


class ReplyHandler:
    """aiosmtpd handler: recipients checked at RCPT, messages processed at DATA."""

    def __init__(self, settings: Settings, db: Database, client: Client, *, txt_lookup: TxtLookup | None = None) -> None:
        self.settings = settings
        self.db = db
        self.client = client
        self.txt_lookup = txt_lookup  # None: the system resolver

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options):
        token = token_from_address(self.settings, address)
        probe = InboundReply(recipient=address, sender=envelope.mail_from or "", text="", channel="smtp")
        if token is None:
            log.warning("rejected email reply via smtp to task - from %s: %s (%s)", probe.sender or "-", NOT_FOR_US,
                        "not a reply address of this server")
            return "550 5.1.1 No such reply address here"
        if verify_email(self.settings, token) is None:
            log.warning("rejected email reply via smtp to task - from %s: %s (%s)", probe.sender or "-", BAD_TOKEN,
                        "the reply address is not signed by this server")
            return "550 5.1.1 No such reply address here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        raw = envelope.original_content or envelope.content
        msg = message_from_bytes(raw, policy=policy.default)
        check = None
        if self.settings.inbound_email_verify_sender:
            peer_ip = session.peer[0] if isinstance(session.peer, tuple) else None
            # DNS lookups block: off the event loop.
            check = await asyncio.to_thread(
                check_message, raw, str(msg.get("From", "")), peer_ip=peer_ip, helo=session.host_name,
                mail_from=envelope.mail_from, txt_lookup=self.txt_lookup,
            )
        for rcpt in envelope.rcpt_tos:
            reply = reply_from_message(msg, recipient=rcpt, envelope_sender=envelope.mail_from, channel="smtp")
            reply.sender_check = check
            try:
                await handle_reply(self.db, self.client, self.settings, reply)
            except Exception:  # noqa: BLE001 - any failure: the sending server tries again later
                log.exception("email reply to %s could not be processed", rcpt.split("@")[-1])
                return "451 4.3.0 Temporary failure, try again later"
        return "250 OK"


async def start_server(settings: Settings, db: Database, client: Client, host: str, port: int, *,
                       txt_lookup: TxtLookup | None = None) -> asyncio.Server:
    handler = ReplyHandler(settings, db, client, txt_lookup=txt_lookup)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=settings.inbound_email_max_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.inbound_email_domain or None,
            ident="CodeTether inbound",
        ),
        host=host,
        port=port,
    )


async def serve(settings: Settings, host: str, port: int) -> None:
    """Runs the listener until SIGTERM or SIGINT."""
    from codetether.core.temporal import connect

    if not settings.inbound_email_domain or not settings.reply_secret:
        raise SystemExit("inbound-smtp needs CODETETHER_INBOUND_EMAIL_DOMAIN and CODETETHER_REPLY_SECRET")
    # aiosmtpd logs every command at INFO, reply addresses (tokens) included: keep it to problems.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    db = Database.from_settings(settings)
    client = await connect(settings)
    server = await start_server(settings, db, client, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("inbound SMTP for @%s listening on %s:%d", settings.inbound_email_domain, host, port)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        await db.dispose()
