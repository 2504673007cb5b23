"""The signed tokens on their own: reply addresses fit a local part and survive case folding, and
any change to a token, the secret or the domain makes it worthless; the dev stack keeps one secret."""

from __future__ import annotations

import stat

from codetether.cli.dev import ensure_reply_secret
from codetether.core.config import Settings
from codetether.core.ids import new_id
from codetether.replies.tokens import (
    reply_address,
    sign_email,
    sign_link,
    token_from_address,
    verify_email,
    verify_link,
)

S = Settings(reply_secret="unit-test-reply-secret-0123456789", inbound_email_domain="Reply.Example.com")


def test_reply_address_round_trip_and_shape():
    task_id = new_id("task")
    address = reply_address(S, task_id, 12)
    local, domain = address.split("@")
    assert local.startswith("reply+") and len(local) <= 64 and domain == "Reply.Example.com"
    for variant in (address, address.upper(), f"Olive <{address}>".replace("Olive ", "")):
        token = token_from_address(S, variant)
        claim = verify_email(S, token)
        assert claim is not None and (claim.task_id, claim.seq) == (task_id, 12)


def test_changed_tokens_are_worthless():
    task_id = new_id("task")
    token = sign_email(S, task_id, 3)
    for i in range(len(token)):
        flipped = token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1:]
        assert verify_email(S, flipped) is None, i
    assert verify_email(S.model_copy(update={"reply_secret": "another-secret-0123456789"}), token) is None
    assert verify_email(S.model_copy(update={"reply_secret": None}), token) is None
    assert verify_email(S, token[:-1]) is None and verify_email(S, "") is None
    # Addresses on other domains or without the prefix are not ours.
    assert token_from_address(S, f"reply+{token}@example.com") is None
    assert token_from_address(S, f"{token}@reply.example.com") is None
    # Link and email tokens never stand in for each other.
    link = sign_link(S, task_id, "act_x", 2**40)
    assert verify_email(S, link) is None and verify_link(S, token) is None
    assert verify_link(S, link + "x") is None and verify_link(S, link).required_action_id == "act_x"


def test_no_tokens_without_a_secret():
    bare = Settings(inbound_email_domain="reply.example.com")
    assert sign_link(bare, new_id("task"), "act_x", 2**40) is None
    assert reply_address(bare, new_id("task"), 1) is None
    assert reply_address(Settings(reply_secret="x" * 20), new_id("task"), 1) is None  # no domain


def test_dev_stack_generates_one_private_secret(tmp_path):
    first = ensure_reply_secret(tmp_path)
    assert len(first) >= 40
    assert ensure_reply_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "reply_secret").stat().st_mode) == 0o600
