"""The layout of the code (docs/architecture.md): imports run one way, every package says what it
owns, no module outgrows a reading.

`ledger` <- `node.chain` <- the node (runtime, `node.auditor`, `node.network`) <- `api` <- `cli`.
Checked over the source, every import statement (module level or inside a function), so a lazy
import that runs the wrong way fails as surely as one at the top.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from node.chain.toolchain import PROJECT_ROOT

PACKAGES = ("ledger", "node", "api", "cli")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path, name: str) -> set[str]:
    """The project modules (and packages) a module imports, resolved to dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")[: -node.level] if path.name != "__init__.py" else name.split(".")
                if path.name == "__init__.py" and node.level > 1:
                    package = package[: -(node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return {i for i in found if i.split(".")[0] in PACKAGES}


def _layer(module: str) -> str:
    """The layer of a module: ledger, chain, node (runtime, auditor, network, errors), api, cli."""
    if module.startswith("node.chain"):
        return "chain"
    return module.split(".")[0]


#: what each layer may import (besides itself)
ALLOWED = {
    "ledger": {"ledger"},
    "chain": {"ledger", "chain", "node.errors"},
    "node": {"ledger", "chain", "node"},
    "api": {"ledger", "chain", "node", "api"},
    "cli": {"ledger", "chain", "node", "api", "cli"},
}


def _allowed(importer: str, imported: str) -> bool:
    allowed = ALLOWED[_layer(importer)]
    return _layer(imported) in allowed or imported in allowed or imported == "node"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module: str) -> None:
    wrong = sorted(i for i in _imports(MODULES[module], module) if not _allowed(module, i))
    assert not wrong, f"{module} ({_layer(module)}) imports {wrong}, which its layer may not"


TOOLS_BESIDE = ("node.auditor", "node.network")


def test_the_node_runtime_does_not_import_the_tools_beside_it() -> None:
    """The agency node at run time needs neither the auditor's nor the operator's tools; they sit
    beside it and may use it (an export reads the store), not the other way round."""
    wrong = {
        module: sorted(i for i in _imports(path, module) if i.startswith(TOOLS_BESIDE))
        for module, path in MODULES.items()
        if module.startswith("node.") and not module.startswith((*TOOLS_BESIDE, "node.chain"))
    }
    assert not {m: i for m, i in wrong.items() if i}


def test_the_check_sees_imports_inside_functions() -> None:
    """The rule holds for lazy imports too: cli.main imports the serve command inside a function."""
    assert "cli.serve" in _imports(MODULES["cli.main"], "cli.main")
    assert len(MODULES) > 60


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_outgrows_a_reading(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    where = MODULES[module].relative_to(PROJECT_ROOT)
    assert lines <= MAX_LINES, f"{where} has {lines} lines (> {MAX_LINES})"


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py"))
def test_every_package_says_what_it_owns(package: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[package].read_text(encoding="utf-8")))
    assert docstring and len(docstring) > 80, f"{package}/__init__.py has no docstring saying what it owns"


def test_the_architecture_page_names_modules_that_exist() -> None:
    """docs/architecture.md names a module at each step of a record's path: each must exist."""
    page = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:ledger|node|api|cli)(?:/[a-z_]+)+\.py)`", page))
    assert len(named) >= 15
    missing = sorted(n for n in named if not (PROJECT_ROOT / n).is_file())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
