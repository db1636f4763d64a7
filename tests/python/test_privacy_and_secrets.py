"""No personal data on the chain, and no key or secret where it does not belong (issue 9).

One run serves every test here (a module fixture: the demo costs about 30 s, so the chain scan
and the key search share it). `sijill demo` runs as a real process, under umask 000 so that no
file or directory mode comes from a careful umask; through its APIs, with the demo's tokens, a
few dozen records of each type are created in bulk (varied Arabic and Latin names, national
IDs, parcel and contract numbers, addresses, amounts), some amended (superseded on-chain), some
revoked, some shared; the council votes a change; and one transaction that does carry personal
data is sent as a positive control. Then every block is walked and searched for every field
value of every version of every record; the logs, outputs, metrics, exports and files of the
run, and of `sijill network init` and `unlock-key`, are searched for every key and secret; and
the commands that unlock a key are given a wrong passphrase.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from demo_helpers import AGENCIES, KINDS, DemoProcess, clean_env, listening, port_base
from eth_account import Account
from hexbytes import HexBytes
from privacy_scan import (
    ChainCapture,
    SecretHit,
    capture_chain,
    integer_word,
    search_chain,
    search_secrets,
    secret_forms,
    text_forms,
)
from typer.testing import CliRunner

from cli.demo import DEMO_DISCLOSED, sijill_command
from cli.main import app
from ledger.fields import flatten
from ledger.records.examples import varied_records
from node.chain.client import RevertDecoder, connect
from node.chain.deploy import dev_accounts
from node.chain.devchain import free_port
from node.chain.toolchain import PROJECT_ROOT, CompiledContract
from node.chain.txmanager import TxManager
from node.keys import load_signer
from node.network import nodekeys
from node.network.options import PASSPHRASE_ENV

pytestmark = [pytest.mark.chain, pytest.mark.timeout(600)]

PER_TYPE = 24  # records created in bulk per type
AMENDED = 6  # of them amended once (superseded on-chain), the first two of those twice
REVOKED = 4  # of the others revoked
SHARED = 3  # shared (certificates)
NETWORK_PASSPHRASE = "network passphrase for the privacy test, long enough: ٣٤٥ ✓"
WRONG_PASSPHRASE = "not-the-passphrase-at-all-9f27c1"
CONTROL_TO = "0x000000000000000000000000000000000000dEaD"

#: Values shorter than this many UTF-8 bytes are not searched for in raw bytes. The run's chain
#: holds about 40 kB, much of it bytecode, hashes and signatures, i.e. random-looking bytes,
#: where a given n-byte string turns up by chance about len(haystack) / 256**n times: 1e-5 for
#: a 4-byte value (the forty-odd 4-byte values, in up to six encodings each, would raise a
#: false alarm in a few runs of a thousand), 4e-8 for a 5-byte one. The test computes the bound
#: for the actual haystack and needles and requires it under 1e-3. Shorter values are still
#: compared with every decoded text argument, where a chance match is impossible, and must all
#: be enum words, codes or tiny numbers (SHORT_FIELDS), never a name, an ID or an address.
MIN_BYTES = 5
#: The fields whose values may be under MIN_BYTES: governorate codes, shares, unit numbers,
#: currency and ISIC codes, legal forms, enum words, the demo title's 4-digit parcel number.
SHORT_FIELDS = re.compile(
    r"/(governorate|head_office/governorate|owners/\d+/share|unit_number|parcel_number|currency"
    r"|capital/currency|dower/currency|activities/\d+|legal_form|use|status/state)$"
)
#: Field values that equal something public on the chain by design (agency codes and names,
#: record type codes, the council's votes): a title's use "commercial" is also CRA's record type.
PUBLIC_VALUES_EXPECTED = {"commercial"}


@dataclass
class Refusal:
    """A command given a wrong passphrase: what it printed, and the files it must not touch."""

    command: list[str]
    returncode: int
    output: str
    key_file: Path
    before: dict[str, tuple[int, int]]
    after: dict[str, tuple[int, int]]
    must_not_exist: Path | None = None
    port: int | None = None


@dataclass
class DemoRun:
    root: Path
    data_dir: Path
    network: Path
    unlocked_key: Path
    deployment: dict[str, Any]
    needles: dict[str, set[str]]  # field value -> where it comes from
    control: dict[str, str]  # the positive control transaction: hash, national ID, name
    chain: ChainCapture
    amendments: int
    revocations: int
    artifacts: dict[str, bytes] = field(default_factory=dict)
    secrets: dict[str, bytes | str] = field(default_factory=dict)
    allowed: dict[str, set[str]] = field(default_factory=dict)
    secret_files: set[Path] = field(default_factory=set)
    refusals: dict[str, Refusal] = field(default_factory=dict)


# -------------------------------------------------------------------------------- the run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, compiled: dict[str, CompiledContract]) -> DemoRun:
    root = tmp_path_factory.mktemp("privacy")
    data_dir = root / "demo"
    chain_port, api_base = free_port(), port_base()
    urls = {code: f"http://127.0.0.1:{api_base + i}" for i, code in enumerate(AGENCIES)}
    demo = DemoProcess(data_dir, chain_port, api_base, umask=0)
    outputs: dict[str, str] = {}
    try:
        demo.wait_for_summary()
        rpc = f"http://127.0.0.1:{chain_port}"
        deployment = json.loads((data_dir / "chain" / "deployment.json").read_text())
        officers = json.loads((data_dir / "officers.json").read_text())["agencies"]
        clients = {
            (code, role): httpx.Client(
                base_url=urls[code],
                headers={"Authorization": f"Bearer {officers[code][role]['token']}"},
                timeout=60,
            )
            for code in AGENCIES
            for role in ("officer", "supervisor", "auditor")
        }
        versions, submitted, shares = _widen(data_dir, clients)
        amendments = sum(v - 1 for v in versions.values())
        revocations = REVOKED * len(AGENCIES)
        w3 = connect(rpc)
        ledger = w3.eth.contract(
            address=deployment["contracts"]["RecordLedger"]["address"], abi=compiled["RecordLedger"].abi
        )
        _wait_on_chain(ledger, amendments, revocations)
        needles = _needles(clients, versions, submitted)
        outputs |= _council(data_dir, rpc)
        control = _control_transaction(w3, compiled, needles)
        artifacts = _live_artifacts(root, urls, clients, officers, data_dir)
        chain = capture_chain(w3, deployment, compiled)
        for client in clients.values():
            client.close()
        status = demo.interrupt()
    except BaseException:
        demo.stop()
        raise
    assert status == 0, demo.output
    outputs["sijill demo"] = demo.output
    result = DemoRun(
        root=root,
        data_dir=data_dir,
        network=root / "besu [dev]",
        unlocked_key=root / "run" / "besu" / "key",
        deployment=deployment,
        needles=needles,
        control=control,
        chain=chain,
        amendments=amendments,
        revocations=revocations,
        artifacts=artifacts,
    )
    outputs |= _after_the_demo(result)
    _refusals(result, chain_port, outputs)
    for name, text in outputs.items():
        result.artifacts[f"output: {name}"] = text.encode()
    _files(result)
    _secrets(result, officers, shares)
    return result


def _widen(
    data_dir: Path, clients: dict[tuple[str, str], httpx.Client]
) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str, str, int], dict[str, Any]], list[str]]:
    """Bulk-create, amend, revoke and share through the APIs; wait until every version is anchored.

    Returns the latest version of every record (agency, type, id), what was submitted for each
    version, and the share tokens made."""
    versions: dict[tuple[str, str, str], int] = {}
    submitted: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for record in json.loads((data_dir / "demo-records.json").read_text())["records"]:
        versions[(record["agency"], record["recordType"], record["recordId"])] = record["version"]
    created: dict[str, list[str]] = {}
    for seed, code in enumerate(AGENCIES):
        kind = KINDS[code]
        records = varied_records(kind, PER_TYPE, seed=seed)
        body = "\n".join(json.dumps({"recordType": kind, "record": r}, ensure_ascii=False) for r in records)
        answer = clients[(code, "officer")].post(
            "/v1/records/bulk", content=body.encode(), headers={"Content-Type": "application/x-ndjson"}
        )
        assert answer.status_code == 200, answer.text
        lines = [json.loads(line) for line in answer.text.splitlines()]
        accepted = [line for line in lines if line.get("status") == "accepted"]
        assert len(accepted) == PER_TYPE, lines[:3]
        created[code] = [line["recordId"] for line in accepted]
        for line, record in zip(accepted, records, strict=True):
            versions[(code, kind, line["recordId"])] = 1
            submitted[(code, kind, line["recordId"], 1)] = record
    for seed, code in enumerate(AGENCIES, start=10):
        kind, ids = KINDS[code], created[code]
        supervisor = clients[(code, "supervisor")]
        amended = varied_records(kind, AMENDED + 2, seed=seed)
        for i, record_id in enumerate([*ids[:AMENDED], *ids[:2]]):
            version = versions[(code, kind, record_id)]
            answer = supervisor.post(
                f"/v1/records/{kind}/{record_id}/versions",
                json={"amends": version, "reason": 1 + i % 6, "record": amended[i]},
            )
            assert answer.status_code == 201, answer.text
            versions[(code, kind, record_id)] = version + 1
            submitted[(code, kind, record_id, version + 1)] = amended[i]
        for record_id in ids[AMENDED : AMENDED + REVOKED]:
            answer = supervisor.post(
                f"/v1/records/{kind}/{record_id}/revocation", json={"version": 1, "reason": 2}
            )
            assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 90
    pending = {
        (code, kind, rid, v) for (code, kind, rid), last in versions.items() for v in range(1, last + 1)
    }
    while pending and time.monotonic() < deadline:
        for code, kind, rid, version in sorted(pending):
            answer = clients[(code, "officer")].get(
                f"/v1/records/{kind}/{rid}/bundle", params={"version": version}
            )
            if answer.status_code == 200:
                pending.discard((code, kind, rid, version))
            elif answer.status_code == 429:
                break
            else:
                assert answer.status_code == 202, answer.text
        time.sleep(0.5)
    assert not pending, f"not anchored within 90 s: {sorted(pending)[:5]}"
    shares = []
    for code in AGENCIES:
        kind = KINDS[code]
        for record_id in created[code][AMENDED + REVOKED : AMENDED + REVOKED + SHARED]:
            answer = clients[(code, "officer")].post(
                f"/v1/records/{kind}/{record_id}/shares", json={"fields": DEMO_DISCLOSED[kind]}
            )
            assert answer.status_code == 201, answer.text
            shares.append(answer.json()["token"])
    return versions, submitted, shares


def _wait_on_chain(ledger: Any, amendments: int, revocations: int) -> None:
    """Until the chain holds a LeafSuperseded event per amendment and a LeafRevoked per revocation."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        superseded = len(ledger.events.LeafSuperseded.get_logs(from_block=0))
        revoked = len(ledger.events.LeafRevoked.get_logs(from_block=0))
        if superseded >= amendments and revoked >= revocations:
            assert (superseded, revoked) == (amendments, revocations)
            return
        time.sleep(0.5)
    raise AssertionError(
        f"on-chain after 90 s: {superseded}/{amendments} superseded, {revoked}/{revocations} revoked"
    )


