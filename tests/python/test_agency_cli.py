"""`sijill agency`: council governance on a fresh deployment of each test's own (REPD, CSO and
CRA on the council with anvil's dev accounts 4, 5 and 6 as signers, 2 of 3; MOJ without a seat),
run in-process through typer's CliRunner and as the real program: reading the registry,
proposals executed once the threshold is reached, rotation, the threshold and stale proposals,
and every refusal as one line with its exit status (1: the registry said no; 2: bad usage)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner
from web3 import Web3

from cli.main import app
from node.chain.deploy import AgencySpec, NetworkSpec, deploy_network, dev_accounts
from node.chain.devchain import DevChain, DevChainConfig, free_port
from node.chain.toolchain import CompiledContract
from node.keys import create_keystore

pytestmark = pytest.mark.chain

SIJILL = str(Path(sys.executable).with_name("sijill"))
PASSPHRASE = "a passphrase for agency CLI tests only"
runner = CliRunner()


@dataclass
class Net:
    """A deployment of the test's own, the key file of each agency's signer, and runners."""

    rpc: str
    deployment: Path
    keys: dict[str, Path]
    addresses: dict[str, str]
    root: Path

    def args(self, args: tuple[str, ...], key: str | None) -> list[str]:
        extra = ["--rpc", self.rpc, "--deployment", str(self.deployment)]
        if key is not None:
            extra += ["--key-file", str(self.keys[key])] if key in self.keys else ["--key-file", key]
        return ["agency", *args, *extra]

    def run(self, *args: str, key: str | None = None, env: dict[str, str] | None = None) -> Any:
        """In-process, through CliRunner."""
        return runner.invoke(app, self.args(args, key), env=env)

    def json(self, *args: str, key: str | None = None) -> Any:
        result = self.run(*args, "--json", key=key)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def sijill(self, *args: str, key: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        """The real program, in a process of its own."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
        return subprocess.run(
            [SIJILL, *self.args(args, key)],
            env={**clean, **env},
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def key_file(self, name: str, key: bytes) -> Path:
        path = self.root / name
        path.write_text(key.hex())
        path.chmod(0o600)
        return path


@pytest.fixture
def net(
    devchain: DevChain,
    w3: Web3,
    compiled: dict[str, CompiledContract],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Net:
    for name in list(os.environ):
        if name.startswith("SIJILL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    dev = dev_accounts(7)
    moj = secrets.token_bytes(32)
    council = {"REPD": dev[4], "CSO": dev[5], "CRA": dev[6]}
    kinds = {"REPD": "title", "CSO": "marriage", "CRA": "commercial"}
    spec = NetworkSpec(
        (
            *(
                AgencySpec(code, f"{code} test agency", (a.address,), (kinds[code],))
                for code, a in council.items()
            ),
            AgencySpec(
                "MOJ", "Ministry of Justice", (Account.from_key(moj).address,), ("court-order",), False
            ),
        ),
        threshold=2,
    )
    deployment = tmp_path / "deployment.json"
    deploy_network(w3, dev[0], spec, deployment, compiled=compiled)
    result = Net(devchain.rpc_url, deployment, {}, {}, tmp_path)
    for code, account in council.items():
        result.keys[code] = result.key_file(f"{code.lower()}.key", bytes(account.key))
        result.addresses[code] = account.address
    result.keys["MOJ"] = result.key_file("moj.key", moj)
    result.addresses["MOJ"] = Account.from_key(moj).address
    return result


def _refused(result: Any, status: int, *needles: str) -> str:
    """One line on stderr, no traceback, the exit status; works for CliRunner and subprocess."""
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code == status, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def _agency(listing: dict[str, Any], code: str) -> dict[str, Any]:
    return next(a for a in listing["agencies"] if a["code"] == code)


def test_list_and_show(net: Net) -> None:
    listing = net.json("list")
    assert listing["council"] == ["REPD", "CSO", "CRA"] and listing["threshold"] == 2
    assert [a["code"] for a in listing["agencies"]] == ["REPD", "CSO", "CRA", "MOJ"]
    repd = _agency(listing, "REPD")
    assert repd["status"] == "active" and repd["council"] and repd["recordTypes"] == ["title"]
    assert [s["address"] for s in repd["signers"]] == [net.addresses["REPD"]]
    assert repd["signers"][0]["validTo"] is None and repd["signers"][0]["validFrom"] > 0
    assert not _agency(listing, "MOJ")["council"]

    text = net.sijill("list")
    assert text.returncode == 0, text.stderr
    assert "Council: REPD, CSO, CRA; 2 of 3 approvals needed" in text.stdout
    assert f"signer {net.addresses['CSO']}" in text.stdout and "no council seat" in text.stdout

    shown = net.json("show", "CRA")
    assert shown["head"] == {"seq": 0, "root": "0x" + "00" * 32} and shown["openProposals"] == []
    text = net.sijill("show", "MOJ")
    assert text.returncode == 0 and "ledger head: no batch anchored yet" in text.stdout
    assert "court-order" in text.stdout
    assert net.json("proposals")["items"] == []


def test_a_proposal_by_one_member_executes_when_a_second_approves(net: Net) -> None:
    signer = Account.create().address
    args = ("add-agency", "NTA", "--name", "Notary Authority", "--signer", signer, "--record-type", "deed")
    proposed = net.json("propose", *args, key="REPD")
    assert proposed["state"] == "open" and proposed["approvals"] == 1 and proposed["approvedBy"] == ["REPD"]
    assert proposed["changes"] == [] and proposed["by"] == "REPD"
    assert "NTA" not in [a["code"] for a in net.json("list")["agencies"]]
    assert [p["id"] for p in net.json("proposals", "--open")["items"]] == [proposed["id"]]

    approved = net.sijill("approve", str(proposed["id"]), key="CSO")
    assert approved.returncode == 0, approved.stderr
    assert "Executed. What changed:" in approved.stdout
    assert "agency NTA added: Notary Authority" in approved.stdout
    assert (
        f"{signer} signs for NTA from block" in approved.stdout
        and "NTA may now anchor deed" in approved.stdout
    )

    nta = _agency(net.json("list"), "NTA")
    assert nta["status"] == "active" and not nta["council"] and nta["recordTypes"] == ["deed"]
    assert [s["address"] for s in nta["signers"]] == [signer]
    (item,) = net.json("proposals")["items"]
    assert item["state"] == "executed" and item["approvedBy"] == ["REPD", "CSO"]
    assert net.json("proposals", "--open")["items"] == []


def test_suspend_and_reinstate_a_council_member(net: Net) -> None:
    epoch = net.json("list")["councilEpoch"]
    proposed = net.json("propose", "suspend-agency", "CRA", key="REPD")
    done = net.run("approve", str(proposed["id"]), key="CSO")
    assert done.exit_code == 0, done.output
    assert "CRA is now suspended" in done.stdout and f"epoch {epoch + 1}" in done.stdout
    listing = net.json("list")
    assert _agency(listing, "CRA")["status"] == "suspended" and listing["council"] == ["REPD", "CSO"]
    # A suspended agency's signer cannot vote.
    _refused(
        net.run("propose", "reinstate-agency", "CRA", key="CRA"), 1, "CRA is not active (it is suspended)"
    )

    proposed = net.json("propose", "reinstate-agency", "CRA", key="CSO")
    assert proposed["state"] == "open"
    approved = net.json("approve", str(proposed["id"]), key="REPD")
    assert approved["executed"] and approved["changes"] == ["CRA is now active"]
    assert approved["councilEpochNow"] == epoch + 2
    assert _agency(net.json("list"), "CRA")["status"] == "active"


def test_allow_and_disallow_a_record_type(net: Net) -> None:
    proposed = net.json("propose", "allow-record-type", "MOJ", "will", key="CSO")
    approved = net.json("approve", str(proposed["id"]), key="CRA")
    assert approved["changes"] == ["MOJ may now anchor will"]
    assert sorted(_agency(net.json("list"), "MOJ")["recordTypes"]) == ["court-order", "will"]
    _refused(
        net.run("propose", "allow-record-type", "MOJ", "will", key="CSO"),
        1,
        "MOJ may already anchor will (AgencyRegistry.RecordTypeAlreadyAllowed)",
    )
    proposed = net.json("propose", "disallow-record-type", "MOJ", "court-order", key="CSO")
    assert net.json("approve", str(proposed["id"]), key="REPD")["changes"] == [
        "MOJ may no longer anchor court-order"
    ]
    assert _agency(net.json("list"), "MOJ")["recordTypes"] == ["will"]


def test_rotating_an_only_signer_takes_two_rounds(net: Net) -> None:
    new_key = secrets.token_bytes(32)
    new = Account.from_key(new_key).address
    old = net.addresses["CRA"]
    first = net.sijill("propose", "rotate-signer", "CRA", "--old", old, "--new", new, key="REPD")
    assert first.returncode == 0, first.stderr
    assert f"add signer {new} to CRA" in first.stdout and "run this command again" in first.stdout
    steps = json.loads(
        net.sijill("propose", "rotate-signer", "CRA", "--old", old, "--new", new, "--json", key="REPD").stdout
    )
    assert steps["add"]["status"] == "reused" and steps["remove"]["status"] == "deferred"
    add_id = steps["add"]["id"]
    assert [p["id"] for p in net.json("proposals", "--open")["items"]] == [add_id]  # no duplicate
    assert [p["id"] for p in net.json("show", "CRA")["openProposals"]] == [add_id]

    # CSO approves with its keystore (the passphrase from a file, then from the environment).
    keystore = net.root / "cso-signer.json"
    create_keystore(keystore, PASSPHRASE, bytes(dev_accounts(6)[5].key), kdf_iterations=2**10)
    (net.root / "passphrase").write_text(PASSPHRASE + "\n")
    cso = ("--keystore", str(keystore))
    added = net.run("approve", str(add_id), *cso, "--passphrase-file", str(net.root / "passphrase"))
    assert added.exit_code == 0, added.output
    assert f"{new} signs for CRA from block" in added.stdout

    second = net.json("propose", "rotate-signer", "CRA", "--old", old, "--new", new, key="REPD")
    assert second["add"]["status"] == "done" and second["remove"]["status"] == "proposed"
    remove_id = second["remove"]["id"]
    removed = net.run("approve", str(remove_id), *cso, env={"SIJILL_SIGNER_PASSPHRASE": PASSPHRASE})
    assert removed.exit_code == 0, removed.output
    assert f"{old} no longer signs for CRA (valid to block" in removed.stdout

    (signer,) = net.json("show", "CRA")["signers"]
    assert signer["address"] == new
    # The retired key can no longer vote; the new one can.
    _refused(net.run("propose", "suspend-agency", "MOJ", key="CRA"), 1, f"{old} was retired as a signer")
    net.keys["CRA-new"] = net.key_file("cra-new.key", new_key)
    assert net.json("propose", "suspend-agency", "MOJ", key="CRA-new")["state"] == "open"


def test_threshold_change_makes_open_proposals_stale(net: Net) -> None:
    pending = net.json("propose", "allow-record-type", "REPD", "deed", key="REPD")
    # Approving twice for the same agency is refused, in one line, exit 1 (in-process and for real).
    _refused(net.run("approve", str(pending["id"]), key="REPD"), 1, "AlreadyApproved")
    line = _refused(net.sijill("approve", str(pending["id"]), key="REPD"), 1)
    assert (
        line == f"error: REPD has already approved proposal #{pending['id']} (AgencyRegistry.AlreadyApproved)"
    )

    proposed = net.json("propose", "set-threshold", "1", key="REPD")
    approved = net.sijill("approve", str(proposed["id"]), key="CSO")
    assert approved.returncode == 0, approved.stderr
    assert "proposals need 1 of 3 council approvals" in approved.stdout
    assert "proposals still open from before are stale" in approved.stdout
    listing = net.json("list")
    assert listing["threshold"] == 1
    states = {p["id"]: p["state"] for p in net.json("proposals")["items"]}
    assert states == {pending["id"]: "stale", proposed["id"]: "executed"}
    _refused(net.run("approve", str(pending["id"]), key="CSO"), 1, "is stale", "ProposalStale")

    # With a threshold of 1 a proposal executes at once, and a rotation is done in one go.
    new = Account.create().address
    rotation = net.sijill(
        "propose", "rotate-signer", "CSO", "--old", net.addresses["CSO"], "--new", new, key="REPD"
    )
    assert rotation.returncode == 0, rotation.stderr
    assert rotation.stdout.count("Executed. What changed:") == 2
    assert (
        f"{new} signs for CSO" in rotation.stdout
        and f"{net.addresses['CSO']} no longer signs for CSO" in rotation.stdout
    )
    assert [s["address"] for s in net.json("show", "CSO")["signers"]] == [new]


def test_refusals_and_bad_usage(net: Net, compiled: dict[str, CompiledContract]) -> None:
    outsider = net.key_file("outsider.key", secrets.token_bytes(32))
    address = Account.from_key(outsider.read_text()).address
    _refused(
        net.run("propose", "suspend-agency", "MOJ", key=str(outsider)),
        1,
        f"{address} is not a signer of any agency in the registry (AgencyRegistry.NotASigner)",
    )
    _refused(
        net.sijill("propose", "suspend-agency", "CSO", key="MOJ"),
        1,
        "MOJ has no council seat (AgencyRegistry.NotCouncilMember)",
    )
    _refused(net.run("approve", "99", key="REPD"), 1, "there is no proposal #99")
    _refused(net.run("show", "XYZ"), 1, "there is no agency XYZ")
    _refused(net.run("propose", "set-threshold", "4", key="REPD"), 1, "threshold of 4 is impossible with 3")
    _refused(
        net.run("propose", "remove-signer", "CSO", net.addresses["CSO"], key="REPD"),
        1,
        "LastSignerOfActiveAgency",
    )

    garbage = net.root / "garbage.key"
    garbage.write_text("not a key\n")
    _refused(
        net.sijill("approve", "1", key=str(garbage)), 2, "holds neither a hex private key nor a keystore"
    )
    _refused(net.run("approve", "1", key=str(net.root / "missing.key")), 2, "cannot read key file")
    _refused(net.run("approve", "1"), 2, "give the voting signer's key with one of --key-file or --keystore")
    keystore = net.root / "ks.json"
    create_keystore(keystore, PASSPHRASE, secrets.token_bytes(32), kdf_iterations=2**10)
    _refused(net.run("approve", "1", "--keystore", str(keystore)), 2, "no passphrase")
    _refused(
        net.run("approve", "1", "--keystore", str(keystore), env={"SIJILL_SIGNER_PASSPHRASE": "wrong"}),
        2,
        "wrong passphrase",
    )
    _refused(net.run("propose", "suspend-agency", "repd", key="REPD"), 2, "agency code 'repd' is invalid")
    _refused(net.run("propose", "add-signer", "REPD", "0x1234", key="REPD"), 2, "is not an account address")
    _refused(net.run("propose", "set-threshold", "0", key="REPD"), 2, "threshold")

    refused = Net(f"http://127.0.0.1:{free_port()}", net.deployment, net.keys, net.addresses, net.root)
    _refused(refused.sijill("list"), 2, "no JSON-RPC node answers at")
    _refused(refused.run("approve", "1", key="REPD"), 2, "no JSON-RPC node answers at")
    nowhere = Net(net.rpc, net.root / "none.json", net.keys, net.addresses, net.root)
    _refused(nowhere.run("list"), 2, "cannot read deployment file")

    # Another chain: anvil's public keys are refused there, and the deployment is not for it.
    with DevChain(DevChainConfig(port=free_port(), chain_id=1337)) as other:
        elsewhere = Net(other.rpc_url, net.deployment, net.keys, net.addresses, net.root)
        _refused(
            elsewhere.sijill("approve", "1", key="REPD"), 2, "refusing to use anvil's public development keys"
        )
        _refused(
            elsewhere.run("approve", "1", key="MOJ"), 2, "is a deployment on chain 31337", "is chain 1337"
        )


def test_a_config_file_drives_the_agency_commands(net: Net) -> None:
    still_open = net.json("propose", "allow-record-type", "CRA", "branch", key="REPD")
    executed = net.json("propose", "allow-record-type", "CSO", "divorce", key="CSO")
    net.json("approve", str(executed["id"]), key="CRA")
    (net.root / "sijill.toml").write_text(
        f'rpc = "{net.rpc}"\ndeployment = "deployment.json"\n'
        '[agency]\nkey_file = "repd.key"\n[agency.proposals]\nopen_only = true\nas_json = true\n'
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIJILL_")}
    done = subprocess.run(
        [SIJILL, "agency", "proposals"], cwd=net.root, env=clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert [p["action"]["recordType"] for p in json.loads(done.stdout)["items"]] == ["branch"]
    # The key from the file: REPD approves what it proposed already.
    approve = subprocess.run(
        [SIJILL, "agency", "approve", str(still_open["id"])],
        cwd=net.root,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _refused(approve, 1, "REPD has already approved")


# A name that reads "Ministry of Justice" on screen: the override turns the stored letters round.
SPOOFED = "\u202eecitsuj fo yrtsiniM"


def test_an_agency_name_with_a_refused_character_is_refused(net: Net) -> None:
    """A name holding a direction control or an invisible character is refused before anything is
    sent, in one line naming the code point, with exit status 2 (bad input); no proposal is made."""
    signer = Account.create().address
    spoofed = net.sijill("propose", "add-agency", "FAKE", "--name", SPOOFED, "--signer", signer, key="REPD")
    line = _refused(spoofed, 2, "U+202E RIGHT-TO-LEFT OVERRIDE", "remove it")
    assert "\u202e" not in line
    isolate = net.run(
        "propose", "add-agency", "FAKE", "--name", "وزارة\u2067 / Fake", "--signer", signer, key="REPD"
    )
    _refused(isolate, 2, "U+2067 RIGHT-TO-LEFT ISOLATE")
    invisible = net.run(
        "propose", "add-agency", "FAKE", "--name", "Min\u2060istry", "--signer", signer, key="REPD"
    )
    _refused(invisible, 2, "U+2060 WORD JOINER")
    too_long = net.run("propose", "add-agency", "FAKE", "--name", "م" * 65, "--signer", signer, key="REPD")
    _refused(too_long, 2, "130 bytes long once normalised: 1 to 128 bytes")
    assert net.json("proposals")["items"] == []


def test_an_agency_name_is_normalised_like_record_text(net: Net) -> None:
    """What an editor slips into a bilingual name (a right-to-left mark, a tatweel, doubled spaces)
    is normalised away: the registry gets, and the proposal shows, the canonical name."""
    signer = Account.create().address
    typed = "  وزارة  العـــدل\u200f / Ministry of  Justice "
    proposed = net.json("propose", "add-agency", "MOJ2", "--name", typed, "--signer", signer, key="REPD")
    assert proposed["action"]["name"] == "وزارة العدل / Ministry of Justice", proposed
    net.json("approve", str(proposed["id"]), key="CSO")
    assert _agency(net.json("list"), "MOJ2")["name"] == "وزارة العدل / Ministry of Justice"


def test_a_bad_name_set_by_other_software_is_shown_with_its_code_points(
    net: Net, w3: Web3, compiled: dict[str, CompiledContract]
) -> None:
    """The registry itself only checks a name's length: another program can register one holding
    U+202E. `sijill agency` then shows the character as ⟨U+202E⟩ and the text unturned; --json
    keeps the name as the registry holds it."""
    deployment = json.loads(net.deployment.read_text())
    registry = w3.eth.contract(
        address=deployment["contracts"]["AgencyRegistry"]["address"], abi=compiled["AgencyRegistry"].abi
    )
    fake = Account.create().address
    action = (0, b"FAKE".ljust(32, b"\0"), fake, b"title".ljust(32, b"\0"), 0, SPOOFED)  # AddAgency
    # anvil's dev accounts 4 and 5 sign for REPD and CSO, and anvil sends for them.
    w3.eth.wait_for_transaction_receipt(
        registry.functions.propose(action).transact({"from": net.addresses["REPD"], "gasPrice": 0})
    )
    proposal = registry.functions.proposalCount().call()
    w3.eth.wait_for_transaction_receipt(
        registry.functions.approve(proposal).transact({"from": net.addresses["CSO"], "gasPrice": 0})
    )
    assert _agency(net.json("list"), "FAKE")["name"] == SPOOFED
    for text in (net.sijill("list"), net.sijill("show", "FAKE"), net.sijill("proposals")):
        assert text.returncode == 0, text.stderr
        assert "⟨U+202E⟩ecitsuj fo yrtsiniM" in text.stdout and "\u202e" not in text.stdout, text.stdout
