"""Finding 8 of the security review: hostile repository URLs are refused when a codebase is saved
(API and CLI) and again when a worker is about to clone, and git never runs another transport."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from codetether.codebases.repourls import InvalidRepositoryURL, check_repository_url, git_base_env, git_command, parse_repository_url

HOSTILE = [
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh -c 'touch /tmp/pwned'",
    "fd::17",
    "--upload-pack=touch /tmp/pwned",
    "-uhttps://github.com/a/b",
    "https://-oProxyCommand=x/a/b",
    "ssh://-oProxyCommand=touch%20/tmp/pwned/a/b",
    "-oProxyCommand=x@host:repo",
    "git://github.com/a/b",
    "http://github.com/a/b",
    "ftp://example.com/repo",
    "https://user:pass@github.com/a/b",
    "https://github.com/a b",
    "https://github.com/a\nb",
    "file:///etc",
    "/srv/git/repo.git",
    "relative/path",
    "gopher://x/y",
]
PRIVATE = [
    "https://127.0.0.1/a/b.git",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/a/b",
    "https://10.0.0.5/a.git",
    "ssh://git@192.168.1.10/a.git",
    "git@127.0.0.1:a/b.git",
    "https://localhost/a/b",
]


async def _no_dns(host: str, port: int) -> list[str]:
    table = {"localhost": ["127.0.0.1"], "github.com": ["140.82.121.4"], "rebind.example": ["10.1.2.3"]}
    if host not in table:
        raise OSError("no such host")
    return table[host]


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_urls_are_refused_by_the_rules(url):
    with pytest.raises(InvalidRepositoryURL):
        await check_repository_url(url, allow_local=False, allow_private=False, resolver=_no_dns)


@pytest.mark.parametrize("url", PRIVATE)
async def test_private_hosts_are_refused_without_the_private_setting(url):
    with pytest.raises(InvalidRepositoryURL):
        await check_repository_url(url, allow_local=False, allow_private=False, resolver=_no_dns)


async def test_public_https_and_ssh_pass(tmp_path):
    for url in ("https://github.com/acme/web.git", "ssh://git@github.com/acme/web.git", "git@github.com:acme/web.git"):
        repo, addrs = await check_repository_url(url, allow_local=False, allow_private=False, resolver=_no_dns)
        assert addrs == ["140.82.121.4"] and repo.kind in ("https", "ssh")
    # a local repository only with the local setting, and only a real directory
    repo, _ = await check_repository_url(str(tmp_path), allow_local=True, allow_private=False)
    assert repo.kind == "local"
    repo, _ = await check_repository_url(f"file://{tmp_path}", allow_local=True, allow_private=False)
    assert repo.path == str(tmp_path)
    with pytest.raises(InvalidRepositoryURL):
        await check_repository_url(str(tmp_path / "missing"), allow_local=True, allow_private=False)


async def test_dns_that_points_inside_is_refused():
    with pytest.raises(InvalidRepositoryURL):
        await check_repository_url("https://rebind.example/a.git", allow_local=False, allow_private=False, resolver=_no_dns)


async def test_the_api_refuses_hostile_urls_and_writes_nothing(stack, make_user):
    stack.settings.webhook_allow_private = False
    stack.settings.codebase_allow_local = False
    user = await make_user()
    for url in HOSTILE + ["https://127.0.0.1/a/b.git", "https://localhost/a/b"]:
        r = await stack.http.post("/v1/automation/codebases", json={"name": "x", "repository_url": url}, headers=user.headers)
        assert r.status_code == 422, (url, r.text)
        assert r.json()["code"] in ("invalid_repository_url", "validation_error"), r.text
    assert (await stack.http.get("/v1/automation/codebases", headers=user.headers)).json()["data"] == []
    r = await stack.http.post("/v1/automation/codebases", json={"name": "ok", "repository_url": "https://github.com/a/b"},
                              headers=user.headers)
    # offline, github.com does not resolve: refused as well (never accepted unchecked)
    assert r.status_code in (201, 422)


async def test_patch_cannot_smuggle_a_hostile_url(stack, make_user):
    user = await make_user()
    r = await stack.http.post("/v1/automation/codebases", json={"name": "x", "repository_url": "https://example.com/a.git"},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    cb = r.json()["codebase_id"]
    r = await stack.http.patch(f"/v1/automation/codebases/{cb}", json={"repository_url": "ext::sh -c id"}, headers=user.headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_repository_url"
    assert (await stack.http.get(f"/v1/automation/codebases/{cb}", headers=user.headers)).json()["repository_url"] == "https://example.com/a.git"


async def test_the_cli_refuses_hostile_urls(database_url, tmp_path, make_user):
    owner = await make_user()
    env = dict(os.environ, CODETETHER_DATABASE_URL=database_url, CODETETHER_DATA_DIR=str(tmp_path))
    env.pop("CODETETHER_CODEBASE_ALLOW_LOCAL", None)
    for url in ("ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/pwned", "file:///etc", "https://169.254.169.254/x"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "codetether.cli", "codebases", "create", "--user", owner.email, "--name", "x",
            f"--repository-url={url}", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 1, (url, out, err)
        assert b"error:" in err and not out.strip()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codetether.cli", "codebases", "list", "--user", owner.email,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert json.loads(out) == []


def test_git_never_runs_ext_even_if_a_url_got_through(tmp_path):
    """Belt and braces: the hardened git command refuses ext:: by itself."""
    marker = tmp_path / "pwned"
    cmd = git_command(False, "ls-remote", "--", f"ext::sh -c touch% {marker}")
    proc = subprocess.run(cmd, env=git_base_env(False), capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert not marker.exists()
    # and file:// is refused unless local repositories are allowed
    cmd = git_command(False, "ls-remote", "--", f"file://{tmp_path}")
    proc = subprocess.run(cmd, env=git_base_env(False), capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "not allowed" in proc.stderr


def test_leading_dash_never_reaches_git_as_an_option():
    with pytest.raises(InvalidRepositoryURL):
        parse_repository_url("--upload-pack=id", allow_local=True)


async def test_the_clone_checks_the_url_again(stack, make_user, tmp_path):
    """A codebase saved while local paths were allowed is refused at clone time once they are not."""
    from tests.agent.repos import make_bare_repo
    from tests.conftest import wait_status

    stack.settings.codebase_allow_local = True
    user = await make_user()
    bare, _ = make_bare_repo(tmp_path)
    r = await stack.http.post("/v1/automation/codebases", json={"name": "x", "repository_url": str(bare)}, headers=user.headers)
    assert r.status_code == 201, r.text
    stack.settings.codebase_allow_local = False
    r = await stack.http.post("/v1/automation/tasks", json={"title": "t", "description": "READ: a", "agent_type": "build",
                                                            "codebase_id": r.json()["codebase_id"]}, headers=user.headers)
    task = await wait_status(stack.http, r.json()["task_id"], user.headers, {"completed", "failed"}, timeout=90)
    assert task["status"] == "failed" and task["error"]["code"] == "workspace_unavailable"
    assert "refused" in task["error"]["message"]
