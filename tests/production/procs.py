"""Real processes for the scale-out and chaos tests and the benchmarks: a Temporal dev server on a
SQLite file, ``codetether api --port`` and ``codetether worker`` processes, on random free ports
and a temporary data directory.

Every process starts in its own session and is registered with its :class:`Cluster`, which kills
whatever is still alive when it closes (also when a test fails, and at interpreter exit), so a
test never leaves children behind. ``kill9()`` is the chaos lever.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_LIVE: set["Proc"] = set()

# A SIGTERM'd worker may print this after a clean shutdown (temporalio 1.35); it is harmless.
HARMLESS_STDERR = "Fatal Python error: PyGILState_Release"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, timeout: float, what: str, proc: "Proc | None" = None, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and not proc.alive:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode} before {what}:\n{proc.tail()}")
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached after {timeout:.0f}s" + (f":\n{proc.tail()}" if proc else ""))


@dataclass(eq=False)
class Proc:
    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen = field(init=False)

    def start(self) -> "Proc":
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.cmd, env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _LIVE.add(self)
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL the process (and its session): no shutdown hooks, no goodbye to the server."""
        if self.alive:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=30)
        self._close()

    def stop(self, timeout: float = 15) -> None:
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._close()

    def _close(self) -> None:
        _LIVE.discard(self)
        if not self._log.closed:
            self._log.close()

    def tail(self, n: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-n:]


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        proc.kill9()


class Cluster:
    """Temporal dev server + N API processes + M workers sharing one database (and Redis)."""

    def __init__(self, workdir: Path, database_url: str, *, redis_url: str | None = None, extra_env: dict | None = None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.task_queue = f"cluster-{uuid.uuid4().hex[:10]}"
        self.temporal_port = free_port()
        self.temporal_db = self.dir / "temporal.db"
        self.temporal: Proc | None = None
        self.apis: list[tuple[Proc, int]] = []
        self.workers: list[Proc] = []
        self.procs: list[Proc] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODETETHER_")}
        env.update(
            CODETETHER_DATABASE_URL=database_url,
            CODETETHER_DATA_DIR=str(self.dir / "data"),
            CODETETHER_TEMPORAL_ADDRESS=f"127.0.0.1:{self.temporal_port}",
            CODETETHER_TEMPORAL_TASK_QUEUE=self.task_queue,
            CODETETHER_DEFAULT_MODEL="demo",
            CODETETHER_WEBHOOK_ALLOW_PRIVATE="true",
            CODETETHER_WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
            CODETETHER_LOG_JSON="true",
            CODETETHER_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        if redis_url:
            env["CODETETHER_REDIS_URL"] = redis_url
        env.update(extra_env or {})
        self.env = env
        self._n = 0

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str], env: dict | None = None) -> Proc:
        self._n += 1
        proc = Proc(name, cmd, env or self.env, self.dir / f"{self._n:02d}-{name}.log").start()
        self.procs.append(proc)
        return proc

    def start_temporal(self, timeout: float = 60) -> Proc:
        from codetether.core.temporal import dev_server_search_attribute_args

        ui_port = free_port()
        self.temporal = self._spawn(
            "temporal",
            [
                str(BIN / "temporal"), "server", "start-dev",
                "--ip", "127.0.0.1", "--port", str(self.temporal_port), "--ui-port", str(ui_port), "--headless",
                "--db-filename", str(self.temporal_db),
                "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=1",
                "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
                "--log-level", "error",
                *dev_server_search_attribute_args(),
            ],
        )
        wait_until(lambda: port_open(self.temporal_port), timeout, "Temporal listening", self.temporal)
        return self.temporal

    def start_api(self, timeout: float = 60) -> tuple[Proc, int]:
        port = free_port()
        proc = self._spawn(f"api{len(self.apis) + 1}", [str(BIN / "codetether"), "api", "--port", str(port)])
        wait_until(lambda: _healthy(port), timeout, f"API on {port} healthy", proc)
        self.apis.append((proc, port))
        return proc, port

    def start_worker(self, extra_env: dict | None = None, *, wait: bool = True, timeout: float = 60) -> Proc:
        env = dict(self.env, **(extra_env or {}))
        proc = self._spawn(f"worker{len(self.workers) + 1}", [str(BIN / "codetether"), "worker"], env)
        self.workers.append(proc)
        if wait:
            # The worker logs this once it is connected and about to poll.
            wait_until(lambda: "worker polling" in proc.tail(100_000), timeout, f"{proc.name} polling", proc)
        return proc

    def close(self) -> None:
        # APIs first, then workers, then Temporal; anything stubborn gets SIGKILL.
        for proc in reversed(self.procs):
            if proc.alive:
                proc.stop(timeout=10)
            else:
                proc._close()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.procs)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def unexpected_stderr(text: str) -> list[str]:
    """Fatal errors in a process log other than the known-harmless shutdown message."""
    return [l for l in text.splitlines() if l.startswith("Fatal Python error") and HARMLESS_STDERR not in l]
