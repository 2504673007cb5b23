"""Processes for the n8n end-to-end tests: `codetether dev` on free loopback ports, and a real
n8n 2.41.1 (from the cache `.ci/install-n8n.sh` fills) with the packed `n8n-nodes-codetether`
tarball installed under `$N8N_USER_FOLDER/.n8n/nodes/node_modules/`, as a user's install puts it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = ROOT / "integrations" / "n8n-nodes-codetether"
TEMPLATES = PACKAGE_DIR / "templates"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---- toolchain -------------------------------------------------------------------------------


@dataclass
class Toolchain:
    node: Path
    n8n: Path

    @property
    def npm(self) -> str:
        # The registry's `node` package ships the binary only; npm is the one on PATH, run by it.
        found = shutil.which("npm", path=self.path_env)
        assert found, "npm is not on PATH"
        return found

    @property
    def path_env(self) -> str:
        return f"{self.node.parent}{os.pathsep}{os.environ.get('PATH', '')}"


def install_toolchain() -> Toolchain:
    """Node 24 + n8n 2.41.1 in the cache (a no-op once installed)."""
    out = subprocess.run(
        ["bash", str(ROOT / ".ci" / "install-n8n.sh")], check=True, capture_output=True, text=True
    ).stdout
    paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return Toolchain(node=Path(paths["NODE_BIN"]), n8n=Path(paths["N8N_BIN"]))


def pack_package(tools: Toolchain, dest: Path) -> Path:
    """Builds the package with n8n's CLI and packs it exactly as `npm publish` would."""
    env = {**os.environ, "PATH": tools.path_env}
    npm = tools.npm
    if not (PACKAGE_DIR / "node_modules" / ".bin" / "n8n-node").exists():
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=PACKAGE_DIR,
                       env=env, check=True, capture_output=True)
    subprocess.run([npm, "run", "build"], cwd=PACKAGE_DIR, env=env, check=True, capture_output=True)
    out = subprocess.run([npm, "pack", "--json", "--pack-destination", str(dest)], cwd=PACKAGE_DIR,
                         env=env, check=True, capture_output=True, text=True).stdout
    return dest / json.loads(out)[0]["filename"]


# ---- codetether dev --------------------------------------------------------------------------


@dataclass
class CodeTether:
    proc: subprocess.Popen
    url: str
    data_dir: Path
    api_key: str
    env: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=90)


