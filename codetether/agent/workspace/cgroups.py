"""One cgroup per sandboxed ``bash`` command: memory and process limits for the whole command.

The rlimits ``prlimit`` sets are per process (address space) or per uid (processes); three
processes of one command could still take three times the memory limit between them. A cgroup
caps the sum: ``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1) at
``CODETETHER_SANDBOX_MEMORY_BYTES`` and ``pids.max`` at ``CODETETHER_SANDBOX_MAX_PROCESSES``.

Whether the worker may create cgroups depends on the machine: a root worker with a writable
cgroup v1 hierarchy, or cgroup v2 with the memory and pids controllers delegated to the worker's
own cgroup (e.g. a container that is the root of its cgroup namespace). Anything else turns the
cgroups off with one log line and the rlimits stay the only limits (``describe`` says which).
The command joins its cgroup before anything else runs: :func:`join_prefix` is a tiny ``sh``
that writes its own pid into each ``cgroup.procs`` and then ``exec``\\ s the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
PARENT_NAME = "codetether-sandboxes"
_JOIN = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'


@dataclass
class CommandCgroup:
    """The cgroup folders (one per hierarchy) of one command."""

    dirs: list[str] = field(default_factory=list)

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]


class SandboxCgroups:
    def __init__(self, *, memory_bytes: int, max_processes: int, enabled: bool = True, root: str = CGROUP_ROOT) -> None:
        self.memory_bytes = memory_bytes
        self.max_processes = max_processes
        self.root = root
        self.version: int | None = None
        self.parents: dict[str, str] = {}
        self.reason = "turned off (CODETETHER_SANDBOX_CGROUPS=false)"
        if enabled:
            self._detect()

    @property
    def available(self) -> bool:
        return self.version is not None

    def describe(self) -> str:
        if self.available:
            return f"one cgroup v{self.version} per command (memory {self.memory_bytes} bytes, {self.max_processes} processes)"
        return f"no per-command cgroup ({self.reason}); rlimits only"

    # ---- detection ------------------------------------------------------------------------

    def _own(self, controller: str | None) -> str | None:
        """This process's cgroup path in the hierarchy of ``controller`` (None: the v2 one)."""
        try:
            with open("/proc/self/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        for line in lines:
            _id, names, path = line.split(":", 2)
            if (controller is None and names == "") or (controller is not None and controller in names.split(",")):
                return path
        return None

    def _detect(self) -> None:
        if os.path.isfile(os.path.join(self.root, "cgroup.controllers")):
            self._detect_v2()
        elif os.path.isdir(os.path.join(self.root, "memory")) and os.path.isdir(os.path.join(self.root, "pids")):
            self._detect_v1()
        else:
            self.reason = "no cgroup file system"
        if not self.available:
            log.info("sandbox cgroups unavailable: %s", self.reason)

    def _detect_v2(self) -> None:
        own = self._own(None)
        if own is None:
            self.reason = "this process has no cgroup v2 path"
            return
        base = os.path.join(self.root, own.lstrip("/"))
        try:
            with open(os.path.join(base, "cgroup.controllers")) as f:
                have = set(f.read().split())
            if not {"memory", "pids"} <= have:
                self.reason = "the memory and pids controllers are not delegated to this process's cgroup"
                return
            # Fails (EBUSY) when this cgroup holds processes and is not a namespace root.
            with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
                f.write("+memory +pids")
            parent = os.path.join(base, PARENT_NAME)
            os.makedirs(parent, exist_ok=True)
            with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                f.write("+memory +pids")
        except OSError as err:
            self.reason = f"cgroup v2 not writable here: {err.strerror or err}"
            return
        self.version, self.parents = 2, {"unified": parent}

    def _detect_v1(self) -> None:
        parents = {}
        try:
            for controller in ("memory", "pids"):
                own = self._own(controller) or "/"
                parent = os.path.join(self.root, controller, own.lstrip("/"), PARENT_NAME)
                os.makedirs(parent, exist_ok=True)
                parents[controller] = parent
        except OSError as err:
            self.reason = f"cgroup v1 not writable here: {err.strerror or err}"
            return
        self.version, self.parents = 1, parents

    # ---- one command ----------------------------------------------------------------------

    def create(self) -> CommandCgroup | None:
        """A fresh cgroup with the limits set, or None (the command then runs on rlimits alone)."""
        if not self.available:
            return None
        name = f"cmd-{secrets.token_hex(6)}"
        group = CommandCgroup()
        try:
            for controller, parent in self.parents.items():
                d = os.path.join(parent, name)
                os.mkdir(d)
                group.dirs.append(d)
                for file, value in self._limits(controller):
                    # A file may be missing (memory.swap.max without swap accounting).
                    with contextlib.suppress(FileNotFoundError), open(os.path.join(d, file), "w") as f:
                        f.write(value)
        except OSError as err:
            log.warning("creating a sandbox cgroup failed: %s", err)
            for d in reversed(group.dirs):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            return None
        return group

    def _limits(self, controller: str) -> list[tuple[str, str]]:
        if self.version == 2:
            return [("memory.max", str(self.memory_bytes)), ("memory.swap.max", "0"),
                    ("pids.max", str(self.max_processes))]
        if controller == "memory":
            return [("memory.limit_in_bytes", str(self.memory_bytes))]
        return [("pids.max", str(self.max_processes))]

    async def remove(self, group: CommandCgroup) -> None:
        """Kills whatever is left in the cgroup (a process that left the process group) and removes it."""
        for d in group.dirs:
            for _ in range(100):
                for pid in _pids(d):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    await asyncio.sleep(0.02)  # the killed processes are still exiting
            else:
                log.warning("sandbox cgroup %s could not be removed", d)


def join_prefix(group: CommandCgroup | None) -> list[str]:
    """The argv prefix that moves the command into ``group`` before it starts (empty without one)."""
    if group is None or not group.dirs:
        return []
    return ["/bin/sh", "-c", _JOIN, "sh", str(len(group.dirs)), *group.procs_files]


def _pids(d: str) -> list[int]:
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []
