"""The ``bash`` tool's sandbox: bubblewrap, one unprivileged uid per slot, no network.

Each command runs in its own cgroup when the worker may create one (``cgroups.py``: memory and
processes summed over the command) → ``setpriv`` (to the slot's uid when the worker is root) →
``prlimit`` (memory, processes, file size, CPU) → ``bwrap`` with every namespace unshared (own
network namespace with only its own loopback), a read-only root that holds only an allow-list of
host folders (``/usr``, ``/bin``, ``/lib*``, certificates and a few files of ``/etc``: never other
workspaces, repositories or the data dir), a private size-capped ``/tmp``, the workspace bound
writable (read-only for plan/explore) and its ``.git`` read-only, a clean environment,
``--die-with-parent`` and ``--new-session``. A timeout or a cancellation kills the whole process
group (and whatever is left in the cgroup), so no child survives. See docs/agent.md "Sandbox".

Without bubblewrap, :class:`Sandbox` refuses to run anything unless
``CODETETHER_SANDBOX_ALLOW_UNSAFE`` is set (then commands run unconfined, which the worker logs
at start-up).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from codetether.core.config import Settings
from codetether.agent.workspace.binaries import bwrap_path
from codetether.agent.workspace.cgroups import SandboxCgroups, join_prefix

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# What a sandboxed command sees of the host, read-only: programs, libraries, certificates and the
# few files of /etc that bash, git, python3 and coreutils read. Missing ones are skipped; a
# symlink (a merged /usr's /bin -> usr/bin) is recreated as the same symlink.
READ_ONLY_PATHS = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/crypto-policies",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone",
    "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/protocols", "/etc/services",
    "/etc/gitconfig", "/etc/mime.types", "/etc/magic", "/etc/inputrc", "/etc/os-release",
)


class SandboxUnavailable(Exception):
    pass


@dataclass
class CommandOutcome:
    output: bytes
    exit_code: int | None
    timed_out: bool


class Sandbox:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bwrap = bwrap_path()
        self.setpriv = shutil.which("setpriv")
        self.prlimit = shutil.which("prlimit")
        self.is_root = os.geteuid() == 0
        self.sizes_tmp = self.bwrap is not None and _sizes_tmpfs(self.bwrap)
        # bwrap can be installed and still refused by its host (a container's seccomp profile or
        # masked /proc, user namespaces switched off): one trial run at start says which.
        self.refusal = None
        if self.bwrap is not None:
            probe_uid = settings.sandbox_uid_base if (self.is_root and self.setpriv) else None
            self.refusal = _bwrap_refusal(self.bwrap, self.setpriv, probe_uid, tuple(self._host_view()))
        self.cgroups = SandboxCgroups(
            memory_bytes=settings.sandbox_memory_bytes, max_processes=settings.sandbox_max_processes,
            enabled=settings.sandbox_cgroups and self.available and self.is_root,
        )
        self._free = asyncio.Queue()
        for i in range(settings.sandbox_slots):
            self._free.put_nowait(settings.sandbox_uid_base + i)

    @property
    def available(self) -> bool:
        return self.bwrap is not None and self.refusal is None

    def describe(self) -> str:
        if self.available:
            who = f"uids {self.settings.sandbox_uid_base}..{self.settings.sandbox_uid_base + self.settings.sandbox_slots - 1}" if self.is_root else "the worker's own (unprivileged) user"
            return f"bash runs under bubblewrap ({self.bwrap}) as {who}, without network; {self.cgroups.describe()}"
        missing = "bubblewrap is missing" if self.bwrap is None else f"bubblewrap cannot run here ({self.refusal})"
        if self.settings.sandbox_allow_unsafe:
            return f"WARNING: {missing} and CODETETHER_SANDBOX_ALLOW_UNSAFE is set: bash runs UNSANDBOXED"
        return f"{missing}: the bash tool is refused (see docs/agent.md, Sandbox, or set CODETETHER_SANDBOX_ALLOW_UNSAFE)"

    def sandbox_uid(self) -> int | None:
        """The uid that owns workspace files (the first slot's uid's group shares them), or None."""
        return self.settings.sandbox_uid_base if (self.available and self.is_root) else None

    def _argv(self, uid: int | None, workspace: str, workdir: str, command: str, *, read_only: bool) -> list[str]:
        s = self.settings
        limits = [
            f"--as={s.sandbox_memory_bytes}",
            f"--nproc={s.sandbox_max_processes}",
            f"--fsize={s.sandbox_max_file_bytes}",
            "--cpu=900",
            "--core=0",
        ]
        argv: list[str] = []
        if uid is not None and self.setpriv:
            argv += [self.setpriv, f"--reuid={uid}", f"--regid={s.sandbox_uid_base}", "--clear-groups", "--"]
        if self.prlimit:
            argv += [self.prlimit, *limits, "--"]
        if self.available:
            git_dir = os.path.join(workspace, ".git")
            argv += [
                self.bwrap, "--new-session", "--die-with-parent", "--unshare-all", "--clearenv",
                "--setenv", "PATH", SANDBOX_PATH, "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8",
                "--setenv", "TERM", "dumb", "--setenv", "CI", "1", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
                "--setenv", "GIT_CONFIG_COUNT", "1", "--setenv", "GIT_CONFIG_KEY_0", "safe.directory",
                "--setenv", "GIT_CONFIG_VALUE_0", "*",
            ]
            argv += self._host_view()
            argv += ["--dev", "/dev", "--proc", "/proc"]
            if self.sizes_tmp:
                argv += ["--size", str(s.sandbox_tmp_bytes)]
            argv += ["--tmpfs", "/tmp"]
            # The workspace's parent folders exist only as empty folders on the sandbox's own root:
            # other tasks' workspaces beside this one are not there.
            argv += ["--ro-bind" if read_only else "--bind", workspace, workspace]
            if os.path.isdir(git_dir):
                argv += ["--ro-bind", git_dir, git_dir]
            argv += ["--remount-ro", "/", "--chdir", workdir, "--", "/bin/bash", "-c", "umask 0002\n" + command]
        else:
            argv += ["/bin/bash", "-c", command]
        return argv

    def _host_view(self) -> list[str]:
        extra = [p.strip() for p in self.settings.sandbox_read_paths.split(",") if p.strip()]
        argv: list[str] = []
        for path in (*READ_ONLY_PATHS, *extra):
            if not os.path.isabs(path) or not os.path.lexists(path):
                continue
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            else:
                argv += ["--ro-bind", path, path]
        return argv

    async def run(
        self, workspace: str, workdir: str, command: str, *, timeout_ms: int | None, read_only: bool, max_output: int
    ) -> CommandOutcome:
        if not self.available and not self.settings.sandbox_allow_unsafe:
            why = "bubblewrap is not installed" if self.bwrap is None else "bubblewrap cannot run on this host"
            raise SandboxUnavailable(f"bash is disabled on this worker: {why} (see docs/agent.md, Sandbox)")
        timeout = min(max(int(timeout_ms or DEFAULT_TIMEOUT_MS), 1000), MAX_TIMEOUT_MS) / 1000
        uid = await self._free.get() if self.is_root and self.available else None
        group = self.cgroups.create()
        try:
            prefix = join_prefix(group)
            return await self._run(prefix, uid, workspace, workdir, command, timeout, read_only, max_output)
        finally:
            if group is not None:
                await self.cgroups.remove(group)
            if uid is not None:
                self._free.put_nowait(uid)

    async def _run(self, prefix, uid, workspace, workdir, command, timeout, read_only, max_output) -> CommandOutcome:
        env = {"PATH": SANDBOX_PATH, "HOME": "/tmp", "LANG": "C.UTF-8"}
        proc = await asyncio.create_subprocess_exec(
            *prefix, *self._argv(uid, workspace, workdir, command, read_only=read_only),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=workdir if not self.available else "/",
            env=env,
            start_new_session=True,
        )
        chunks: list[bytes] = []
        size = 0

        async def _read() -> None:
            nonlocal size
            assert proc.stdout is not None
            while True:
                block = await proc.stdout.read(65536)
                if not block:
                    return
                # Keep a little more than the cap so the caller can tell it was cut.
                if size < max_output + 1:
                    chunks.append(block[: max_output + 1 - size])
                size += len(block)

        reader = asyncio.create_task(_read())
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(reader), timeout=timeout)
            await proc.wait()
        except asyncio.TimeoutError:
            timed_out = True
            _kill_group(proc.pid)
            await proc.wait()
        except BaseException:
            # Cancelled (the task was cancelled): the whole process group goes at once.
            _kill_group(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 2)
            reader.cancel()
            raise
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(reader, 2)
        return CommandOutcome(output=b"".join(chunks), exit_code=None if timed_out else proc.returncode, timed_out=timed_out)


@functools.lru_cache(maxsize=8)
def _bwrap_refusal(bwrap: str, setpriv: str | None, uid: int | None, host_view: tuple[str, ...]) -> str | None:
    """None when bwrap runs a trivial command with the namespaces and mounts every command gets,
    else the first line of what it said (e.g. "No permissions to create new namespace")."""
    argv: list[str] = []
    if uid is not None and setpriv:
        argv += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    argv += [bwrap, "--unshare-all", "--die-with-parent", *host_view, "--dev", "/dev", "--proc", "/proc",
             "--tmpfs", "/tmp", "--remount-ro", "/", "--", "/bin/true"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/")
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)[:300]
    if proc.returncode == 0:
        return None
    said = (proc.stderr or proc.stdout).strip().splitlines()
    return (said[0] if said else f"exit status {proc.returncode}")[:300]


@functools.lru_cache(maxsize=4)
def _sizes_tmpfs(bwrap: str) -> bool:
    """Whether this bwrap has ``--size`` (0.10 and later; the bundled one has). An older one on
    PATH runs with an unsized /tmp rather than failing every command."""
    try:
        proc = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    if "--size" in proc.stdout + proc.stderr:
        return True
    log.warning("%s has no --size: the sandbox's /tmp is not size-capped (use the bundled bubblewrap)", bwrap)
    return False


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
