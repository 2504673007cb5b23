"""Repository URL rules and the safe way to run git against them.

Checked when a codebase is saved (``POST``/``PATCH /v1/automation/codebases``, ``codetether
codebases create``) and again by the worker right before it clones or fetches:

* https and ssh (``ssh://`` or ``user@host:path``) only; a local path or ``file://`` only when
  ``CODETETHER_CODEBASE_ALLOW_LOCAL`` is set; everything else (``ext::``, ``fd::``, ``git://``,
  ``http://``, transport helpers) is refused;
* nothing that git could read as an option (a leading ``-`` in the URL, host or user), no
  control characters or whitespace, no credentials inside the URL;
* the host must resolve to public addresses (the webhook rules of :mod:`codetether.core.netguard`) unless
  ``CODETETHER_WEBHOOK_ALLOW_PRIVATE`` is set; at clone time the https address checked is pinned
  for the connection (``http.curloptResolve``) and ssh connects to the checked address.

Every git command built by :func:`git_command` carries ``--`` before URLs (callers add it),
``protocol.allow=never`` with only the allowed transports switched on, and the same list in
``GIT_ALLOW_PROTOCOL``, so a hostile URL or a ``.gitmodules`` can never start another transport.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from codetether.core.netguard import Resolver, UnsafeURL, resolve_public, system_resolver

MAX_URL_LENGTH = 2000
_SCP = re.compile(r"^(?:(?P<user>[A-Za-z0-9._~+-]+)@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>[^\s]*)$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*\.?$")


class InvalidRepositoryURL(ValueError):
    """The URL breaks a rule above; the message says which (safe to show to the caller)."""


@dataclass(frozen=True)
class RepoURL:
    """A checked repository URL: how git should reach it."""

    url: str
    kind: str  # "https" | "ssh" | "local"
    host: str | None = None
    port: int | None = None
    # A local repository's directory (kind "local").
    path: str | None = None


def parse_repository_url(url: str, *, allow_local: bool) -> RepoURL:
    """The static checks (no DNS). Raises :class:`InvalidRepositoryURL`."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidRepositoryURL("repository_url is required")
    if url != url.strip() or len(url) > MAX_URL_LENGTH:
        raise InvalidRepositoryURL(f"repository_url must be at most {MAX_URL_LENGTH} characters without surrounding spaces")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InvalidRepositoryURL("repository_url must not contain spaces or control characters")
    if url.startswith("-"):
        raise InvalidRepositoryURL("repository_url must not start with '-'")
    if "::" in url.split("/", 1)[0]:
        # git's "<transport>::<address>" syntax (ext::, fd::, remote helpers).
        raise InvalidRepositoryURL("transport helpers (such as ext::) are not allowed")

    lowered = url.lower()
    if lowered.startswith("file://") or url.startswith("/"):
        if not allow_local:
            raise InvalidRepositoryURL(
                "local repositories are not allowed here (CODETETHER_CODEBASE_ALLOW_LOCAL is off)"
            )
        raw = unquote(urlsplit(url).path) if lowered.startswith("file://") else url
        if lowered.startswith("file://") and urlsplit(url).netloc not in ("", "localhost"):
            raise InvalidRepositoryURL("file:// URLs must not name a host")
        if not raw.startswith("/"):
            raise InvalidRepositoryURL("local repositories need an absolute path")
        path = os.path.normpath(raw)
        return RepoURL(url=url, kind="local", path=path)

    if "://" in url:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidRepositoryURL("repository_url is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "ssh"):
            raise InvalidRepositoryURL("repository_url must use https or ssh")
        host = parts.hostname or ""
        _check_host(host)
        if scheme == "https" and (parts.username or parts.password):
            raise InvalidRepositoryURL("put credentials in the codebase's credentials, not in the URL")
        if scheme == "ssh" and parts.password:
            raise InvalidRepositoryURL("put credentials in the codebase's credentials, not in the URL")
        if parts.username and parts.username.startswith("-"):
            raise InvalidRepositoryURL("the user name must not start with '-'")
        if not parts.path or parts.path == "/":
            raise InvalidRepositoryURL("repository_url needs a repository path")
        return RepoURL(url=url, kind=scheme, host=host, port=port or (443 if scheme == "https" else 22))

    m = _SCP.match(url)
    if m is None:
        raise InvalidRepositoryURL("repository_url must be an https or ssh URL")
    host = m.group("host").strip("[]")
    _check_host(host)
    if not m.group("path") or m.group("path").startswith("-"):
        raise InvalidRepositoryURL("repository_url needs a repository path")
    return RepoURL(url=url, kind="ssh", host=host, port=22)


def _check_host(host: str) -> None:
    if not host:
        raise InvalidRepositoryURL("repository_url needs a host")
    if host.startswith("-"):
        raise InvalidRepositoryURL("the host must not start with '-'")
    if ":" in host:  # an IPv6 literal: resolve_public judges it
        return
    if not _HOSTNAME.match(host):
        raise InvalidRepositoryURL("the host is not a valid host name")


async def check_repository_url(
    url: str,
    *,
    allow_local: bool,
    allow_private: bool,
    resolver: Resolver = system_resolver,
) -> tuple[RepoURL, list[str]]:
    """All checks, DNS included. Returns the parsed URL and the public addresses it resolved to
    (empty for local repositories and when private destinations are allowed)."""
    repo = parse_repository_url(url, allow_local=allow_local)
    if repo.kind == "local":
        if not Path(repo.path or "").is_dir():
            raise InvalidRepositoryURL("the local repository path is not a directory")
        return repo, []
    if allow_private:
        return repo, []
    try:
        addrs = await resolve_public(repo.host or "", repo.port or 443, resolver)
    except UnsafeURL as err:
        raise InvalidRepositoryURL(str(err).replace("webhook", "repository")) from None
    return repo, addrs


def allowed_protocols(allow_local: bool) -> list[str]:
    return ["https", "ssh"] + (["file"] if allow_local else [])


def git_base_env(allow_local: bool, home: str | None = None) -> dict[str, str]:
    """A minimal environment for service-side git: no prompts, no user or system config,
    only the allowed transports."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home or "/nonexistent",
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": ":".join(allowed_protocols(allow_local)),
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
    }
    return env


def git_command(allow_local: bool, *args: str, cwd: str | None = None) -> list[str]:
    """``git -c <hardening> [-C cwd] args...``; callers put ``--`` before any URL or path."""
    cmd = ["git", "-c", "protocol.allow=never"]
    for proto in allowed_protocols(allow_local):
        cmd += ["-c", f"protocol.{proto}.allow=always"]
    cmd += [
        "-c", "core.hooksPath=/dev/null",
        "-c", "core.fsmonitor=false",
        "-c", "submodule.recurse=false",
        "-c", "safe.directory=*",
        "-c", "user.name=CodeTether",
        "-c", "user.email=agent@codetether.invalid",
    ]
    if cwd is not None:
        cmd += ["-C", cwd]
    return cmd + list(args)
