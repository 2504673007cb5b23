"""Fixtures for the n8n end-to-end tests (marked `n8n`): one `codetether dev`, one n8n user
folder with the packed package installed, shared by the whole session because an n8n start
costs seconds. Select them with `-m n8n`, leave them out with `-m "not n8n"`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .workflows import all_workflows
from .harness import CodeTether, N8n, Sink, Toolchain, install_toolchain, pack_package, start_codetether, stop


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.n8n)


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    return install_toolchain()


@pytest.fixture(scope="session")
def tarball(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pack_package(toolchain, tmp_path_factory.mktemp("pack"))


@pytest.fixture(scope="session")
def codetether(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTether]:
    ct = start_codetether(tmp_path_factory.mktemp("codetether"))
    try:
        yield ct
    finally:
        stop(ct.proc)


@pytest.fixture(scope="session")
def n8n(toolchain: Toolchain, tarball: Path, codetether: CodeTether, sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[N8n]:
    instance = N8n(tools=toolchain, home=tmp_path_factory.mktemp("n8n"))
    instance.install_package(tarball)
    instance.import_credential(codetether)
    instance.import_workflows(all_workflows(sink.url))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def n8n_server(n8n: N8n) -> N8n:
    """The same n8n, serving webhooks (started once, after the CLI-only tests)."""
    if n8n.server is None:
        n8n.start()
        n8n.sign_in_owner()
    return n8n


@pytest.fixture(scope="session")
def sink() -> Iterator[Sink]:
    s = Sink()
    try:
        yield s
    finally:
        s.close()
