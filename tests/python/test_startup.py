"""`sijill` starts fast: `--help` loads none of the heavy libraries the commands use.

Every invocation of `sijill`, `--help` included, imports `cli.main` and through it every command
module, so a library one of them imports at the top is paid for by all (web3 and eth_account
alone took most of a second). The commands import such libraries when they run; these tests
check that, by the modules loaded rather than by a time, so they hold on any machine.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from node.chain.toolchain import PROJECT_ROOT

#: What a command imports when it runs, never at `--help`: the chain clients, the HTTP server
#: and client, the PDF renderer, the node's database and its encryption.
HEAVY = (
    "web3",
    "eth_account",
    "eth_abi",
    "fastapi",
    "uvicorn",
    "weasyprint",
    "httpx",
    "plyvel",
    "psycopg",
    "psycopg_pool",
    "cryptography",
)

_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|( *)(\S+)$")


def _imports(*args: str) -> list[tuple[int, str]]:
    """(depth, module) of every module `python -X importtime ARGS` imports, in importtime's order
    (a module's own imports come before it)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = []
    for line in done.stderr.splitlines():
        if match := _IMPORT_LINE.match(line):
            found.append((len(match[1]) // 2, match[2]))
    assert found, "python -X importtime printed nothing"
    return found


def _heavy_imports(imports: list[tuple[int, str]]) -> dict[str, str]:
    """Each heavy package imported, with the chain of modules that brought it in (importer last)."""
    importer: dict[int, str] = {}  # entries are printed after their imports: read them backwards
    chains: dict[str, str] = {}
    for depth, module in reversed(imports):
        importer[depth] = module
        top = module.split(".")[0]
        if top in HEAVY and top not in chains:
            path = [importer[d] for d in range(depth - 1, -1, -1) if d in importer]
            chains[top] = " <- ".join([module, *path])
    return chains


@pytest.mark.parametrize("command", [["--help"], ["verify", "--help"]], ids=["help", "verify-help"])
def test_help_imports_no_heavy_library(command: list[str]) -> None:
    heavy = _heavy_imports(_imports("-m", "cli", *command))
    assert not heavy, "sijill " + " ".join(command) + " imports:\n" + "\n".join(heavy.values())


COMMAND_MODULES = sorted(
    f"cli.{path.stem}" for path in (PROJECT_ROOT / "cli").glob("*.py") if path.stem != "__main__"
)


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_command_module_imports_no_heavy_library(module: str) -> None:
    """Each module of `cli/` alone (and with it what it imports at the top), so a failure above
    names the module to fix."""
    heavy = _heavy_imports(_imports("-c", f"import {module}"))
    assert not heavy, f"{module} imports:\n" + "\n".join(heavy.values())
