"""Slither over the contracts, read from Hardhat's build (no compiler of its own): every high or
medium finding is explained in contracts/slither-triage.json, and every explanation there still
matches a finding. Slither runs once (about 5 s), from .venv-slither/ (constraints-slither.txt),
with slither.config.json: findings that lie wholly inside node_modules/ are left out."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from node.chain.toolchain import PROJECT_ROOT, compiler_config

SLITHER = PROJECT_ROOT / ".venv-slither" / "bin" / "slither"
TRIAGE = PROJECT_ROOT / "contracts" / "slither-triage.json"
REPORT = PROJECT_ROOT / "build" / "test-output" / "slither.json"
TRIAGED_IMPACTS = ("High", "Medium")
IMPACTS = ("High", "Medium", "Low", "Informational", "Optimization")
ENTRY_FIELDS = {"check", "impact", "contract", "element", "expression", "reason"}
REQUIRED_FIELDS = ENTRY_FIELDS - {"expression"}


@dataclass(frozen=True)
class FindingName:
    """A finding named as the triage names it: never by line, so edits elsewhere keep it."""

    check: str
    impact: str
    contract: str
    element: str
    expression: str | None

    def __str__(self) -> str:
        where = f"{self.contract}.{self.element}" + (f": {self.expression}" if self.expression else "")
        return f"{self.impact} {self.check} in {where}"


@dataclass(frozen=True)
class SlitherRun:
    detectors: list[dict[str, Any]]
    compilations: list[dict[str, Any]]
    solc_select_dir: Path


def finding_name(finding: dict[str, Any]) -> FindingName:
    """The first element is what the finding is about (a function, a state variable, a
    contract); the first node element, if any, is the expression it points at."""
    first = finding["elements"][0]
    nodes = [e["name"] for e in finding["elements"] if e["type"] == "node"]
    return FindingName(
        finding["check"], finding["impact"], _contract_of(first), first["name"], nodes[0] if nodes else None
    )


def _contract_of(element: dict[str, Any]) -> str:
    """The contract an element lies in, or its file for what lies outside any (a pragma)."""
    while element["type"] != "contract":
        parent = element.get("type_specific_fields", {}).get("parent")
        if parent is None:
            return str(element["source_mapping"]["filename_relative"])
        element = parent
    return str(element["name"])


def entry_name(entry: dict[str, Any]) -> FindingName:
    return FindingName(
        entry["check"], entry["impact"], entry["contract"], entry["element"], entry.get("expression")
    )


def untriaged(findings: list[FindingName], entries: list[dict[str, Any]]) -> list[FindingName]:
    accepted = {entry_name(e) for e in entries}
    return [f for f in findings if f.impact in TRIAGED_IMPACTS and f not in accepted]


def stale(findings: list[FindingName], entries: list[dict[str, Any]]) -> list[FindingName]:
    found = {f for f in findings if f.impact in TRIAGED_IMPACTS}
    return [entry_name(e) for e in entries if entry_name(e) not in found]


@pytest.fixture(scope="module")
def slither(tmp_path_factory: pytest.TempPathFactory) -> SlitherRun:
    if not SLITHER.exists():
        pytest.fail(f"{SLITHER.relative_to(PROJECT_ROOT)} is missing: run `make setup-test`")
    subprocess.run(["npx", "hardhat", "compile", "--quiet"], cwd=PROJECT_ROOT, check=True, timeout=300)
    scratch = tmp_path_factory.mktemp("slither")
    # solc-select (imported by crytic-compile) keeps compilers under $VIRTUAL_ENV/.solc-select:
    # an empty one here shows whether anything fetched a compiler.
    env = os.environ | {"VIRTUAL_ENV": str(scratch), "NPM_CONFIG_UPDATE_NOTIFIER": "false"}
    command = [
        str(SLITHER),
        ".",
        "--json",
        "-",
        "--json-types",
        "detectors,compilations",
        "--fail-none",
        # No earlier triage (`slither --triage-mode`, SARIF) may hide a finding: slither-triage.json
        # is the only place a finding is accepted, with its reason.
        "--triage-database",
        str(scratch / "none.db.json"),
        "--sarif-input",
        str(scratch / "none.sarif"),
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"slither failed ({done.returncode}):\n{done.stderr[-4000:]}"
    output = json.loads(done.stdout)
    assert output["success"], output["error"]
    results = output["results"]
    detectors = results.get("detectors", [])
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(detectors, indent=1))
    return SlitherRun(detectors, results["compilations"], scratch / ".solc-select")


def test_slither_reads_hardhats_build_and_fetches_no_compiler(slither: SlitherRun) -> None:
    (compilation,) = slither.compilations
    units = list(compilation["compilation_units"].values())
    assert {u["compiler"]["version"] for u in units} == {compiler_config()["version"]}
    sources = {name for u in units for name in u["source_units"]}
    assert {"contracts/AgencyRegistry.sol", "contracts/RecordLedger.sol"} <= sources
    fetched = list((slither.solc_select_dir / "artifacts").glob("*"))
    assert fetched == [], f"a compiler was fetched: {fetched}"


def test_findings_in_dependencies_alone_are_left_out(slither: SlitherRun) -> None:
    # OpenZeppelin's own findings (Math.mulDiv's xor, its assembly) are OpenZeppelin's to answer;
    # a finding that touches contracts/ at all stays in.
    for finding in slither.detectors:
        paths = {
            e["source_mapping"]["filename_relative"] for e in finding["elements"] if "source_mapping" in e
        }
        assert any(p.startswith("contracts/") for p in paths), finding["description"]


def test_every_high_or_medium_finding_is_triaged(slither: SlitherRun) -> None:
    findings = [finding_name(f) for f in slither.detectors]
    entries = json.loads(TRIAGE.read_text())["accepted"]
    counts = Counter(f.impact for f in findings)
    accepted = Counter(e["impact"] for e in entries)
    print(
        "\nslither findings on contracts/: "
        + ", ".join(
            f"{impact} {counts[impact]}"
            + (f" ({accepted[impact]} accepted)" if impact in TRIAGED_IMPACTS else "")
            for impact in IMPACTS
        )
        + f" (full report: {REPORT.relative_to(PROJECT_ROOT)})"
    )
    missing = untriaged(findings, entries)
    described = {finding_name(f): f["description"].strip() for f in slither.detectors}
    assert not missing, (
        f"{len(missing)} high or medium slither finding(s) not in {TRIAGE.relative_to(PROJECT_ROOT)}; "
        "fix the contract, or add an entry with a true reason:\n"
        + "\n".join(f"- {name}\n  {described[name]}" for name in missing)
    )


def test_every_triage_entry_still_matches_a_finding(slither: SlitherRun) -> None:
    findings = [finding_name(f) for f in slither.detectors]
    gone = stale(findings, json.loads(TRIAGE.read_text())["accepted"])
    assert not gone, (
        f"{TRIAGE.relative_to(PROJECT_ROOT)} explains finding(s) slither no longer reports; remove them:\n"
        + "\n".join(f"- {name}" for name in gone)
    )


def test_the_checks_name_a_missing_and_a_stale_entry(slither: SlitherRun) -> None:
    # On entries made from this run's findings, so the check is tested whatever the triage holds.
    findings = [finding_name(f) for f in slither.detectors]
    entries = [
        {k: v for k, v in vars(f).items() if v is not None} | {"reason": "test"}
        for f in dict.fromkeys(findings)
        if f.impact in TRIAGED_IMPACTS
    ]
    assert entries and untriaged(findings, entries) == [] and stale(findings, entries) == []
    dropped, kept = entries[0], entries[1:]
    assert untriaged(findings, kept) == [entry_name(dropped)] * findings.count(entry_name(dropped))
    moved = dict(dropped, element="someOtherFunction")
    assert stale(findings, [*entries, moved]) == [entry_name(moved)]
    lowered = dict(dropped, impact="Low")
    assert stale(findings, [*kept, lowered]) == [entry_name(lowered)]


def test_triage_file_names_each_finding_once_with_a_reason() -> None:
    triage = json.loads(TRIAGE.read_text())
    assert set(triage) == {"//", "accepted"}
    names = []
    for entry in triage["accepted"]:
        assert REQUIRED_FIELDS <= set(entry) <= ENTRY_FIELDS, entry
        assert all(isinstance(entry[k], str) and entry[k].strip() for k in entry), entry
        assert entry["impact"] in TRIAGED_IMPACTS, entry
        assert "\n" not in entry["reason"] and len(entry["reason"].split()) >= 8, f"say why: {entry}"
        assert "#" not in json.dumps(entry), f"name the element, not a line: {entry}"
        names.append(entry_name(entry))
    assert len(names) == len(set(names)), "an entry is listed twice"


def test_contracts_hide_no_finding_inline() -> None:
    # `// slither-disable-...` would accept a finding with no reason on record.
    marked = [
        p.name for p in (PROJECT_ROOT / "contracts").glob("*.sol") if "slither-disable" in p.read_text()
    ]
    assert marked == []