def _needles(
    clients: dict[tuple[str, str], httpx.Client],
    versions: dict[tuple[str, str, str], int],
    submitted: dict[tuple[str, str, str, int], dict[str, Any]],
) -> dict[str, set[str]]:
    """Every field value of every version of every record, as stored (read back through the API)
    and as submitted, with where each comes from."""
    needles: dict[str, set[str]] = {}

    def add(record: dict[str, Any], source: str) -> None:
        for path, value in flatten(record).items():
            if isinstance(value, str):
                needles.setdefault(value, set()).add(f"{source} {path}")

    for (code, kind, rid), last in versions.items():
        for version in range(1, last + 1):
            answer = clients[(code, "officer")].get(f"/v1/records/{kind}/{rid}", params={"version": version})
            assert answer.status_code == 200, answer.text
            add(answer.json()["record"], f"{code} {kind}/{rid} v{version}")
            if (code, kind, rid, version) in submitted:
                add(submitted[(code, kind, rid, version)], f"{code} {kind}/{rid} v{version} (as submitted)")
    return needles


def _sijill(*args: str, env: dict[str, str] | None = None) -> str:
    """A `sijill` command that must succeed, run in this process (the same code without the 2 s
    a process takes to start here) under umask 000; its output."""
    umask = os.umask(0)
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        os.umask(umask)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def _sijill_processes(
    commands: dict[str, list[str]], env: dict[str, str]
) -> dict[str, subprocess.CompletedProcess[str]]:
    """`sijill` commands as real processes side by side (umask 000, no SIJILL_ variable of this
    shell): what an operator sees, exit status and all."""
    started = {
        name: subprocess.Popen(
            sijill_command(*args),
            cwd=PROJECT_ROOT,
            env={**clean_env(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            umask=0,
        )
        for name, args in commands.items()
    }
    done = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done


def _council(data_dir: Path, rpc: str) -> dict[str, str]:
    """A council vote once the nodes are idle (their signers vote): REPD proposes that CRA may
    anchor `branch` records, CSO approves, which executes it."""
    chain = ("--rpc", rpc, "--deployment", str(data_dir / "chain" / "deployment.json"))

    def key(code: str) -> tuple[str, ...]:
        node = data_dir / code.lower()
        return ("--keystore", str(node / "signer.json"), "--passphrase-file", str(node / "dev-passphrase"))

    proposed = _sijill("agency", "propose", "allow-record-type", "CRA", "branch", *chain, *key("REPD"))
    match = re.search(r"Proposal #(\d+)", proposed)
    assert match, proposed
    approved = _sijill("agency", "approve", match.group(1), *chain, *key("CSO"))
    assert "Executed" in approved, approved
    return {"sijill agency propose": proposed, "sijill agency approve": approved}


def _control_transaction(
    w3: Any, compiled: dict[str, CompiledContract], needles: dict[str, set[str]]
) -> dict[str, str]:
    """The positive control: a transaction on the same chain whose calldata does carry a
    record's national ID (ASCII) and an Arabic name (UTF-16-LE). The scan must find both."""
    national_id = next(
        v for v, s in sorted(needles.items()) if any(p.endswith("/national_id") for p in s) and v.isascii()
    )
    name = next(
        v
        for v, s in sorted(needles.items())
        if any(p.endswith("/name") for p in s) and not v.isascii() and len(v) > 8
    )
    payload = b"control:" + national_id.encode() + b"|" + name.encode("utf-16-le")
    sender = TxManager(w3, dev_accounts(6)[5], RevertDecoder({n: c.abi for n, c in compiled.items()}))
    receipt = sender.wait(sender.send({"to": CONTROL_TO, "data": HexBytes(payload)}, label="privacy control"))
    assert receipt["status"] == 1
    return {"hash": receipt["transactionHash"].to_0x_hex(), "national_id": national_id, "name": name}


def _live_artifacts(
    root: Path,
    urls: dict[str, str],
    clients: dict[tuple[str, str], httpx.Client],
    officers: dict[str, Any],
    data_dir: Path,
) -> dict[str, bytes]:
    """What the running nodes show: /metrics, /healthz, /readyz, the audit trail, error answers,
    and `sijill export` through each API."""
    artifacts: dict[str, bytes] = {}
    for code, url in urls.items():
        for path in ("/metrics", "/healthz", "/readyz"):
            answer = httpx.get(url + path, timeout=10)
            assert answer.status_code == 200, answer.text
            artifacts[f"{code} {path}"] = answer.content
        trail, after = [], 0
        while after is not None:
            answer = clients[(code, "auditor")].get("/v1/audit", params={"after": after, "limit": 1000})
            assert answer.status_code == 200, answer.text
            trail.append(answer.content)
            after = answer.json()["next"]
        artifacts[f"{code} /v1/audit"] = b"\n".join(trail)
        officer, kind = clients[(code, "officer")], KINDS[code]
        errors = [
            officer.post("/v1/records", json={"recordType": kind, "record": {"title_number": 7}}),
            officer.post("/v1/records", json={"recordType": "nonsense", "record": {}}),
            officer.get(f"/v1/records/{kind}/01NOSUCHRECORD0000000000000"),
            httpx.get(url + f"/v1/records/{kind}/x", headers={"Authorization": "Bearer wrong"}, timeout=10),
            clients[(code, "auditor")].get(f"/v1/records/{kind}/x"),
            httpx.get(url + "/v1/shared/NOSUCHSHARE", timeout=10),
        ]
        assert all(400 <= e.status_code < 500 for e in errors), [e.status_code for e in errors]
        artifacts[f"{code} API error answers"] = b"\n".join(e.content for e in errors)
    for code in AGENCIES:
        artifacts[f"output: sijill export --api {code}"] = _sijill(
            "export",
            *("--api", urls[code], "--token", officers[code]["auditor"]["token"]),
            *("--deployment", str(data_dir / "chain" / "deployment.json")),
            *("--out", str(root / f"export-api-{code}")),
        ).encode()
    return artifacts


def _after_the_demo(result: DemoRun) -> dict[str, str]:
    """Exports from the stopped stores, the officer lists, `sijill network init` (scrypt's work
    lowered as test_besu_network does) into a directory whose name has brackets, `unlock-key`."""
    deployment = str(result.data_dir / "chain" / "deployment.json")
    outputs = {}
    for code in AGENCIES:
        node = str(result.data_dir / code.lower())
        out = str(result.root / f"export-store-{code}")
        outputs[f"sijill export --data-dir {code}"] = _sijill(
            "export", "--data-dir", node, "--deployment", deployment, "--out", out
        )
        outputs[f"sijill officer list {code}"] = _sijill("officer", "list", "--data-dir", node)
    # The demo's agencies, with signers of their own: init refuses anvil's published keys.
    founding = [{**a, "signers": [Account.create().address]} for a in result.deployment["agencies"]]
    agencies = result.root / "agencies.json"
    agencies.write_text(json.dumps({"threshold": result.deployment["threshold"], "agencies": founding}))
    passphrase = {PASSPHRASE_ENV: NETWORK_PASSPHRASE}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nodekeys, "KEYSTORE_KDF_ITERATIONS", 2**12)
        outputs["sijill network init"] = _sijill(
            *(
                "network",
                "init",
                "--validators",
                "4",
                "--agencies",
                str(agencies),
                "--out",
                str(result.network),
            ),
            env=passphrase,
        )
    outputs["sijill network unlock-key"] = _sijill(
        "network",
        "unlock-key",
        str(result.network / "validator-1"),
        "--out",
        str(result.unlocked_key),
        env=passphrase,
    )
    return outputs


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.rglob("*")
    }


