"""The A2A agent card served at ``/.well-known/agent-card.json``.

Skills are the agent types (general, build, plan, explore); a client picks one with
``metadata.agent_type`` on its message. Security: a bearer credential (``ct_`` API key or OAuth
access token) and the service's own OAuth 2.0 authorization server (code flow with PKCE).
"""

from __future__ import annotations

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    AuthorizationCodeOAuthFlow,
    HTTPAuthSecurityScheme,
    OAuth2SecurityScheme,
    OAuthFlows,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_1_0, TransportProtocol

from codetether.accounts.credentials import OAUTH_SCOPES, SCOPES

A2A_PATH = "/a2a"
A2A_SCOPES = ("tasks:read", "tasks:write", "messages:write")
# What a message may carry (``sending.message_text``): text, and JSON data given to the agent as text.
INPUT_MODES = ("text/plain", "application/json")

SKILLS = [
    ("general", "General agent", "Answers, writes and analyses; all tools.", ["general", "writing", "analysis"],
     ["Summarize this customer feedback: ..."]),
    ("build", "Build", "Changes code in a registered codebase and reports the diff.", ["coding", "build"],
     ["Add input validation to the signup form"]),
    ("plan", "Plan", "Reads a codebase and writes a plan (plan.md) without editing code.", ["planning"],
     ["Plan the migration from REST polling to webhooks"]),
    ("explore", "Explore", "Reads and searches a codebase and reports findings; read-only.", ["research"],
     ["Where is the rate limiter configured?"]),
]


def build_card(base: str, version: str) -> AgentCard:
    base = base.rstrip("/")
    oauth_scopes = {s: SCOPES[s] for s in OAUTH_SCOPES}
    return AgentCard(
        name="CodeTether",
        description=(
            "Durable AI-agent tasks on Temporal. Send a message to start a task; the agent may ask a "
            "question (input-required), which the next message with the same task id answers. A message "
            "with the contextId of a finished task continues that conversation in a new task."
        ),
        supported_interfaces=[
            AgentInterface(url=f"{base}{A2A_PATH}", protocol_binding=TransportProtocol.JSONRPC.value,
                           protocol_version=PROTOCOL_VERSION_1_0)
        ],
        provider=AgentProvider(organization="CodeTether", url=base),
        version=version,
        documentation_url=f"{base}/docs",
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        security_schemes={
            "bearer": SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(
                scheme="bearer", bearer_format="ct_ API key or OAuth access token",
                description="Authorization: Bearer <API key or access token>",
            )),
            "oauth2": SecurityScheme(oauth2_security_scheme=OAuth2SecurityScheme(
                description="CodeTether's OAuth 2.0 authorization server",
                flows=OAuthFlows(authorization_code=AuthorizationCodeOAuthFlow(
                    authorization_url=f"{base}/oauth/authorize", token_url=f"{base}/oauth/token",
                    refresh_url=f"{base}/oauth/token", scopes=oauth_scopes, pkce_required=True,
                )),
                oauth2_metadata_url=f"{base}/.well-known/oauth-authorization-server",
            )),
        },
        security_requirements=[
            SecurityRequirement(schemes={"bearer": StringList()}),
            SecurityRequirement(schemes={"oauth2": StringList(list=list(A2A_SCOPES))}),
        ],
        default_input_modes=list(INPUT_MODES),
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(id=sid, name=name, description=desc, tags=tags, examples=examples,
                       input_modes=list(INPUT_MODES), output_modes=["text/plain"])
            for sid, name, desc, tags, examples in SKILLS
        ],
    )
