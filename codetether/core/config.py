"""The one place CodeTether reads its configuration.

Every process (API, worker, CLI, tests) builds a :class:`Settings` from environment variables
prefixed ``CODETETHER_`` and an optional ``.env`` file. Model-provider credentials keep their usual
names (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...); :meth:`Settings.provider_env` is the only
reader of those, so no other module touches ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Seconds between webhook delivery attempts: 9 attempts spread over ~27.6 hours.
DEFAULT_WEBHOOK_RETRY_SCHEDULE = "5,60,300,1800,7200,18000,36000,36000"

TASK_QUEUE = "codetether-tasks"


SMTP_SECURITY = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # "none", "starttls" or "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp[s|+starttls]://[user[:password]@]host[:port]`` to an :class:`SmtpServer`."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SMTP_SECURITY:
        raise ValueError("smtp_url must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("smtp_url needs a host")
    security, default_port = SMTP_SECURITY[scheme]
    try:
        port = parts.port or default_port
    except ValueError as err:
        raise ValueError(f"smtp_url has a bad port: {err}") from None
    return SmtpServer(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CODETETHER_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Path(".data")
    database_url: str | None = None

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = TASK_QUEUE
    temporal_api_key: str | None = None
    temporal_tls: bool = False
    # mTLS to a self-hosted cluster or Temporal Cloud: PEM files (client cert + key; CA optional).
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_tls_server_name: str | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = None
    # Without public_url: host names (comma separated) besides loopback that the server may name
    # itself by, taken from a request's Host header (codetether/api/edge/public_base.py).
    allowed_hosts: str = ""
    # DNS-rebinding protection of /mcp (codetether/api/mcp/guard.py): Host names and browser
    # Origins it answers besides the server's own (the public URL's host and origin,
    # allowed_hosts, loopback while api_host is loopback); comma separated, "*" allows any.
    mcp_allowed_hosts: str = ""
    mcp_allowed_origins: str = ""
    # /mcp sessions (opened by clients that declare elicitation, codetether/api/mcp/routes.py):
    # closed after this long without a request in flight, and at most this many per API process.
    mcp_session_idle_seconds: float = Field(default=1800.0, gt=0)
    mcp_max_sessions: int = Field(default=10_000, ge=1)

    redis_url: str | None = None
    # Requests per minute per client IP for calls without a bearer token (see codetether/api/edge/ratelimit.py).
    rate_limit_ip_per_minute: int = Field(default=120, ge=1)

    webhook_secret: str | None = None
    webhook_allow_private: bool = False
    webhook_retry_schedule: str = DEFAULT_WEBHOOK_RETRY_SCHEDULE
    webhook_timeout_seconds: float = 15.0

    # Email for tasks created with notify_email (activities/email.py). smtp:// sends in the clear
    # (port 25 by default), smtp+starttls:// upgrades with STARTTLS (587), smtps:// is TLS from the
    # first byte (465); user:password in the URL (percent-encoded) logs in. Unset: notify_email is
    # refused with 422 rather than accepted and never sent.
    smtp_url: str | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    email_from: str = "CodeTether <noreply@localhost>"

    # Answering from anywhere (docs/conversations.md): signed reply links (/r/<token>) and email
    # replies to reply+<token>@<inbound_email_domain>. Without reply_secret neither is offered;
    # `codetether dev` generates one in the data dir. A link lives reply_link_ttl_seconds (at most
    # the task's input timeout) and answers reply_link_rate_per_minute requests a minute at most.
    reply_secret: str | None = Field(default=None, repr=False)
    reply_link_ttl_seconds: float = Field(default=7 * 86400, gt=0)
    reply_link_rate_per_minute: int = Field(default=20, ge=1)
    inbound_email_domain: str | None = None
    # A reply from an address other than the task's notify_email is refused unless this is true.
    inbound_email_allow_any_sender: bool = False
    # A reply counts only when its From: domain is authenticated (DKIM, or SPF at the SMTP
    # listener, or the provider's verdicts; codetether/replies/senderauth.py). False only behind a
    # relay that already refuses unauthenticated mail.
    inbound_email_verify_sender: bool = True
    # A reply address stops working this long after its email was sent; each one is used once.
    reply_email_ttl_seconds: float = Field(default=7 * 86400, gt=0)
    inbound_email_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Providers' inbound webhooks: Mailgun's webhook signing key; Postmark's basic-auth password.
    mailgun_signing_key: str | None = Field(default=None, repr=False)
    postmark_inbound_secret: str | None = Field(default=None, repr=False)

    allow_query_api_key: bool = False
    # Seconds a request holds its Idempotency-Key before a retry may assume it crashed.
    idempotency_lock_seconds: float = 60.0

    default_model: str | None = None
    models_file: Path | None = None
    # The model that turns a description into a task (POST /v1/partner/guess); default: the
    # service's default model. How long that route waits for its answer.
    guess_model: str | None = None
    guess_timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    # RFC 7591 dynamic client registration at /oauth/register (public PKCE clients such as MCP
    # hosts), and how many registrations one client address may make per hour.
    oauth_dynamic_registration: bool = True
    oauth_registrations_per_hour: int = Field(default=20, ge=1)

    # A just-rotated OAuth refresh token may be used again this long (parallel refreshes, e.g. two
    # Zap runs at once) and yields a new pair of the same family; after it, reuse revokes the family.
    oauth_refresh_grace_seconds: float = Field(default=30.0, ge=0, le=300)

    log_level: str = "INFO"
    log_json: bool = False

    # Observability: the worker's Temporal SDK metrics (Prometheus, off unless a port is set) and
    # OpenTelemetry tracing through Temporal's interceptor (needs opentelemetry-sdk installed).
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"
    otel_enabled: bool = False

    # How long a single agent turn may take before Temporal retries it on another worker.
    agent_turn_timeout_seconds: float = 1800.0
    agent_max_attempts: int = 5
    # Worker tuning (see docs/performance.md for the measurements behind these).
    worker_workflow_pollers: int = 20
    worker_activity_pollers: int = 10
    # Each cached task workflow costs the worker ~225 KiB; past the cache, parked tasks are evicted
    # and replayed on their reply. 1000 keeps 10,000 parked tasks under ~500 MiB (docs/performance.md).
    worker_max_cached_workflows: int = 1000

    # The web console (api/console/): open sign-up ("open") or accounts made by an admin only
    # ("closed"); with SMTP configured an open sign-up is confirmed by an emailed link.
    signup: Literal["open", "closed"] = "closed"
    console_session_hours: float = Field(default=12.0, gt=0)
    # Failed password sign-ins (console and /oauth/authorize, codetether/accounts/signin.py): an account is locked
    # after signin_max_failures within signin_failure_window_seconds, a client IP after
    # signin_ip_max_failures; either lock lasts signin_lockout_seconds.
    signin_max_failures: int = Field(default=5, ge=1)
    signin_ip_max_failures: int = Field(default=20, ge=1)
    signin_failure_window_seconds: float = Field(default=900.0, gt=0)
    signin_lockout_seconds: float = Field(default=900.0, gt=0)

    # Console sign-in through the external OIDC issuer (authorization code flow with PKCE) needs a
    # client registered at the issuer, with redirect URI <public url>/console/oidc/callback.
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)


    # Security limits and the proxy setup (docs/security.md).
    # Webhook subscriptions per user, and per user toward one destination host.
    webhook_max_subscriptions_per_user: int = Field(default=50, ge=1)
    webhook_max_subscriptions_per_host: int = Field(default=20, ge=1)
    # Requests one user may hold open at once: ?wait= long-polls and SSE streams (per API process).
    max_open_streams_per_user: int = Field(default=20, ge=1)
    # Monthly model spend per user in USD, by tier, while the user has set none (CONTRACT §13);
    # None: no limit.
    budget_limit_usd_free: float | None = Field(default=None, gt=0)
    budget_limit_usd_pro: float | None = Field(default=None, gt=0)
    budget_limit_usd_enterprise: float | None = Field(default=None, gt=0)
    # Addresses or CIDRs of reverse proxies whose X-Forwarded-For/-Proto are believed (comma
    # separated, or "*"); a request from anywhere else keeps its own peer address and scheme.
    trusted_proxies: str = "127.0.0.1,::1"
    # Total size of a request's header section; larger requests get 431 before the app runs.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # ---- the coding agent (docs/agent.md) ----
    # Local paths and file:// repository URLs (self-hosted); true under `codetether dev`.
    codebase_allow_local: bool = False
    # Fernet key (urlsafe base64, 32 bytes) that encrypts codebase credentials at rest.
    # `codetether dev` generates one in the data dir; unset elsewhere, credentials are refused.
    codebase_key: str | None = Field(default=None, repr=False)
    # Where workers clone workspaces (default: a per-data-dir folder under the system temp dir,
    # which the sandbox uids can traverse).
    workspace_root: Path | None = None
    agent_max_turns: int = Field(default=50, ge=1, le=1000)
    # Input plus output tokens one task may spend before it stops with `token_budget_exceeded`.
    agent_token_budget: int = Field(default=2_000_000, ge=1000)
    # Bytes of a tool's output that go into the transcript; the rest is kept as an artifact.
    agent_tool_output_cap: int = Field(default=32_000, ge=1000)
    # Largest workspace checkpoint (git diff --binary against the base commit) kept.
    agent_checkpoint_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # bash runs under bubblewrap; without it bash is refused unless this is set (no isolation).
    sandbox_allow_unsafe: bool = False
    # First of the unprivileged uids bash runs as when the worker is root (one per slot).
    sandbox_uid_base: int = 61000
    sandbox_slots: int = Field(default=8, ge=1, le=256)
    sandbox_memory_bytes: int = 2 * 1024 * 1024 * 1024
    sandbox_max_processes: int = 256
    sandbox_max_file_bytes: int = 256 * 1024 * 1024
    # Size of the sandbox's private /tmp (a tmpfs in memory, so it counts against the worker's RAM).
    sandbox_tmp_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    # Host folders the sandbox sees read-only beyond the built-in list (comma-separated), e.g. /opt/node.
    sandbox_read_paths: str = ""
    # One cgroup per command (memory, processes) when the worker may create cgroups; off: rlimits only.
    sandbox_cgroups: bool = True
    # Disk the workspace may take (checked after every tool call that may change files).
    workspace_quota_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1024 * 1024)
    # The file tools run on their own threads (never the default pool DNS and webhooks share).
    file_tool_threads: int = Field(default=4, ge=1, le=64)
    file_tool_timeout_seconds: float = Field(default=60.0, gt=0)
    # Pull requests (push policy pull_request) go to this GitHub REST API.
    github_api_url: str = "https://api.github.com"

    # ---- input files (docs/files.md) ----
    # Largest file an upload or an attachment URL may bring (413 file_too_large past it).
    files_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # Bytes of unexpired files one user may keep (413 file_quota_exceeded past it).
    files_quota_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    # A file is deleted (bytes and row) this long after its upload.
    files_ttl_seconds: float = Field(default=7 * 86400, gt=0)
    # How often the cleanup schedule (a Temporal Schedule the worker creates) deletes expired files.
    files_cleanup_interval_seconds: float = Field(default=3600, ge=60)
    # Seconds an attachment URL may take to answer and deliver its body.
    attachment_fetch_timeout_seconds: float = Field(default=60.0, gt=0)
    # S3-compatible object storage for the files; unset bucket: a folder in the data dir.
    files_s3_bucket: str | None = None
    files_s3_endpoint_url: str | None = None
    files_s3_region: str | None = None
    files_s3_access_key_id: str | None = Field(default=None, repr=False)
    files_s3_secret_access_key: str | None = Field(default=None, repr=False)
    files_s3_prefix: str = "files/"

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise ValueError("webhook_retry_schedule needs at least one interval")
        for p in parts:
            if float(p) < 0:
                raise ValueError("webhook_retry_schedule intervals must be >= 0")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_smtp_url(value)
        return value.strip()

    @property
    def smtp(self) -> SmtpServer | None:
        return parse_smtp_url(self.smtp_url) if self.smtp_url else None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'codetether.db').as_posix()}"

    @property
    def retry_intervals(self) -> list[float]:
        return [float(p) for p in self.webhook_retry_schedule.split(",") if p.strip()]

    @property
    def resolved_workspace_root(self) -> Path:
        if self.workspace_root is not None:
            return self.workspace_root
        import hashlib
        import tempfile

        tag = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / "codetether-workspaces" / tag

    @property
    def api_base_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    def provider_env(self, name: str) -> str | None:
        """Reads a provider credential by its conventional, unprefixed name."""
        value = os.environ.get(name)
        if value is None:
            value = _dotenv().get(name)
        return value or None


@lru_cache(maxsize=1)
def _dotenv() -> dict[str, str]:
    path = Path(".env")
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
    _dotenv.cache_clear()


__all__ = ["Settings", "get_settings", "reset_settings_cache", "TASK_QUEUE", "Field"]