def _refusals(result: DemoRun, chain_port: int, outputs: dict[str, str]) -> None:
    """Each command that unlocks a key, given a wrong passphrase (the demo and its chain are stopped)."""
    wrong = result.root / "wrong-passphrase"
    wrong.write_text(WRONG_PASSPHRASE + "\n")
    wrong.chmod(0o600)
    rpc = f"http://127.0.0.1:{chain_port}"
    deployment = str(result.data_dir / "chain" / "deployment.json")
    repd, cso, network = result.data_dir / "repd", result.data_dir / "cso", result.network
    port = free_port()
    node = ["--agency", "REPD", "--rpc", rpc, "--deployment", deployment, "--passphrase-file", str(wrong)]
    cases: dict[str, tuple[list[str], Path, Path, Path | None]] = {
        "serve": (
            ["serve", "--data-dir", str(repd), *node, "--port", str(port)],
            repd / "signer.json",
            repd,
            None,
        ),
        "node run": (
            ["node", "run", "--data-dir", str(cso), *node[2:], "--agency", "CSO"],
            cso / "signer.json",
            cso,
            None,
        ),
        "deploy": (
            [
                "deploy",
                *("--rpc", rpc, "--agencies", str(result.root / "agencies.json")),
                *("--deployer-key-file", str(network / "deployer" / "key.json")),
                *("--out", str(result.root / "refused" / "deployment.json")),
            ],
            network / "deployer" / "key.json",
            network,
            result.root / "refused",
        ),
        "network unlock-key": (
            [
                "network",
                "unlock-key",
                str(network / "validator-2"),
                "--out",
                str(result.root / "refused" / "key"),
            ],
            network / "validator-2" / "key.json",
            network,
            result.root / "refused",
        ),
    }
    before = {name: _snapshot(case[2]) for name, case in cases.items()}
    done = _sijill_processes(
        {name: case[0] for name, case in cases.items()},
        env={"SIJILL_DEPLOYER_PASSPHRASE": WRONG_PASSPHRASE, PASSPHRASE_ENV: WRONG_PASSPHRASE},
    )
    for name, (args, key_file, directory, must_not_exist) in cases.items():
        output = done[name].stdout + done[name].stderr
        outputs[f"sijill {name} (wrong passphrase)"] = output
        result.refusals[name] = Refusal(
            args,
            done[name].returncode,
            output,
            key_file,
            before[name],
            _snapshot(directory),
            must_not_exist,
            port if name == "serve" else None,
        )


