"""Local git repositories for the agent tests: a bare "remote" with a first commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}


def git(*args: str, cwd: Path | str | None = None) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True,
    )
    return out.stdout


def make_bare_repo(root: Path, files: dict[str, str] | None = None, name: str = "acme/web.git") -> tuple[Path, str]:
    """A bare repository at ``root/name`` whose ``main`` holds ``files``; returns (path, commit)."""
    files = files or {"README.md": "# Web\n", "app.py": "def greet():\n    return 'hello'\n"}
    work = root / "seed"
    work.mkdir(parents=True)
    git("init", "-q", str(work))
    for path, text in files.items():
        p = work / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work).strip()
    bare = root / name
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare, commit


async def register_codebase(stack, user, url: str, **extra) -> str:
    """Registers ``url`` as the user's codebase "web" through the API; returns its id."""
    r = await stack.http.post("/v1/automation/codebases", json={"name": "web", "repository_url": url, **extra},
                              headers=user.headers)
    assert r.status_code == 201, r.text
    return r.json()["codebase_id"]
