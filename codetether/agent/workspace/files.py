"""The file tools (``read``, ``glob``, ``grep``, ``edit``, ``write``) confined to one workspace.

Every path is resolved with ``realpath`` and must stay inside the workspace: ``..``, absolute
paths elsewhere and symlinks that lead out are refused, and ``.git`` is never written. A failure
raises :class:`ToolFailure`, whose message goes back to the model as the tool result.

Files are opened ``O_NONBLOCK|O_NOFOLLOW`` and checked with ``fstat`` before a byte is read: a
FIFO, socket or device planted by ``bash`` is refused instead of blocking the thread for good, and
no tool reads more than a capped number of bytes (a sparse file can claim any size).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import secrets
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

from codetether.agent.workspace.binaries import rg_path
from codetether.agent.workspace.attachments import attachments_protected
from codetether.files.contracts import ATTACHMENTS_DIR

READ_LIMIT = 2000
LINE_CAP = 2000
MAX_MATCHES = 100
MAX_READ_BYTES = 5 * 1024 * 1024
# Largest file ``edit`` changes or ``write`` writes (both hold the whole file in memory).
MAX_EDIT_BYTES = 5 * 1024 * 1024
# Files over this are skipped by ``grep`` (ripgrep's --max-filesize and the Python fallback).
MAX_GREP_FILE_BYTES = 20 * 1024 * 1024
GREP_TIMEOUT_SECONDS = 60


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
        if (rel == ATTACHMENTS_DIR or rel.startswith(ATTACHMENTS_DIR + os.sep)) and attachments_protected(self.root):
            raise ToolFailure(f"the task's input files in {ATTACHMENTS_DIR}/ are read-only; write a copy elsewhere")

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
        data = self._read_bytes(real, MAX_READ_BYTES, "use grep or bash")
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
        if not os.path.isdir(base) and not _is_regular(base):
            raise ToolFailure(f"{self.rel(base)} is not a regular file or folder")
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ToolFailure(f"bad regular expression: {err}") from None
        rg = rg_path()
        if rg:
            cmd = [rg, "--no-config", "--line-number", "--no-heading", "--color=never", "--max-columns=500",
                   "--glob=!.git", "--no-follow", f"--max-filesize={MAX_GREP_FILE_BYTES}"]
            if include:
                cmd.append(f"--glob={include}")
            cmd += ["-e", pattern, "--", base]
            lines = self._grep_rg(cmd)
        else:
            lines = self._grep_python(regex, base, include)
        if not lines:
            return "no matches"
        more = "\n(more matches not shown)" if len(lines) > MAX_MATCHES else ""
        return "\n".join(lines[:MAX_MATCHES]) + more

    def _grep_rg(self, cmd: list[str]) -> list[str]:
        # Streamed and stopped after the cap: the output of a pattern like "." is never buffered
        # whole. stderr goes to a file so a chatty ripgrep cannot fill a pipe nobody reads.
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, cwd=self.root)
            killer = threading.Timer(GREP_TIMEOUT_SECONDS, proc.kill)
            killer.start()
            lines: list[str] = []
            read_all = False
            try:
                assert proc.stdout is not None
                for raw in proc.stdout:
                    line = raw.decode("utf-8", errors="replace").rstrip("\n")
                    file, _, rest = line.partition(":")
                    num, _, text = rest.partition(":")
                    lines.append(f"{self.rel(file)}:{num}: {text.strip()}")
                    if len(lines) > MAX_MATCHES:
                        break
                else:
                    read_all = True
            finally:
                if not read_all:
                    proc.kill()
                proc.wait()
                killer.cancel()
                proc.stdout.close()
            if proc.returncode not in (0, 1) and len(lines) <= MAX_MATCHES:
                errors.seek(0)
                reason = errors.read(2000).decode(errors="replace").strip()[:500]
                raise ToolFailure(f"grep failed: {reason or 'stopped after ' + str(GREP_TIMEOUT_SECONDS) + ' s'}")
        return lines

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
            try:
                data = _read_regular(f, MAX_GREP_FILE_BYTES)
            except (OSError, ToolFailure):
                continue  # not a regular file (a FIFO, a symlink), or too large
            if data is None or b"\x00" in data[:8192]:
                continue
            for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if regex.search(line):
                    out.append(f"{self.rel(f)}:{n}: {line.strip()[:500]}")
                    if len(out) > MAX_MATCHES:
                        return out
        return out

    def write(self, filePath: str, content: str) -> str:
        real = self.resolve(filePath)
        self._check_writable(real)
        if os.path.isdir(real):
            raise ToolFailure(f"{self.rel(real)} is a folder")
        data = content.encode()
        if len(data) > MAX_EDIT_BYTES:
            raise ToolFailure(f"the content is larger than {MAX_EDIT_BYTES // (1024 * 1024)} MiB")
        existed = os.path.lexists(real)
        self._makedirs(os.path.dirname(real))
        if existed:
            if not _is_regular(real):
                raise ToolFailure(f"{self.rel(real)} is not a regular file")
            if os.path.getsize(real) == len(data) and self._read_bytes(real, MAX_EDIT_BYTES) == data:
                return f"{self.rel(real)} already has this content ({len(data)} bytes)"
        _atomic_write(real, data)
        self._own(real)
        return f"{'replaced' if existed else 'created'} {self.rel(real)} ({len(data)} bytes)"

    def edit(self, filePath: str, oldString: str, newString: str, replaceAll: bool = False) -> str:
        real = self.resolve(filePath)
        self._check_writable(real)
        if len(newString.encode("utf-8", errors="surrogateescape")) > MAX_EDIT_BYTES:
            raise ToolFailure(f"the new text is larger than {MAX_EDIT_BYTES // (1024 * 1024)} MiB")
        if oldString == "":
            if os.path.lexists(real):
                if self._read_bytes(real, MAX_EDIT_BYTES) == newString.encode():
                    return f"{self.rel(real)} already has this content"
                raise ToolFailure(f"{self.rel(real)} already exists; give the oldString to replace")
            self._makedirs(os.path.dirname(real))
            _atomic_write(real, newString.encode())
            self._own(real)
            return f"created {self.rel(real)}"
        if not os.path.lexists(real):
            raise ToolFailure(f"{self.rel(real)} does not exist")
        text = self._read_bytes(real, MAX_EDIT_BYTES, "use bash").decode("utf-8", errors="surrogateescape")
        count = text.count(oldString)
        if count == 0:
            # A retried call whose first attempt already applied: the result is already there.
            if newString and newString in text:
                return f"{self.rel(real)} already contains the new text"
            raise ToolFailure(f"oldString was not found in {self.rel(real)}")
        if count > 1 and not replaceAll:
            raise ToolFailure(f"oldString occurs {count} times in {self.rel(real)}; add context or set replaceAll")
        updated = text.replace(oldString, newString) if replaceAll else text.replace(oldString, newString, 1)
        encoded = updated.encode("utf-8", errors="surrogateescape")
        if len(encoded) > MAX_EDIT_BYTES:
            raise ToolFailure(f"the edited file would be larger than {MAX_EDIT_BYTES // (1024 * 1024)} MiB")
        _atomic_write(real, encoded)
        self._own(real)
        return f"edited {self.rel(real)} ({count if replaceAll else 1} replacement(s))"

    def _read_bytes(self, real: str, cap: int, hint: str = "") -> bytes:
        data = _read_regular(real, cap, self.rel(real))
        if data is None:
            more = f"; {hint}" if hint else ""
            raise ToolFailure(f"{self.rel(real)} is larger than {cap // (1024 * 1024)} MiB{more}")
        return data

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


def _is_regular(real: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(real).st_mode)
    except OSError:
        return False


def _read_regular(real: str, cap: int, name: str | None = None) -> bytes | None:
    """The bytes of a regular file, or None when it holds more than ``cap``.

    ``O_NONBLOCK`` makes opening a FIFO return at once (a blocking open waits for a writer that
    never comes), ``O_NOFOLLOW`` refuses a symlink swapped in after the path was resolved, and
    ``fstat`` on the open descriptor refuses anything but a regular file. At most ``cap + 1``
    bytes are read whatever the file claims.
    """
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ToolFailure(f"{name or os.path.basename(real)} is a symbolic link") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ToolFailure(f"{name or os.path.basename(real)} is not a regular file")
        if os.fstat(fd).st_size > cap:
            return None
        chunks, size = [], 0
        while size <= cap:
            block = os.read(fd, min(1024 * 1024, cap + 1 - size))
            if not block:
                break
            chunks.append(block)
            size += len(block)
        return None if size > cap else b"".join(chunks)
    finally:
        os.close(fd)


def _atomic_write(real: str, data: bytes) -> None:
    # Written beside the target under a fresh name (O_EXCL: nothing planted there is opened, not
    # even a FIFO), then renamed: a symlink at the target is replaced, never followed, and a
    # reader never sees half a file.
    tmp = f"{real}.codetether-tmp-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o664)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