def _files(result: DemoRun) -> None:
    """Every file the run left (demo directory, exports, network, unlocked key), as artifacts."""
    for directory in (
        result.data_dir,
        result.network,
        result.unlocked_key.parent,
        *result.root.glob("export-*"),
    ):
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                result.artifacts[str(path.relative_to(result.root))] = path.read_bytes()


def _secrets(result: DemoRun, officers: dict[str, Any], shares: list[str]) -> None:
    """Every key and secret of the run, and where each may be by design."""

    def name(path: Path) -> str:  # of the file's artifact
        return str(path.relative_to(result.root))

    for i, account in enumerate(dev_accounts(10)):
        result.secrets[
            f"dev account {i} key (anvil; {'deployer' if i == 0 else 'signer' if i < 4 else 'spare'})"
        ] = bytes(account.key)
    for directory in [*sorted(result.network.glob("validator-*")), result.network / "deployer"]:
        keystore = directory / "key.json"
        result.secrets[f"Besu key {directory.name}"] = bytes(
            load_signer(keystore, passphrase=NETWORK_PASSPHRASE).key
        )
        result.secret_files.add(keystore)
    result.allowed["Besu key validator-1"] = {name(result.unlocked_key)}
    result.secret_files.add(result.unlocked_key)
    result.secrets["network passphrase"] = NETWORK_PASSPHRASE
    result.secrets["the wrong passphrase given"] = WRONG_PASSPHRASE
    for code in AGENCIES:
        node = result.data_dir / code.lower()
        result.secrets[f"{code} KEK"] = bytes.fromhex((node / "dev-kek").read_text())
        result.secrets[f"{code} signer passphrase"] = (node / "dev-passphrase").read_text()
        result.allowed[f"{code} KEK"] = {name(node / "dev-kek")}
        result.allowed[f"{code} signer passphrase"] = {name(node / "dev-passphrase")}
        result.secret_files |= {node / "signer.json", node / "dev-kek", node / "dev-passphrase"}
        for role, entry in officers[code].items():
            # Printed by the demo and kept in officers.json by design; nowhere else.
            result.secrets[f"{code} {role} token"] = entry["token"]
            result.allowed[f"{code} {role} token"] = {
                "output: sijill demo",
                name(result.data_dir / "officers.json"),
            }
    demo_records = json.loads((result.data_dir / "demo-records.json").read_text())["records"]
    for record in demo_records:
        token = record["certificate"]["token"]
        result.secrets[f"demo share {token[:6]}"] = token
        result.allowed[f"demo share {token[:6]}"] = {
            "output: sijill demo",
            name(result.data_dir / "demo-records.json"),
        }
    for token in shares:
        result.secrets[f"share {token[:6]}"] = token
    result.secret_files |= {result.data_dir / "officers.json", result.data_dir / "demo-records.json"}


