"""Service-side git for workspaces: clone/fetch with per-command credentials, diffs, commit, push.

Every command goes through :func:`codetether.codebases.repourls.git_command` (transport allow-list, no hooks, no
user config) with ``--`` before URLs and paths. Credentials never touch ``.git/config``: an HTTPS
token travels as an ``http.extraHeader`` in the command's environment (``GIT_CONFIG_*``, not the
argument list), an SSH key as a 0600 file outside the workspace removed right after the command.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from codetether.codebases.service import Credentials
from codetether.codebases.repourls import RepoURL, git_base_env, git_command


class GitError(Exception):
    pass


class GitOutputTooLarge(GitError):
    """The command's output passed the cap it was given; the command was killed."""


@dataclass
class GitAuth:
    """How one command reaches the remote: extra environment, a pinned address, a key file."""

    env: dict[str, str] = field(default_factory=dict)
    key_file: str | None = None

    def cleanup(self) -> None:
        if self.key_file:
            with contextlib.suppress(OSError):
                os.unlink(self.key_file)


def make_auth(repo: RepoURL, creds: Credentials | None, addrs: list[str]) -> GitAuth:
    auth = GitAuth()
    config: list[tuple[str, str]] = []
    if repo.kind == "https":
        if creds is not None and creds.type == "https_token" and creds.token:
            basic = base64.b64encode(f"x-access-token:{creds.token}".encode()).decode()
            config.append(("http.extraHeader", f"Authorization: Basic {basic}"))
        if addrs:
            # Connect to the very address that was checked (no DNS rebinding between check and use).
            config.append(("http.curloptResolve", f"{repo.host}:{repo.port}:{addrs[0]}"))
        config.append(("http.followRedirects", "false"))
    if repo.kind == "ssh":
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
               "-o", f"UserKnownHostsFile={os.path.join(tempfile.gettempdir(), 'codetether_known_hosts')}",
               "-o", "ProxyCommand=none", "-o", "PermitLocalCommand=no"]
        if addrs:
            ssh += ["-o", f"HostName={addrs[0]}", "-o", f"HostKeyAlias={repo.host}"]
        if creds is not None and creds.type == "ssh_key" and creds.private_key:
            fd, path = tempfile.mkstemp(prefix="codetether-key-")
            with os.fdopen(fd, "w") as f:
                f.write(creds.private_key.strip() + "\n")
            os.chmod(path, 0o600)
            auth.key_file = path
            ssh += ["-i", path, "-o", "IdentitiesOnly=yes"]
        auth.env["GIT_SSH_COMMAND"] = " ".join(_shell_quote(a) for a in ssh)
        auth.env["GIT_SSH_VARIANT"] = "ssh"
    if config:
        auth.env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (k, v) in enumerate(config):
            auth.env[f"GIT_CONFIG_KEY_{i}"] = k
            auth.env[f"GIT_CONFIG_VALUE_{i}"] = v
    return auth


def _shell_quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_=./:@,%+" for c in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


