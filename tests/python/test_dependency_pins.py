"""Every dependency is pinned: each Python distribution in .venv/ (and in .venv-slither/) at the
exact version its constraints file names, and each package.json dependency in package-lock.json
at a version that satisfies it, with an integrity hash for every package `npm ci` installs.
The Makefile installs only through these (`pip -c`, `npm ci`); docs/dependencies.md."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import pytest

from node.chain.toolchain import PROJECT_ROOT

# slither-analyzer 0.11.6 requires web3<8 and web3 7 requires websockets<16; the project runs
# web3 8 (constraints-slither.txt). Any other shared package must be at the same version.
SLITHER_ONLY_VERSIONS = {"web3", "websockets"}
ENVIRONMENTS = {".venv": "constraints.txt", ".venv-slither": "constraints-slither.txt"}


def normalized(name: str) -> str:
    """PEP 503: `Jinja2`, `eth_abi` and `typing-extensions` as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a constraints file; comments and blank lines skipped."""
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        assert match, f"{path.name}:{number}: not an exact pin: {line!r}"
        name = normalized(match[1])
        assert name not in pins, f"{path.name}:{number}: {match[1]} pinned twice"
        pins[name] = match[2]
    return pins


def installed(venv: Path) -> dict[str, str]:
    """Distributions in a virtualenv's site-packages, read from its metadata (not imported)."""
    (site,) = venv.glob("lib/python3*/site-packages")
    return {normalized(d.metadata["Name"]): d.version for d in distributions(path=[str(site)])}


@pytest.mark.parametrize(("venv", "constraints"), ENVIRONMENTS.items())
def test_every_installed_distribution_is_pinned_at_its_version(venv: str, constraints: str) -> None:
    if not (PROJECT_ROOT / venv).is_dir():
        pytest.fail(f"{venv} is missing: run `make setup-test`")
    dists = installed(PROJECT_ROOT / venv)
    dists.pop("sijill", None)  # the project itself, installed editable from this tree
    pins = read_pins(PROJECT_ROOT / constraints)
    wrong = {
        n: f"{v} installed, {pins.get(n, 'not pinned')} in {constraints}"
        for n, v in dists.items()
        if pins.get(n) != v
    }
    assert not wrong, f"{venv} differs from {constraints}: {wrong}"
    unused = sorted(set(pins) - set(dists))
    assert not unused, f"{constraints} pins what {venv} does not hold: {unused}"


@pytest.mark.parametrize("constraints", ENVIRONMENTS.values())
def test_constraints_files_are_in_name_order(constraints: str) -> None:
    # pip freeze's order, so a new pin lands in one place and diffs stay small.
    lines = (PROJECT_ROOT / constraints).read_text().splitlines()
    names = [line.split("==")[0] for line in lines if line and not line.startswith("#")]
    assert names == sorted(names, key=str.lower)


def test_slither_shares_the_projects_pins_but_web3() -> None:
    ours = read_pins(PROJECT_ROOT / "constraints.txt")
    slither = read_pins(PROJECT_ROOT / "constraints-slither.txt")
    differ = {n for n in set(ours) & set(slither) if ours[n] != slither[n]}
    assert differ == SLITHER_ONLY_VERSIONS, {
        n: (ours.get(n), slither.get(n)) for n in differ ^ SLITHER_ONLY_VERSIONS
    }
    assert "slither-analyzer" in slither and "slither-analyzer" not in ours


def test_package_json_dependencies_are_locked_with_integrity_hashes() -> None:
    manifest = json.loads((PROJECT_ROOT / "package.json").read_text())
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())
    assert lock["lockfileVersion"] == 3
    wanted = manifest.get("dependencies", {}) | manifest.get("devDependencies", {})
    root = lock["packages"][""]
    assert root.get("dependencies", {}) | root.get("devDependencies", {}) == wanted
    missing = [name for name in wanted if "version" not in lock["packages"].get(f"node_modules/{name}", {})]
    assert not missing, f"package-lock.json lacks {missing}"
    unhashed = [
        path
        for path, package in lock["packages"].items()
        if path and not package.get("link") and not str(package.get("integrity", "")).startswith("sha512-")
    ]
    assert not unhashed, f"no sha512 integrity in package-lock.json for {unhashed}"
    # npm's own semver: the lock's version of each dependency satisfies package.json's range.
    listed = npm_ls(PROJECT_ROOT)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    versions = {name: info["version"] for name, info in json.loads(listed.stdout)["dependencies"].items()}
    assert versions == {name: lock["packages"][f"node_modules/{name}"]["version"] for name in wanted}


def test_a_range_the_lock_does_not_satisfy_is_named(tmp_path: Path) -> None:
    manifest = json.loads((PROJECT_ROOT / "package.json").read_text())
    manifest["devDependencies"]["solc"] = "^0.9.0"
    (tmp_path / "package.json").write_text(json.dumps(manifest))
    shutil.copy(PROJECT_ROOT / "package-lock.json", tmp_path / "package-lock.json")
    listed = npm_ls(tmp_path)
    assert listed.returncode != 0
    assert "invalid: solc@0.8.30" in json.loads(listed.stdout)["problems"][0]


def npm_ls(project: Path) -> subprocess.CompletedProcess[str]:
    """`npm ls` over the lock alone: reads no node_modules, asks no registry."""
    return subprocess.run(
        ["npm", "ls", "--package-lock-only", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_audit_never_calls_unaudited_packages_clean(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # scripts/audit_dependencies.py's verdict, on the outcomes this machine and others give.
    spec = importlib.util.spec_from_file_location(
        "audit_dependencies", PROJECT_ROOT / "scripts" / "audit_dependencies.py"
    )
    assert spec and spec.loader
    audit = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, audit)  # its dataclasses look their module up
    spec.loader.exec_module(audit)
    skipped = "pip-audit -s pypi: Dependency not found on PyPI and could not be audited"
    clean_npm = audit.NpmAudit(npm="11", packages_in_lock=2, audited=2, counts={"high": 0})

    def outcome(npm: Any, *pins: Any) -> tuple[int, str]:
        code = audit.summarize("today", npm, {(p.name, p.version): p for p in pins}, [])
        return code, capsys.readouterr().out

    # What this machine gets: every pin skipped by pip-audit, npm's advisory endpoint refused.
    code, out = outcome(
        audit.NpmAudit(npm="11", packages_in_lock=2, error="405 Method Not Allowed"),
        audit.Pin("attrs", "26.1.0", not_audited_because=[skipped]),
    )
    assert code == 2 and "INCOMPLETE" in out and "no known vulnerabilities in any" not in out
    assert "not audited: attrs==26.1.0" in out and "npm's 2 packages" in out
    code, out = outcome(clean_npm, audit.Pin("attrs", "26.1.0", audited_by=["x"], vulnerabilities=["GHSA-1"]))
    assert code == 1 and "VULNERABLE: attrs==26.1.0: GHSA-1" in out
    code, out = outcome(clean_npm, audit.Pin("attrs", "26.1.0", audited_by=["x"]))
    assert code == 0 and "RESULT: no known vulnerabilities in any pinned package" in out