# -------------------------------------------------------------------------------- the tests


def test_no_personal_data_on_chain(run: DemoRun) -> None:
    """Every field value of every version of every record, in every encoding, nowhere in any
    transaction or event from block 0 to the head; the positive control is found."""
    chain = run.chain
    calls = [name for _, name in chain.calls]
    for call in (
        "new AgencyRegistry",
        "new RecordLedger",
        "anchor",
        "revoke",
        "supersede",
        "propose",
        "approve",
    ):
        assert call in calls, (call, sorted(set(calls)))
    assert [where for where, name in chain.calls if name == "unknown"] == [
        where for where, _ in chain.calls if run.control["hash"] in where
    ]
    events = [name for _, name in chain.events]
    assert events.count("LeafSuperseded") == run.amendments and events.count("LeafRevoked") == run.revocations
    assert {
        "BatchAnchored",
        "AgencyAdded",
        "ProposalCreated",
        "ProposalExecuted",
        "RecordTypeAllowed",
    } <= set(events)

    public = _public_values(run.deployment) | {"branch"}
    exempt = {value for value in run.needles if value in public}
    assert exempt == PUBLIC_VALUES_EXPECTED, exempt  # said here, not skipped silently
    needles = {v: s for v, s in run.needles.items() if v not in exempt}
    short = {v: s for v, s in needles.items() if len(v.encode()) < MIN_BYTES}
    not_short = [
        f"{v!r} at {p}" for v, s in short.items() for p in s if not SHORT_FIELDS.search(p.split(" ")[-1])
    ]
    assert not not_short, not_short  # never a name, a national ID or an address
    # The chance of a false hit, treating every byte on the chain as random: far below one.
    haystack = chain.raw_bytes
    expected_false_hits = sum(
        haystack / 256 ** len(value.encode())
        for value in needles
        if value not in short
        for _ in [*text_forms(value), *([1] if integer_word(value, MIN_BYTES) else [])]
    )
    assert expected_false_hits < 1e-3, (haystack, expected_false_hits)

    hits = search_chain(chain, needles, MIN_BYTES)
    control = [h for h in hits if run.control["hash"] in h.where]
    assert {(h.value, h.form.split(" ")[0]) for h in control} >= {
        (run.control["national_id"], "utf-8"),
        (run.control["name"], "utf-16-le"),
    }, control
    leaked = [str(h) for h in hits if run.control["hash"] not in h.where]
    assert not leaked, "\n".join(leaked[:20])
    print(
        f"chain: blocks 0-{chain.head}, {chain.transactions} transactions, {chain.logs} logs, "
        f"{haystack} bytes, {len(chain.decoded)} decoded arguments; {len(needles)} distinct values "
        f"({sum(len(s) for s in needles.values())} field occurrences), {len(short)} under {MIN_BYTES} bytes: "
        f"{sorted(short)}; {len(exempt)} public: {sorted(exempt)}; "
        f"expected chance hits {expected_false_hits:.1e}"
    )


