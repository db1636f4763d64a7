"""The agencies file as `sijill network init` reads it (docs/deployment.md).

Checked here for everything `sijill deploy` would reject later on a running chain (codes,
duplicate agencies or signers, the council threshold, anvil's public development accounts),
so a network is never generated for agencies that cannot be deployed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.codes import agency_code, record_type
from ledger.errors import InvalidCode
from node.errors import DeploymentError
from node.network.options import NetworkConfigError


@dataclass(frozen=True, slots=True)
class AgencyEntry:
    code: str
    name: str
    signers: tuple[str, ...]
    record_types: tuple[str, ...]
    council: bool


@dataclass(frozen=True, slots=True)
class AgenciesFile:
    """The agencies file as `sijill deploy --agencies` reads it, checked for what deploy would
    reject later on a running chain."""

    document: dict[str, Any]
    agencies: tuple[AgencyEntry, ...]
    threshold: int

    @property
    def signers(self) -> list[str]:
        return [s for a in self.agencies for s in a.signers]


def load_agencies_file(path: Path) -> AgenciesFile:
    """Read and check an agencies file (docs/deployment.md); `NetworkConfigError` on any fault."""
    from node.chain.deploy import dev_accounts, load_network_spec

    try:
        spec = load_network_spec(path)
    except DeploymentError as exc:
        message = str(exc)
        raise NetworkConfigError(
            message if message.startswith("cannot read") else f"the agencies file {path}: {message}"
        ) from None
    document: dict[str, Any] = json.loads(path.read_text())
    where = f"the agencies file {path}"
    if not spec.agencies:
        raise NetworkConfigError(f"{where} names no agency")
    seen_codes: set[str] = set()
    owner: dict[str, str] = {}
    for agency in spec.agencies:
        try:
            agency_code(agency.code)
            for kind in agency.record_types:
                record_type(kind)
        except InvalidCode as exc:
            raise NetworkConfigError(f"{where}: {exc}") from None
        if agency.code in seen_codes:
            raise NetworkConfigError(f"{where} lists agency {agency.code} twice")
        seen_codes.add(agency.code)
        if not agency.signers:
            raise NetworkConfigError(f"{where}: agency {agency.code} has no signer")
        for signer in agency.signers:
            if signer in owner:
                raise NetworkConfigError(
                    f"{where}: signer {signer} is listed for {owner[signer]} and {agency.code} "
                    "(an account signs for one agency)"
                )
            owner[signer] = agency.code
    council = sum(1 for a in spec.agencies if a.council)
    if not 1 <= spec.threshold <= council:
        raise NetworkConfigError(
            f"{where}: threshold {spec.threshold} must be between 1 and the {council} council agencies"
        )
    public = sorted(set(owner) & {a.address for a in dev_accounts(10)})
    if public:
        raise NetworkConfigError(
            f"{where} names anvil's public development accounts ({', '.join(public)}): "
            "their keys are published; give each agency a signer of its own (`sijill node init`)"
        )
    agencies = tuple(AgencyEntry(a.code, a.name, a.signers, a.record_types, a.council) for a in spec.agencies)
    return AgenciesFile(document, agencies, spec.threshold)
