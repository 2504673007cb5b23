"""The sign-up verification email of the console (sent from the API process when someone signs
up on a server with ``CODETETHER_SIGNUP=open`` and SMTP configured)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from codetether.notifications.activities import _smtp_send
from codetether.core.config import Settings
from codetether.core.errors import ServiceError


async def send_verification(settings: Settings, to: str, link: str) -> None:
    msg = EmailMessage()
    msg["From"] = settings.email_from
    msg["To"] = to
    msg["Subject"] = "Confirm your CodeTether account"
    msg.set_content(
        "Someone (hopefully you) signed up for CodeTether with this address.\n\n"
        f"Confirm it and sign in: {link}\n\n"
        "The link works once, for 24 hours. If this was not you, ignore this email."
    )
    try:
        await asyncio.to_thread(_smtp_send, settings.smtp, msg, settings.smtp_timeout_seconds)
    except (smtplib.SMTPException, OSError) as err:
        raise ServiceError(503, "email_unavailable", f"The confirmation email could not be sent: {err}") from None