def _public_values(deployment: dict[str, Any]) -> set[str]:
    """What is on the chain by design: agency codes and names, record type codes."""
    public = set()
    for agency in deployment["agencies"]:
        public |= {agency["code"], agency["name"], *agency["recordTypes"]}
        public |= {part.strip() for part in agency["name"].split("/")}
    return public


def test_the_chain_scan_sees_every_encoding() -> None:
    """The forms searched: the NFD of an Arabic name with hamza differs from its NFC, and a
    national ID is also a 32-byte word; a tiny number is not (it would match counts)."""
    forms = text_forms("أحمد")
    assert len(forms) == 6 and forms["utf-8 NFD"] == "احمد".encode()[:2] + "\u0654".encode() + "حمد".encode()
    assert integer_word("27503221204139", MIN_BYTES) == (27503221204139).to_bytes(32, "big")
    assert integer_word("1843", MIN_BYTES) is None and integer_word("12.5", MIN_BYTES) is None


def test_no_key_or_secret_in_logs_outputs_metrics_or_exports(run: DemoRun) -> None:
    """Every signer, deployer and Besu key, KEK, passphrase and token: in none of the logs,
    outputs, error answers, metrics, health answers, audit trail, exports or files of the run
    (except where each is by design), in hex of either case, with or without 0x, or base64."""
    logs = ["demo/repd/serve.log", "demo/cso/serve.log", "demo/cra/serve.log", "demo/chain/anvil.log"]
    assert all(run.artifacts[log] for log in logs) and len(run.artifacts) > 100, sorted(run.artifacts)
    hits = search_secrets(run.artifacts, run.secrets, run.allowed)
    assert not hits, "\n".join(map(str, hits[:20]))

    # Positive control: the same search finds a key planted in a log, in a form no log uses.
    signer = bytes(dev_accounts(2)[1].key)
    kek = run.secrets["REPD KEK"]
    assert isinstance(kek, bytes)
    planted = {
        **run.artifacts,
        "planted base64": run.artifacts["demo/repd/serve.log"]
        + b"\nINFO debug: "
        + secret_forms(b"k" + signer)["base64 (offset 0)"]
        + b"\n",
        "planted HEX": b"kek=0X" + kek.hex().upper().encode(),
    }
    found = search_secrets(planted, run.secrets, run.allowed)
    assert found == [
        SecretHit("planted base64", "dev account 1 key (anvil; signer)", "base64 (offset 1)"),
        SecretHit("planted HEX", "REPD KEK", "HEX"),
    ], found


