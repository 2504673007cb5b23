"""Domain refusals are one family (ServiceError) carrying their status, code and message; each
face shows one from those fields alone."""

from a2a.utils.errors import InternalError, InvalidParamsError, InvalidRequestError, TaskNotFoundError

from codetether.accounts.oauth_clients import OAuthClientError
from codetether.accounts.service import AccountError
from codetether.api.a2a.errors import a2a_error
from codetether.api.mcp.server import tool_error
from codetether.codebases.service import CodebaseError
from codetether.core.errors import ServiceError, not_found
from codetether.tasks import conversation
from codetether.tasks.conversation import ConversationError


def test_conversation_errors_carry_their_status():
    for code in (conversation.TASK_NOT_WAITING, conversation.STALE_REQUIRED_ACTION, conversation.TASK_BUSY):
        assert ConversationError(code, "m").status == 409
    for code in (conversation.WORKER_UNAVAILABLE, conversation.TEMPORAL_UNAVAILABLE):
        assert ConversationError(code, "m").status == 503
    err = ConversationError(conversation.TASK_BUSY, "busy")
    assert isinstance(err, ServiceError) and (err.code, err.message, err.errors, str(err)) == ("task_busy", "busy", None, "busy")


def test_codebase_errors_are_422_with_their_field():
    err = CodebaseError("ref must be a branch", code="invalid_ref", field="ref")
    assert isinstance(err, ServiceError) and isinstance(err, ValueError)
    assert (err.status, err.code, str(err)) == (422, "invalid_ref", "ref must be a branch")
    assert err.errors == [{"field": "ref", "message": "ref must be a branch", "type": "invalid_ref"}]
    assert CodebaseError("no user x", code="unknown_user").errors is None


def test_account_errors_join_the_family():
    assert (AccountError("bad").status, AccountError("bad").code) == (422, "invalid_account")
    assert (OAuthClientError("bad").status, OAuthClientError("bad").code) == (422, "invalid_oauth_client")


def test_a2a_error_follows_status_and_code():
    assert isinstance(a2a_error(not_found("task", "t1")), TaskNotFoundError)
    assert isinstance(a2a_error(ServiceError(422, "validation_error", "x")), InvalidParamsError)
    assert isinstance(a2a_error(ConversationError(conversation.TEMPORAL_UNAVAILABLE, "x")), InternalError)
    err = a2a_error(ConversationError(conversation.TASK_NOT_WAITING, "not waiting"))
    assert type(err) is InvalidRequestError and err.data == {"code": "task_not_waiting"}


def test_mcp_tool_error_text():
    assert str(tool_error(ConversationError(conversation.TASK_BUSY, "retry"))) == "task_busy: retry"
