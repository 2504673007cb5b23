"""The package's import structure: no module of ``codetether`` imports itself back through others,
and the layering contracts in ``pyproject.toml`` (``[tool.importlinter]``) hold.

Lazy imports inside functions and ``TYPE_CHECKING`` imports count too: a cycle hidden in a function
body is still a cycle (it was how activities used to reach workflow classes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One shortest chain per import that closes a loop: ``a`` imports ``b`` and ``b`` reaches ``a``."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                found.append([importer, *back])
    return found


def test_no_module_imports_itself_back():
    graph = grimp.build_graph("codetether", include_external_packages=False, cache_dir=None)
    cycles = _cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(chain) for chain in cycles)


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
