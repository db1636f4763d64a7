"""Known vulnerabilities in the pinned dependencies: `npm audit` over package-lock.json and
pip-audit over constraints.txt and constraints-slither.txt.

Usage: .venv/bin/python scripts/audit_dependencies.py     (or `make audit-deps`; not part of `make test`)

pip-audit is not a project dependency: it is installed (PIP_AUDIT below) into a throwaway
virtualenv, build/audit/venv/. It asks two advisory services, PyPI's (per release JSON) and
OSV's. A package that neither could answer for is then looked up in PyPI's project JSON, whose
`vulnerabilities` list is for the latest release only: it counts as audited when the pin is that
release, and as not audited otherwise. Each tool's own output and a summary (report.json) are
written to build/audit/; docs/dependencies.md says what this machine got.

The result never says "no known vulnerabilities" of packages no advisory data was read for: it
counts audited and not audited packages, for npm and for Python, and names the latter.
Exit status: 0 every package audited and none known vulnerable; 1 a known vulnerability;
2 some packages (or a whole ecosystem) could not be audited, and none of the rest is vulnerable.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "audit"
PIP_AUDIT = "pip-audit==2.10.1"
CONSTRAINTS = ("constraints.txt", "constraints-slither.txt")
SERVICES = ("pypi", "osv")
PYPI_PROJECT_JSON = "https://pypi.org/pypi/{name}/json"


@dataclass
class Pin:
    name: str
    version: str
    audited_by: list[str] = field(default_factory=list)
    vulnerabilities: list[str] = field(default_factory=list)
    not_audited_because: list[str] = field(default_factory=list)


@dataclass
class NpmAudit:
    npm: str
    packages_in_lock: int
    audited: int = 0
    vulnerable: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    npm = audit_npm()
    pins, runs = audit_python()
    report = {
        "date": started,
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "npm": asdict(npm),
        "pip_audit": {"version": PIP_AUDIT.split("==")[1], "runs": runs},
        "python_pins": [asdict(p) for p in pins.values()],
    }
    (OUT / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return summarize(started, npm, pins, runs)


# ---------------------------------------------------------------- npm


def audit_npm() -> NpmAudit:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    result = NpmAudit(npm=_version(["npm", "--version"]), packages_in_lock=len(lock["packages"]) - 1)
    done = subprocess.run(
        ["npm", "audit", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    (OUT / "npm-audit.json").write_text(done.stdout)
    (OUT / "npm-audit.stderr").write_text(done.stderr)
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError:
        output = {}
    metadata = output.get("metadata", {})
    if "vulnerabilities" not in metadata:
        # npm audit prints the failed request as JSON (`message`, `statusCode`), or nothing.
        result.error = (
            output.get("message") or _last_line(done.stderr) or f"npm audit exited {done.returncode}"
        )
        return result
    result.counts = {k: v for k, v in metadata["vulnerabilities"].items() if k != "total"}
    result.audited = int(metadata.get("dependencies", {}).get("total", result.packages_in_lock))
    result.vulnerable = {name: v["severity"] for name, v in output.get("vulnerabilities", {}).items()}
    return result


# ---------------------------------------------------------------- Python


def audit_python() -> tuple[dict[tuple[str, str], Pin], list[dict[str, Any]]]:
    pins: dict[tuple[str, str], Pin] = {}
    for constraints in CONSTRAINTS:
        for name, version in read_pins(ROOT / constraints):
            pins.setdefault((name, version), Pin(name, version))
    pip_audit = install_pip_audit()
    runs = []
    for constraints in CONSTRAINTS:
        for service in SERVICES:
            runs.append(run_pip_audit(pip_audit, constraints, service, pins))
    unanswered = [p for p in pins.values() if not p.audited_by]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(audit_from_project_json, unanswered))
    return pins, runs


def read_pins(path: Path) -> list[tuple[str, str]]:
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins.append((re.sub(r"[-_.]+", "-", name).lower(), version))
    return pins


def install_pip_audit() -> Path:
    env = OUT / "venv"
    binary = env / "bin" / "pip-audit"
    if not binary.exists():
        venv.create(env, with_pip=True)
        done = subprocess.run(
            [env / "bin" / "pip", "install", "--quiet", PIP_AUDIT],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            sys.exit(f"could not install {PIP_AUDIT} into {env}:\n{done.stderr}")
    return binary


def run_pip_audit(
    pip_audit: Path, constraints: str, service: str, pins: dict[tuple[str, str], Pin]
) -> dict[str, Any]:
    """One pip-audit run; marks each pin it audited, with what it found."""
    out = OUT / f"pip-audit-{service}-{Path(constraints).stem}.json"
    out.unlink(missing_ok=True)
    command = [
        str(pip_audit),
        *("-r", str(ROOT / constraints), "--no-deps", "--disable-pip", "-s", service),
        *("--format", "json", "--progress-spinner", "off", "-o", str(out)),
        *("--cache-dir", str(OUT / "cache")),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    run: dict[str, Any] = {"constraints": constraints, "service": service, "exit": done.returncode}
    if not out.exists():
        run["error"] = _last_line(done.stderr)
        return run
    dependencies = json.loads(out.read_text())["dependencies"]
    versions = dict(read_pins(ROOT / constraints))
    audited = skipped = 0
    reasons: dict[str, int] = {}
    for dep in dependencies:
        name = re.sub(r"[-_.]+", "-", dep["name"]).lower()
        pin = pins[(name, dep.get("version") or versions[name])]
        if "skip_reason" in dep:
            skipped += 1
            # "Dependency not found on PyPI and could not be audited: attrs (26.1.0)" -> the kind.
            reason = dep["skip_reason"].split(":")[0]
            reasons[reason] = reasons.get(reason, 0) + 1
            pin.not_audited_because.append(f"pip-audit -s {service}: {reason}")
        else:
            audited += 1
            pin.audited_by.append(f"pip-audit -s {service}")
            pin.vulnerabilities += [
                v["id"] for v in dep.get("vulns", []) if v["id"] not in pin.vulnerabilities
            ]
    run |= {"packages": len(dependencies), "audited": audited, "skipped": skipped, "skip_reasons": reasons}
    return run


def audit_from_project_json(pin: Pin) -> None:
    """PyPI's project JSON lists the vulnerabilities of its latest release: they are the pin's
    when the pin is that release."""
    try:
        with urllib.request.urlopen(PYPI_PROJECT_JSON.format(name=pin.name), timeout=30) as answer:
            project = json.load(answer)
        latest = project["info"]["version"]
    except (urllib.error.URLError, TimeoutError, ValueError, KeyError) as exc:
        pin.not_audited_because.append(f"PyPI project JSON: {exc}")
        return
    if not _same_version(latest, pin.version):
        pin.not_audited_because.append(
            f"PyPI project JSON: describes {latest}, the latest release, not {pin.version}"
        )
        return
    pin.audited_by.append("PyPI project JSON (latest release)")
    pin.vulnerabilities += [
        v["id"]
        for v in project.get("vulnerabilities", [])
        if not v.get("withdrawn") and v["id"] not in pin.vulnerabilities
    ]


# ---------------------------------------------------------------- summary


def summarize(
    started: str, npm: NpmAudit, pins: dict[tuple[str, str], Pin], runs: list[dict[str, Any]]
) -> int:
    print(f"Dependency audit, {started}; details in {OUT.relative_to(ROOT)}/")
    if npm.error:
        print(f"npm audit (npm {npm.npm}): NOT AUDITED, {npm.packages_in_lock} packages: {npm.error}")
    else:
        print(
            f"npm audit (npm {npm.npm}): {npm.audited} packages audited, "
            f"{len(npm.vulnerable)} vulnerable {npm.vulnerable or ''} by severity {npm.counts}"
        )
    for run in runs:
        where = f"pip-audit {PIP_AUDIT.split('==')[1]} -s {run['service']} -r {run['constraints']}"
        if "error" in run:
            print(f"{where}: failed (exit {run['exit']}): {run['error']}")
        else:
            counts = f"{run['audited']} of {run['packages']} audited, {run['skipped']} skipped"
            print(f"{where}: {counts} {run['skip_reasons']}")
    audited = [p for p in pins.values() if p.audited_by]
    unaudited = [p for p in pins.values() if not p.audited_by]
    vulnerable = [p for p in audited if p.vulnerabilities]
    by_project_json = sum(p.audited_by == ["PyPI project JSON (latest release)"] for p in audited)
    print(
        f"Python: {len(pins)} pins, {len(audited)} audited ({by_project_json} only through PyPI's "
        f"latest-release data), {len(unaudited)} NOT AUDITED"
    )
    for pin in unaudited:
        print(f"  not audited: {pin.name}=={pin.version}: {pin.not_audited_because[-1]}")
    for pin in vulnerable:
        print(f"  VULNERABLE: {pin.name}=={pin.version}: {', '.join(pin.vulnerabilities)}")
    if vulnerable or npm.vulnerable:
        print("RESULT: known vulnerabilities (above)")
        return 1
    if npm.error or unaudited:
        print(
            "RESULT: INCOMPLETE: no known vulnerability in the packages audited, but "
            + " and ".join(
                part
                for part in (
                    f"npm's {npm.packages_in_lock} packages" if npm.error else "",
                    f"{len(unaudited)} Python pins" if unaudited else "",
                )
                if part
            )
            + " could not be audited here"
        )
        return 2
    print("RESULT: no known vulnerabilities in any pinned package")
    return 0


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _version(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


if __name__ == "__main__":
    sys.exit(main())