def start_codetether(data_dir: Path, attempts: int = 3) -> CodeTether:
    """`codetether dev` on free ports. On a loaded machine its Temporal can still say "Frontend
    is not healthy yet" just after its port opens and the command exits; start it again then."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_codetether(data_dir)
        except AssertionError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _start_codetether(data_dir: Path) -> CodeTether:
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODETETHER_", "OPENAI_", "ANTHROPIC_"))}
    env.update(
        CODETETHER_DATA_DIR=str(data_dir),
        # n8n answers 409 until a run reaches its Wait node: retry quickly in tests.
        CODETETHER_WEBHOOK_RETRY_SCHEDULE="1,1,2,2,3,5,10,30",
    )
    log = open(data_dir / "dev.log", "ab")
    proc = subprocess.Popen(
        [str(BIN / "codetether"), "dev", "--api-port", str(api_port), "--temporal-port", str(temporal_port),
         "--ui-port", str(ui_port), "--data-dir", str(data_dir)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=data_dir,
    )
    url = f"http://127.0.0.1:{api_port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"codetether dev exited: {(data_dir / 'dev.log').read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 120, "codetether dev /readyz")
    cli = [str(BIN / "codetether")]
    email = "n8n-e2e@example.com"
    subprocess.run([*cli, "users", "create", email, "--tier", "enterprise"], env=env, check=True,
                   capture_output=True, cwd=data_dir)
    key = subprocess.run([*cli, "keys", "create", "--user", email, "--name", "n8n"], env=env, check=True,
                         capture_output=True, text=True, cwd=data_dir).stdout.strip()
    assert key.startswith("ct_"), key
    return CodeTether(proc=proc, url=url, data_dir=data_dir, api_key=key, env=env)


# ---- n8n -------------------------------------------------------------------------------------

CREDENTIAL_ID = "ctE2eCredential1"
CREDENTIAL_NAME = "CodeTether account"


@dataclass
class N8n:
    tools: Toolchain
    home: Path
    encryption_key: str = field(default_factory=lambda: secrets.token_hex(24))
    port: int = field(default_factory=free_port)
    server: subprocess.Popen | None = None
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "DB_"))}
        env.update(
            PATH=self.tools.path_env,
            N8N_USER_FOLDER=str(self.home),
            DB_TYPE="sqlite",
            N8N_ENCRYPTION_KEY=self.encryption_key,
            N8N_DIAGNOSTICS_ENABLED="false",
            N8N_VERSION_NOTIFICATIONS_ENABLED="false",
            N8N_TEMPLATES_ENABLED="false",
            N8N_PERSONALIZATION_ENABLED="false",
            N8N_DISABLED_MODULES="mcp-registry",
            N8N_RUNNERS_BROKER_PORT=str(free_port()),
            N8N_PORT=str(self.port),
            N8N_LISTEN_ADDRESS="127.0.0.1",
            N8N_HOST="127.0.0.1",
            N8N_PROTOCOL="http",
            N8N_WEBHOOK_URL=f"http://127.0.0.1:{self.port}/",
            N8N_EDITOR_BASE_URL=f"http://127.0.0.1:{self.port}/",
            N8N_SECURE_COOKIE="false",
            N8N_LOG_LEVEL=os.environ.get("CODETETHER_TEST_N8N_LOG_LEVEL", "info"),
            N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS="false",
            NODE_ENV="production",
        )
        return env

    def cli(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.tools.n8n), *args], env=self.env(), capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"n8n {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def install_package(self, tarball: Path) -> Path:
        """What Settings → Community Nodes → Install does: npm-install the package in ~/.n8n/nodes."""
        nodes = self.home / ".n8n" / "nodes"
        nodes.mkdir(parents=True, exist_ok=True)
        (nodes / "package.json").write_text(json.dumps({"name": "installed-nodes", "private": True}))
        subprocess.run(
            [self.tools.npm, "install", "--omit=dev", "--omit=peer", "--ignore-scripts",
             "--no-audit", "--no-fund", "--no-package-lock", str(tarball)],
            cwd=nodes, env=self.env(), check=True, capture_output=True,
        )
        return nodes / "node_modules" / "n8n-nodes-codetether"

    def import_credential(self, ct: CodeTether) -> None:
        path = self.home / "credential.json"
        path.write_text(json.dumps([{
            "id": CREDENTIAL_ID, "name": CREDENTIAL_NAME, "type": "codeTetherApi",
            "data": {"apiKey": ct.api_key, "domain": ct.url},
        }]))
        self.cli("import:credentials", f"--input={path}")
        path.unlink()

    def import_workflows(self, workflows: dict[str, dict]) -> None:
        """Imports workflows (id → workflow) in one CLI call, every CodeTether node bound to the
        test credential (templates carry none)."""
        folder = self.home / "import"
        folder.mkdir(exist_ok=True)
        for workflow_id, workflow in workflows.items():
            workflow = json.loads(json.dumps(workflow))
            workflow["id"] = workflow_id
            workflow["active"] = False
            for node in workflow["nodes"]:
                if node["type"].startswith("n8n-nodes-codetether."):
                    node["credentials"] = {"codeTetherApi": {"id": CREDENTIAL_ID, "name": CREDENTIAL_NAME}}
            (folder / f"{workflow_id}.json").write_text(json.dumps(workflow))
        self.cli("import:workflow", "--separate", f"--input={folder}")

    def execute(self, workflow_id: str, timeout: float = 240) -> dict:
        """`n8n execute --rawOutput`: the run's data (exit code 1 if the run failed)."""
        proc = self.cli("execute", f"--id={workflow_id}", "--rawOutput", timeout=timeout, check=False)
        out = proc.stdout
        start = out.find("{")
        assert proc.returncode == 0 and start >= 0, f"execution failed ({proc.returncode}):\n{out[-6000:]}\n{proc.stderr[-3000:]}"
        # The run's JSON is the first document on stdout; n8n may log more lines after it
        # (a task runner registering late), so decode one document and ignore the rest.
        data, _ = json.JSONDecoder().raw_decode(out, start)
        return data

    # -- the server, for triggers and Wait nodes --

    def start(self) -> None:
        log = open(self.home / "n8n.log", "ab")
        self.server = subprocess.Popen([str(self.tools.n8n), "start"], env=self.env(), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)

        def healthy() -> bool:
            if self.server.poll() is not None:
                raise AssertionError(f"n8n exited: {(self.home / 'n8n.log').read_text()[-4000:]}")
            try:
                return httpx.get(f"{self.url}/healthz/readiness", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 180, "n8n readiness")

    def stop(self) -> None:
        if self.server is not None:
            stop(self.server, timeout=30)
            self.server = None

    def rest(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/rest", cookies=self.cookies, timeout=60,
                            headers={"browser-id": "codetether-e2e"})

    def sign_in_owner(self) -> None:
        with self.rest() as rest:
            r = rest.post("/owner/setup", json={"email": "owner@example.com", "firstName": "E2E",
                                                "lastName": "Owner", "password": "E2e-password-1"})
            assert r.status_code == 200, r.text
            self.cookies.update(r.cookies)

    def activate(self, workflow_id: str) -> None:
        """What the editor's Publish button does."""
        with self.rest() as rest:
            r = rest.get(f"/workflows/{workflow_id}")
            assert r.status_code == 200, r.text
            r = rest.post(f"/workflows/{workflow_id}/activate", json={"versionId": r.json()["data"]["versionId"]})
            assert r.status_code == 200, r.text

    def deactivate(self, workflow_id: str) -> None:
        with self.rest() as rest:
            r = rest.post(f"/workflows/{workflow_id}/deactivate", json={})
            assert r.status_code == 200, r.text

    def webhook_url(self, path: str) -> str:
        return f"{self.url}/webhook/{path}"


def template(name: str) -> dict:
    return json.loads((TEMPLATES / name).read_text())


# ---- a receiver for what n8n workflows forward -----------------------------------------------


class Sink:
    """A tiny HTTP server on 127.0.0.1 recording the JSON bodies n8n's HTTP Request nodes send it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with sink._lock:
                    sink.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sink"

    def received(self, predicate) -> list[dict]:
        with self._lock:
            return [b for b in self.bodies if predicate(b)]

    def wait_for(self, predicate, timeout: float = 90) -> dict:
        return wait_until(lambda: (self.received(predicate) or [None])[0], timeout, "a forwarded body")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
