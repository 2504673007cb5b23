"""SQLAlchemy 2 models: the durable read model and the credentials of CodeTether.

Temporal owns each task's execution; these tables hold what the API must answer without a worker
(task rows, the event log), who may call it (users, API keys, OAuth), and webhook bookkeeping.
One module per domain; every model is importable from here, which is where Alembic
(``codetether/migrations/env.py``) and the services import them from. Alembic migrations under
``migrations/`` create the tables; ``tests/unit/test_migrations.py`` checks that models and
migrations agree.
"""

from codetether.core.models.accounts import (
    ApiKey,
    ConsoleSession,
    ConsoleToken,
    SignInFailure,
    User,
)
from codetether.core.models.base import Base
from codetether.core.models.budgets import BudgetCharge, UserBudget
from codetether.core.models.codebases import Codebase
from codetether.core.models.files import StoredFile
from codetether.core.models.idempotency import IdempotencyRecord
from codetether.core.models.oauth import (
    OAuthAuthorizationCode,
    OAuthAuthorizationRequest,
    OAuthClient,
    OAuthSignInSession,
    OAuthToken,
)
from codetether.core.models.partners import (
    Partner,
    PartnerAccountLink,
    PartnerEmbedSession,
    PartnerEndUser,
    PartnerSubjectToken,
    PartnerSuggestion,
    PartnerWorkspace,
)
from codetether.core.models.replies import EmailReplyUse, InboundWebhookSignature
from codetether.core.models.sponsorships import PartnerSponsorship
from codetether.core.models.tasks import AgentMessage, Task, TaskArtifact, TaskEvent
from codetether.core.models.webhooks import (
    A2APushConfig,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "A2APushConfig",
    "AgentMessage",
    "ApiKey",
    "Base",
    "BudgetCharge",
    "Codebase",
    "ConsoleSession",
    "ConsoleToken",
    "EmailReplyUse",
    "IdempotencyRecord",
    "InboundWebhookSignature",
    "OAuthAuthorizationCode",
    "OAuthAuthorizationRequest",
    "OAuthClient",
    "OAuthSignInSession",
    "OAuthToken",
    "Partner",
    "PartnerAccountLink",
    "PartnerEmbedSession",
    "PartnerEndUser",
    "PartnerSponsorship",
    "PartnerSubjectToken",
    "PartnerSuggestion",
    "PartnerWorkspace",
    "SignInFailure",
    "StoredFile",
    "Task",
    "TaskArtifact",
    "TaskEvent",
    "User",
    "UserBudget",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