class Git:
    def __init__(self, *, allow_local: bool) -> None:
        self.allow_local = allow_local

    async def run(self, *args: str, cwd: str | None = None, auth: GitAuth | None = None, check: bool = True,
                  timeout: float = 600, stdin: bytes | None = None,
                  max_output: int | None = None) -> tuple[int, bytes, bytes]:
        env = git_base_env(self.allow_local)
        if auth is not None:
            env.update(auth.env)
        proc = await asyncio.create_subprocess_exec(
            *git_command(self.allow_local, *args, cwd=cwd),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            if max_output is None:
                out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
            else:
                out, err = await asyncio.wait_for(_capped(proc, max_output), timeout)
        except GitOutputTooLarge:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            # Killed, so it ends at once; bounded all the same, so a lost exit notification can
            # never hold the checkpoint (and its activity) forever.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
            raise
        except (asyncio.TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            raise
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {_redact(err.decode(errors='replace'))[:800]}")
        return proc.returncode or 0, out, err

    async def clone(self, repo: RepoURL, dest: str, ref: str | None, auth: GitAuth) -> str:
        source = repo.path if repo.kind == "local" else repo.url
        await self.run("init", "--quiet", "--", dest)
        await self.run("remote", "add", "origin", "--", source or "", cwd=dest)
        target = ref or "HEAD"
        await self.run("fetch", "--quiet", "--no-tags", "--depth=50", "--no-recurse-submodules", "origin", "--", target,
                       cwd=dest, auth=auth)
        await self.run("checkout", "--quiet", "--detach", "FETCH_HEAD", cwd=dest)
        return await self.head(dest)

    async def head(self, cwd: str) -> str:
        _rc, out, _ = await self.run("rev-parse", "HEAD", cwd=cwd)
        return out.decode().strip()

    async def stage_all(self, cwd: str) -> None:
        await self.run("add", "--all", "--", ".", cwd=cwd)

    async def diff_binary(self, cwd: str, base: str, max_bytes: int | None = None) -> bytes:
        """The staged changes against ``base`` as a binary patch; :class:`GitOutputTooLarge` past ``max_bytes``."""
        await self.stage_all(cwd)
        _rc, out, _ = await self.run("diff", "--cached", "--binary", "--full-index", base, "--", cwd=cwd,
                                     max_output=max_bytes)
        return out

    async def diff_text(self, cwd: str, base: str) -> bytes:
        await self.stage_all(cwd)
        _rc, out, _ = await self.run("diff", "--cached", "--find-renames", base, "--", cwd=cwd)
        return out

    async def changed_files(self, cwd: str, base: str) -> dict:
        await self.stage_all(cwd)
        _rc, status, _ = await self.run("diff", "--cached", "--find-renames", "--name-status", "-z", base, "--", cwd=cwd)
        _rc, numstat, _ = await self.run("diff", "--cached", "--find-renames", "--numstat", "-z", base, "--", cwd=cwd)
        return parse_changes(status.decode(errors="replace"), numstat.decode(errors="replace"))

    async def apply(self, cwd: str, patch: bytes) -> None:
        if patch.strip():
            await self.run("apply", "--binary", "--whitespace=nowarn", "-", cwd=cwd, stdin=patch)


async def _capped(proc: asyncio.subprocess.Process, limit: int) -> tuple[bytes, bytes]:
    # Read as it comes and stopped past the limit: a huge diff is never held whole in memory.
    assert proc.stdout is not None and proc.stderr is not None
    err_task = asyncio.create_task(_drain(proc.stderr, 64 * 1024))
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            block = await proc.stdout.read(256 * 1024)
            if not block:
                break
            size += len(block)
            if size > limit:
                raise GitOutputTooLarge(f"the output passed {limit} bytes")
            chunks.append(block)
        await proc.wait()
        return b"".join(chunks), await err_task
    finally:
        if not err_task.done():
            err_task.cancel()


async def _drain(stream: asyncio.StreamReader, keep: int) -> bytes:
    kept = b""
    while block := await stream.read(65536):
        kept = (kept + block)[:keep]
    return kept


_STATUS = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "added", "T": "modified"}


def parse_changes(name_status: str, numstat: str) -> dict:
    """``git diff --name-status -z`` + ``--numstat -z`` → CONTRACT §6 ``changes``."""
    files: list[dict] = []
    parts = [p for p in name_status.split("\0")]
    i = 0
    while i < len(parts) and parts[i]:
        code = parts[i][0]
        if code in ("R", "C"):
            old, new = parts[i + 1], parts[i + 2]
            i += 3
        else:
            old, new = None, parts[i + 1]
            i += 2
        files.append({"path": new, "status": _STATUS.get(code, "modified"), "additions": 0, "deletions": 0})
    counts: dict[str, tuple[int, int]] = {}
    nparts = numstat.split("\0")
    j = 0
    while j < len(nparts) and nparts[j]:
        fields = nparts[j].split("\t")
        add, dele = fields[0], fields[1]
        if len(fields) >= 3 and fields[2]:
            path = fields[2]
            j += 1
        else:  # a rename: "add\tdel\t" then old\0new\0
            path = nparts[j + 2]
            j += 3
        counts[path] = (int(add) if add.isdigit() else 0, int(dele) if dele.isdigit() else 0)
    for f in files:
        f["additions"], f["deletions"] = counts.get(f["path"], (0, 0))
    return {
        "files": files,
        "additions": sum(f["additions"] for f in files),
        "deletions": sum(f["deletions"] for f in files),
    }


def _redact(text: str) -> str:
    # git may echo a URL; never let a token that slipped into one reach a log or a task error.
    import re

    return re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text)


def remove_tree(path: str) -> bool:
    import shutil

    p = Path(path)
    if not p.exists():
        return False

    def _unlock_and_retry(func, target, _exc) -> None:
        # A read-only folder (the task's attachments/) is opened up, then the step runs again.
        try:
            os.chmod(os.path.dirname(target), 0o755)
            func(target)
        except OSError:
            pass

    shutil.rmtree(p, onerror=_unlock_and_retry)
    return True
