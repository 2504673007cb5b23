"""Publishing a finished build per the codebase's push policy (called by ``finalize_workspace``,
which passes in the database, settings and git runner it holds).

``none``: the work is committed on ``codetether/<task_id>`` in the workspace only (the patch
artifact carries it out). ``branch``: that branch is pushed to the codebase's remote.
``pull_request``: pushed, then a pull request is opened through the GitHub REST API
(``CODETETHER_GITHUB_API_URL``) with the codebase's HTTPS token; a retry finds the one already open.
"""

from __future__ import annotations

import logging
import re

import httpx

from codetether.agent.workspace.gitops import Git, GitError, make_auth
from codetether.codebases.service import codebase_credentials
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.models import Codebase, Task
from codetether.codebases.repourls import InvalidRepositoryURL, check_repository_url
from codetether.agent.contracts import FinalizeInput

log = logging.getLogger(__name__)


class PublishError(Exception):
    pass


def github_repo(url: str) -> tuple[str, str] | None:
    """``owner``/``repo`` from an https, ssh or local URL's last two path segments."""
    m = re.search(r"[/:]([^/:]+)/([^/]+?)(?:\.git)?/?$", url)
    return (m.group(1), m.group(2)) if m else None


async def publish_changes(
    inp: FinalizeInput, git_info: dict, *, db: Database, settings: Settings, git: Git
) -> dict:
    ws = inp.workspace
    async with db.session() as s:
        cb = await s.get(Codebase, inp.codebase_id) if inp.codebase_id else None
        task = await s.get(Task, inp.task_id)
    if cb is None or task is None:
        return git_info
    branch = f"codetether/{inp.task_id}"
    await git.run("checkout", "--quiet", "-B", branch, cwd=ws.path)
    await git.stage_all(ws.path)
    message = f"{task.title}\n\nMade by CodeTether task {inp.task_id}."
    rc, _o, _e = await git.run("diff", "--cached", "--quiet", cwd=ws.path, check=False)
    if rc != 0:
        await git.run("commit", "--quiet", "--no-verify", "-m", message, cwd=ws.path)
    commit = await git.head(ws.path)
    info = {**git_info, "branch": branch, "commit": commit}
    if (cb.push or "none") == "none":
        return info
    try:
        repo, addrs = await check_repository_url(
            cb.repository_url or "", allow_local=settings.codebase_allow_local,
            allow_private=settings.webhook_allow_private,
        )
        creds = codebase_credentials(settings, cb)
    except InvalidRepositoryURL as err:
        raise PublishError(f"push refused: {err}") from None
    auth = make_auth(repo, creds, addrs)
    try:
        await git.run("push", "--quiet", "--no-verify", "origin", "--", f"HEAD:refs/heads/{branch}", cwd=ws.path, auth=auth)
    except GitError as err:
        log.warning("push of %s failed: %s", inp.task_id, err)
        return {**info, "pushed": False, "error": str(err)[:300]}
    finally:
        auth.cleanup()
    info["pushed"] = True
    if cb.push == "pull_request":
        info["pr_url"] = await open_pull_request(settings, cb, task, branch, creds.token if creds and creds.type == "https_token" else None)
    return info


async def open_pull_request(settings: Settings, cb: Codebase, task: Task, branch: str, token: str | None) -> str | None:
    names = github_repo(cb.repository_url or "")
    if names is None:
        return None
    owner, name = names
    api = settings.github_api_url.rstrip("/")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "CodeTether"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=30, follow_redirects=False, trust_env=False) as http:
        base = cb.ref
        if not base:
            r = await http.get(f"{api}/repos/{owner}/{name}", headers=headers)
            base = r.json().get("default_branch", "main") if r.status_code == 200 else "main"
        body = {"title": task.title[:250], "head": branch, "base": base,
                "body": f"Opened by CodeTether for task `{task.id}`.\n\n{(task.result_summary or task.description)[:2000]}"}
        r = await http.post(f"{api}/repos/{owner}/{name}/pulls", json=body, headers=headers)
        if r.status_code in (200, 201):
            return r.json().get("html_url")
        if r.status_code == 422:
            # Already open (a retried finalize): find it.
            q = await http.get(f"{api}/repos/{owner}/{name}/pulls", params={"head": f"{owner}:{branch}", "state": "open"}, headers=headers)
            if q.status_code == 200 and q.json():
                return q.json()[0].get("html_url")
        log.warning("opening a pull request for %s answered %s", task.id, r.status_code)
        return None