def test_files_holding_secrets_are_0600_in_directories_others_cannot_write(run: DemoRun) -> None:
    """Keystores (nodes, validators, deployer), the unlocked key, the KEKs, the passphrases,
    officers.json and demo-records.json: mode 0600, their directory not world-writable, though
    everything ran under umask 000. And no other file holds a secret."""
    holding = set()
    for artifact, content in run.artifacts.items():
        if artifact.startswith("output: "):
            continue
        if search_secrets({artifact: content}, run.secrets):
            holding.add(run.root / artifact)
    assert holding <= run.secret_files, sorted(map(str, holding - run.secret_files))
    loose = [
        f"{path}: mode {path.stat().st_mode & 0o777:04o}, directory {path.parent.stat().st_mode & 0o777:04o}"
        for path in sorted(run.secret_files)
        if path.stat().st_mode & 0o777 != 0o600 or path.parent.stat().st_mode & 0o002
    ]
    assert not loose, "\n".join(loose)


@pytest.mark.parametrize("command", ["serve", "node run", "deploy", "network unlock-key"])
def test_a_wrong_passphrase_fails_cleanly(run: DemoRun, command: str) -> None:
    """Exit status 1, one line naming the key file and saying the passphrase is wrong, no
    traceback, no secret; nothing started, nothing written."""
    refusal = run.refusals[command]
    lines = refusal.output.strip().splitlines()
    assert refusal.returncode == 1 and len(lines) == 1, refusal.output
    assert lines[0].startswith("error: ") and str(refusal.key_file) in lines[0], lines[0]
    assert "wrong passphrase" in lines[0] and "Traceback" not in refusal.output
    assert not search_secrets({"output": refusal.output.encode()}, run.secrets)
    assert refusal.after == refusal.before
    if refusal.must_not_exist is not None:
        assert not refusal.must_not_exist.exists()
    if refusal.port is not None:
        assert not listening(refusal.port)
