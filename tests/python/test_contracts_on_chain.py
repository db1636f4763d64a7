"""AgencyRegistry and RecordLedger through web3.py against a real anvil node.

Every transaction here is signed locally and sent raw, as the agency node will send it to
Besu; every bad call must come back as a named custom error with its arguments.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from ledger.codes import agency_code, record_type
from ledger.merkle import build_tree
from node.chain.client import RevertDecoder, call_view
from node.chain.txmanager import TxManager
from node.errors import ContractRevert

pytestmark = pytest.mark.chain

REPD, CSO, CRA = agency_code("REPD"), agency_code("CSO"), agency_code("CRA")
TITLE, MARRIAGE = record_type("title"), record_type("marriage")
ZERO = b"\0" * 32


def leaves(n: int) -> list[bytes]:
    return [os.urandom(32) for _ in range(n)]


class AgencyLog:
    """Anchors batches for one agency, keeping its head the way the node will."""

    def __init__(self, ledger: Any, sender: TxManager, agency: bytes) -> None:
        self.ledger, self.sender, self.agency = ledger, sender, agency
        head = ledger.functions.head(agency).call()
        self.root, self.seq = head[0], head[1]

    def anchor(self, kind: bytes, batch: list[bytes]) -> tuple[bytes, dict[str, Any]]:
        tree = build_tree(batch)
        receipt = self.sender.transact(
            self.ledger.functions.anchor(kind, tree.root, len(batch), self.seq + 1, self.root)
        )
        self.root, self.seq = tree.root, self.seq + 1
        return tree.root, dict(receipt)


@pytest.fixture(scope="module")
def ledger(contracts: dict[str, Any]) -> Any:
    return contracts["RecordLedger"]


@pytest.fixture(scope="module")
def registry(contracts: dict[str, Any]) -> Any:
    return contracts["AgencyRegistry"]


@pytest.fixture(scope="module")
def repd_log(ledger: Any, senders: dict[str, TxManager]) -> AgencyLog:
    return AgencyLog(ledger, senders["REPD"], REPD)


def expect_revert(error: str, **args: object) -> Any:
    """Context manager: the call must revert with custom error `error` and these arguments."""

    class _Check:
        def __enter__(self) -> None:
            return None

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
            assert exc_type is ContractRevert, f"expected {error}, got {exc_type and exc_type.__name__}"
            assert exc.error == error, str(exc)
            for key, value in args.items():
                assert exc.args_by_name[key] == value, str(exc)
            return True

    return _Check()


def test_registry_was_bootstrapped_with_the_demo_agencies(
    registry: Any, accounts: list[LocalAccount]
) -> None:
    assert registry.functions.version().call() == "1.0.0"
    assert registry.functions.agencyCodes().call() == [REPD, CSO, CRA]
    assert set(registry.functions.currentSigners().call()) == {a.address for a in accounts[1:4]}
    assert registry.functions.threshold().call() == 2
    assert registry.functions.isRecordTypeAllowed(REPD, TITLE).call()
    assert not registry.functions.isRecordTypeAllowed(REPD, MARRIAGE).call()
    name, status, council, _ = registry.functions.agencyInfo(REPD).call()
    assert "Real Estate Publicity" in name and status == 1 and council


def test_anchor_links_batches_into_the_agency_log(ledger: Any, repd_log: AgencyLog, w3: Web3) -> None:
    first_seq = repd_log.seq
    root1, receipt1 = repd_log.anchor(TITLE, leaves(10))
    root2, _ = repd_log.anchor(TITLE, leaves(3))
    assert ledger.functions.head(REPD).call() == (root2, first_seq + 2)
    kind, seq, block, timestamp, count = ledger.functions.batch(REPD, root1).call()
    assert (kind, seq, count, block) == (TITLE, first_seq + 1, 10, receipt1["blockNumber"])
    assert timestamp == w3.eth.get_block(block)["timestamp"]
    (event,) = ledger.events.BatchAnchored().process_receipt(receipt1)
    assert event["args"]["agency"] == REPD and event["args"]["root"] == root1
    assert event["args"]["prevRoot"] == (ZERO if first_seq == 0 else event["args"]["prevRoot"])
    assert event["args"]["signer"] == repd_log.sender.address


def test_gaps_forks_and_duplicates_revert_by_name(ledger: Any, repd_log: AgencyLog) -> None:
    root, _ = repd_log.anchor(TITLE, leaves(4))
    fresh = build_tree(leaves(2)).root
    send = repd_log.sender.transact
    with expect_revert("SequenceMismatch", agency="REPD", expected=repd_log.seq + 1, given=repd_log.seq + 2):
        send(ledger.functions.anchor(TITLE, fresh, 2, repd_log.seq + 2, root))
    with expect_revert("PreviousRootMismatch", agency="REPD", given="0x" + ("ab" * 32)):
        send(ledger.functions.anchor(TITLE, fresh, 2, repd_log.seq + 1, bytes.fromhex("ab" * 32)))
    with expect_revert("RootAlreadyAnchored", agency="REPD", seq=repd_log.seq):
        send(ledger.functions.anchor(TITLE, root, 4, repd_log.seq + 1, root))
    with expect_revert("EmptyBatch"):
        send(ledger.functions.anchor(TITLE, fresh, 0, repd_log.seq + 1, root))
    with expect_revert("InvalidRoot"):
        send(ledger.functions.anchor(TITLE, ZERO, 1, repd_log.seq + 1, root))


def test_only_signers_of_agencies_allowed_the_type_may_anchor(
    ledger: Any, senders: dict[str, TxManager]
) -> None:
    root = build_tree(leaves(2)).root
    with expect_revert("RecordTypeNotAllowed", agency="REPD", recordType="marriage"):
        senders["REPD"].transact(ledger.functions.anchor(MARRIAGE, root, 2, 1, ZERO))
    with expect_revert("NotASigner", account=senders["outsider"].address):
        senders["outsider"].transact(ledger.functions.anchor(TITLE, root, 2, 1, ZERO))


def test_bulk_revoke_and_supersede(ledger: Any, repd_log: AgencyLog, decoder: RevertDecoder) -> None:
    batch = leaves(200)
    repd_log.anchor(TITLE, batch)
    revoked, replaced, successors = batch[:100], batch[100:150], leaves(50)
    receipt = repd_log.sender.transact(ledger.functions.revoke(revoked, 3))
    assert len(ledger.events.LeafRevoked().process_receipt(receipt)) == 100
    print(f"\n100-leaf revoke: {receipt['gasUsed']:,} gas")
    repd_log.sender.transact(ledger.functions.supersede(replaced, successors, 2))

    state, reason, block, successor = ledger.functions.leafStatus(REPD, revoked[42]).call()
    assert (state, reason, block, successor) == (2, 3, receipt["blockNumber"], ZERO)
    state, reason, _, successor = ledger.functions.leafStatus(REPD, replaced[7]).call()
    assert (state, reason, successor) == (1, 2, successors[7])
    assert ledger.functions.leafStatus(REPD, batch[199]).call()[0] == 0  # untouched: current

    with expect_revert("LeafNotCurrent", agency="REPD", leaf="0x" + revoked[0].hex(), state=2):
        repd_log.sender.transact(ledger.functions.revoke([revoked[0]], 1))
    with expect_revert("MissingReasonCode"):
        repd_log.sender.transact(ledger.functions.revoke([batch[199]], 0))
    with expect_revert("LengthMismatch", oldLeaves=1, newLeaves=2):
        repd_log.sender.transact(ledger.functions.supersede([batch[199]], leaves(2), 1))
    with expect_revert("InvalidLeafCount", count=1025, max=1024):
        repd_log.sender.transact(ledger.functions.revoke(leaves(1025), 1))


def test_no_agency_can_touch_another_agencys_records(
    ledger: Any, repd_log: AgencyLog, senders: dict[str, TxManager]
) -> None:
    batch = leaves(4)
    root, _ = repd_log.anchor(TITLE, batch)
    # CSO "revokes" REPD's leaf: it only writes into CSO's own namespace.
    senders["CSO"].transact(ledger.functions.revoke([batch[0]], 9))
    assert ledger.functions.leafStatus(REPD, batch[0]).call()[0] == 0
    tree = build_tree(batch)
    included, info, status = ledger.functions.verifyLeaf(REPD, root, batch[0], tree.proof(batch[0])).call()
    assert included and info[1] == repd_log.seq and status[0] == 0
    # Read under the wrong agency, the batch is not there.
    included, info, _ = ledger.functions.verifyLeaf(CSO, root, batch[0], tree.proof(batch[0])).call()
    assert not included and info[1] == 0


def test_python_merkle_proofs_verify_on_chain(ledger: Any, repd_log: AgencyLog) -> None:
    batch = leaves(37)
    root, _ = repd_log.anchor(TITLE, batch)
    tree = build_tree(batch)
    for leaf in batch[::6]:
        included, _, _ = ledger.functions.verifyLeaf(REPD, root, leaf, tree.proof(leaf)).call()
        assert included
    assert not ledger.functions.verifyLeaf(REPD, root, leaves(1)[0], tree.proof(batch[0])).call()[0]


def test_receipt_signatures_recover_the_agency_signer(
    ledger: Any, accounts: list[LocalAccount], w3: Web3
) -> None:
    receipt = (REPD, TITLE, os.urandom(32), 1, os.urandom(32), 1_790_000_000, 1_790_000_600)
    digest = ledger.functions.receiptDigest(receipt).call()
    signature = accounts[1].unsafe_sign_hash(digest).signature
    assert ledger.functions.receiptSigner(receipt, signature).call() == accounts[1].address
    registry_address = ledger.functions.registry().call()
    assert w3.eth.get_code(registry_address)


def test_council_governs_the_registry(
    registry: Any,
    ledger: Any,
    senders: dict[str, TxManager],
    accounts: list[LocalAccount],
    decoder: RevertDecoder,
) -> None:
    new_signer = accounts[5].address
    nid = agency_code("NID")
    action = (0, nid, new_signer, record_type("commercial"), 0, "National ID Authority")  # AddAgency
    receipt = senders["REPD"].transact(registry.functions.propose(action))
    (created,) = registry.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
    pid = created["args"]["id"]
    assert registry.functions.agencyInfo(nid).call()[1] == 0, "one approval of two: not yet"
    with expect_revert("AlreadyApproved", id=pid, agency="REPD"):
        senders["REPD"].transact(registry.functions.approve(pid))
    with expect_revert("NotASigner", account=senders["outsider"].address):
        senders["outsider"].transact(registry.functions.approve(pid))
    senders["CSO"].transact(registry.functions.approve(pid))
    assert registry.functions.agencyInfo(nid).call()[1] == 1
    assert new_signer in registry.functions.currentSigners().call()
    assert registry.functions.isSignerValidAt(
        nid, new_signer, registry.functions.signerInfo(new_signer).call()[1]
    ).call()
    with expect_revert("UnknownProposal", id=10_000):
        call_view(registry.functions.proposal(10_000), decoder)
