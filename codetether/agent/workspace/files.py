"""The file tools (``read``, ``glob``, ``grep``, ``edit``, ``write``) confined to one workspace.

Every path is resolved with ``realpath`` and must stay inside the workspace: ``..``, absolute
paths elsewhere and symlinks that lead out are refused, and ``.git`` is never written. A failure
raises :class:`ToolFailure`, whose message goes back to the model as the tool result.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path

from codetether.agent.workspace.binaries import rg_path

READ_LIMIT = 2000
LINE_CAP = 2000
MAX_MATCHES = 100
MAX_READ_BYTES = 5 * 1024 * 1024


class ToolFailure(Exception):
    """A tool call that could not be done; the message is the model's tool result."""


class Workspace:
    def __init__(self, root: str, *, owner_uid: int | None = None, writable: bool = True) -> None:
        self.root = os.path.realpath(root)
        self.owner_uid = owner_uid
        self.writable = writable

    # ---- paths ----------------------------------------------------------------------------

    def resolve(self, path: str | None, *, must_exist: bool = False) -> str:
        if path is None or str(path).strip() == "":
            return self.root
        path = str(path)
        if "\x00" in path:
            raise ToolFailure("the path contains a NUL character")
        joined = path if os.path.isabs(path) else os.path.join(self.root, path)
        real = os.path.realpath(joined)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise ToolFailure(f"{path!r} is outside the workspace")
        if must_exist and not os.path.exists(real):
            raise ToolFailure(f"{self.rel(real)} does not exist")
        return real

    def rel(self, real: str) -> str:
        return os.path.relpath(real, self.root)

    def _check_writable(self, real: str) -> None:
        if not self.writable:
            raise ToolFailure("this agent may not change files in the workspace")
        rel = self.rel(real)
        if rel == ".git" or rel.startswith(".git" + os.sep):
            raise ToolFailure("the .git folder is read-only")

    def _own(self, real: str) -> None:
        """Files the service writes stay writable by the sandbox's uids (same group)."""
        if self.owner_uid is None:
            return
        try:
            os.chown(real, self.owner_uid, self.owner_uid)
            os.chmod(real, 0o664)
        except OSError:
            pass

    # ---- tools ----------------------------------------------------------------------------

    def read(self, filePath: str, offset: int | None = None, limit: int | None = None) -> str:
        real = self.resolve(filePath, must_exist=True)
        if os.path.isdir(real):
            entries = sorted(os.listdir(real))[:500]
            return "\n".join(e + ("/" if os.path.isdir(os.path.join(real, e)) else "") for e in entries) or "(empty folder)"
        if os.path.getsize(real) > MAX_READ_BYTES:
            raise ToolFailure(f"{self.rel(real)} is larger than {MAX_READ_BYTES // (1024 * 1024)} MiB; use grep or bash")
        with open(real, "rb") as f:
            data = f.read()
        if b"\x00" in data[:8192]:
            raise ToolFailure(f"{self.rel(real)} is a binary file")
        lines = data.decode("utf-8", errors="replace").splitlines()
        start = max(1, int(offset or 1))
        count = max(1, int(limit or READ_LIMIT))
        chosen = lines[start - 1 : start - 1 + count]
        out = [f"{n}: {line[:LINE_CAP]}" for n, line in enumerate(chosen, start)]
        if start - 1 + count < len(lines):
            out.append(f"(file has {len(lines)} lines; continue with offset {start + count})")
        return "\n".join(out) if out else "(empty file)"

    def glob(self, pattern: str, path: str | None = None) -> str:
        base = self.resolve(path, must_exist=True)
        if not pattern or os.path.isabs(pattern) or ".." in Path(pattern).parts:
            raise ToolFailure("the pattern must be relative and stay inside the workspace")
        found = []
        for p in Path(base).glob(pattern):
            real = os.path.realpath(p)
            rel = self.rel(str(p))
            if rel.split(os.sep, 1)[0] == ".git" or not (real == self.root or real.startswith(self.root + os.sep)):
                continue
            if p.is_file():
                found.append((p.stat().st_mtime, rel))
            if len(found) >= 5000:
                break
        found.sort(key=lambda t: (-t[0], t[1]))
        paths = [r for _m, r in found[:MAX_MATCHES]]
        if not paths:
            return "no files found"
        more = f"\n(showing {MAX_MATCHES} of {len(found)})" if len(found) > MAX_MATCHES else ""
        return "\n".join(paths) + more

    def grep(self, pattern: str, path: str | None = None, include: str | None = None) -> str:
        base = self.resolve(path, must_exist=True)
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ToolFailure(f"bad regular expression: {err}") from None
        rg = rg_path()
        if rg:
            cmd = [rg, "--no-config", "--line-number", "--no-heading", "--color=never", "--max-columns=500",
                   "--glob=!.git", "--no-follow"]
            if include:
                cmd.append(f"--glob={include}")
            cmd += ["-e", pattern, "--", base]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=self.root)
            if proc.returncode not in (0, 1):
                raise ToolFailure(f"grep failed: {proc.stderr.strip()[:500]}")
            lines = []
            for line in proc.stdout.splitlines():
                file, _, rest = line.partition(":")
                num, _, text = rest.partition(":")
                lines.append(f"{self.rel(file)}:{num}: {text.strip()}")
                if len(lines) > MAX_MATCHES:
                    break
        else:
            lines = self._grep_python(regex, base, include)
        if not lines:
            return "no matches"
        more = "\n(more matches not shown)" if len(lines) > MAX_MATCHES else ""
        return "\n".join(lines[:MAX_MATCHES]) + more

    def _grep_python(self, regex, base: str, include: str | None) -> list[str]:
        out: list[str] = []
        files = [base] if os.path.isfile(base) else []
        if not files:
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if d != ".git"]
                files.extend(os.path.join(dirpath, f) for f in sorted(filenames))
        for f in files:
            if include and not fnmatch.fnmatch(os.path.basename(f), include):
                continue
            if os.path.islink(f):
                continue
            try:
                with open(f, encoding="utf-8", errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        if regex.search(line):
                            out.append(f"{self.rel(f)}:{n}: {line.strip()[:500]}")
                            if len(out) > MAX_MATCHES:
                                return out
            except OSError:
                continue
        return out

    def write(self, filePath: str, content: str) -> str:
        real = self.resolve(filePath)
        self._check_writable(real)
        if os.path.isdir(real):
            raise ToolFailure(f"{self.rel(real)} is a folder")
        existed = os.path.exists(real)
        self._makedirs(os.path.dirname(real))
        data = content.encode()
        if existed:
            with open(real, "rb") as f:
                if f.read() == data:
                    return f"{self.rel(real)} already has this content ({len(data)} bytes)"
        _atomic_write(real, data)
        self._own(real)
        return f"{'replaced' if existed else 'created'} {self.rel(real)} ({len(data)} bytes)"

    def edit(self, filePath: str, oldString: str, newString: str, replaceAll: bool = False) -> str:
        real = self.resolve(filePath)
        self._check_writable(real)
        if oldString == "":
            if os.path.exists(real):
                with open(real, "rb") as f:
                    if f.read() == newString.encode():
                        return f"{self.rel(real)} already has this content"
                raise ToolFailure(f"{self.rel(real)} already exists; give the oldString to replace")
            self._makedirs(os.path.dirname(real))
            _atomic_write(real, newString.encode())
            self._own(real)
            return f"created {self.rel(real)}"
        if not os.path.isfile(real):
            raise ToolFailure(f"{self.rel(real)} does not exist")
        with open(real, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
        count = text.count(oldString)
        if count == 0:
            # A retried call whose first attempt already applied: the result is already there.
            if newString and newString in text:
                return f"{self.rel(real)} already contains the new text"
            raise ToolFailure(f"oldString was not found in {self.rel(real)}")
        if count > 1 and not replaceAll:
            raise ToolFailure(f"oldString occurs {count} times in {self.rel(real)}; add context or set replaceAll")
        updated = text.replace(oldString, newString) if replaceAll else text.replace(oldString, newString, 1)
        _atomic_write(real, updated.encode("utf-8", errors="surrogateescape"))
        self._own(real)
        return f"edited {self.rel(real)} ({count if replaceAll else 1} replacement(s))"

    def _makedirs(self, real_dir: str) -> None:
        missing = []
        d = real_dir
        while not os.path.exists(d):
            missing.append(d)
            d = os.path.dirname(d)
        os.makedirs(real_dir, exist_ok=True)
        for m in reversed(missing):
            if self.owner_uid is not None:
                try:
                    os.chown(m, self.owner_uid, self.owner_uid)
                    os.chmod(m, 0o775)
                except OSError:
                    pass


def _atomic_write(real: str, data: bytes) -> None:
    # Written beside the target, then renamed: a symlink planted at the target is replaced, never
    # followed, and a reader never sees half a file.
    tmp = f"{real}.codetether-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o664)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, real)
