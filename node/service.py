"""The agency node as one process: store, signer, intake, batcher and indexer, wired together.

A node is one process: the API (when served), the batcher and the indexer are threads over
one `Store`. A LevelDB store admits one process (its lock file); a PostgreSQL store admits
several node processes of the agency, which all take intake and answer reads while the holder
of the batcher lease (node/lease.py) alone batches, anchors and indexes (docs/storage.md).
Work divides over the two cores as the GIL allows: intake (validation, hashing, AES-GCM,
signing) runs on the request threads, the batcher and indexer mostly wait on the chain, and the
C parts (LevelDB, keccak, secp256k1, AES) release the GIL. Bulk loads are the heavy part;
`sijill node ingest` runs intake on the main thread while the batcher anchors behind it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.codes import agency_code
from ledger.receipts import ReceiptDomain
from node.admin import AdminServer, admin_socket_path
from node.admin_actions import store_actions
from node.authority import Authority, check_signer
from node.backup_gap import adopt_queued_batches, restore_gap
from node.batcher import Batcher, BatcherSettings
from node.chain.client import RevertDecoder, connect
from node.chain.deploy import load_deployment
from node.chain.toolchain import compile_contracts
from node.chain.txmanager import TxManager, TxSettings
from node.chain.txrpc import connect_for_sending
from node.chain.views import Web3ChainView
from node.indexer import IndexedChainView, Indexer
from node.intake import Intake
from node.keys import load_signer
from node.lease import Lease
from node.store import Store, load_kek
from node.store.backend import is_postgresql

log = logging.getLogger("sijill.node")


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Everything a node needs; see `sijill node --help` for the flags and variables."""

    data_dir: Path
    deployment: Path
    rpc_url: str
    agency: str
    keystore: Path
    passphrase_file: Path | None = None
    kek_hex: str | None = None
    kek_file: Path | None = None
    store: str | None = field(default=None, repr=False)  # --store (may hold a password); None: data_dir/store
    batcher: BatcherSettings = field(default_factory=BatcherSettings)
    anchor_within: int = 600
    gas_price: int | None = None
    sync_writes: bool = True
    registry_ttl: float = 2.0  # seconds the registry's answer (record types, agency status) is trusted
    intake_workers: int = 0  # processes preparing bulk intake's records (node/intake_workers.py)


class AgencyNode:
    """One agency's node. `start()` runs the batcher and indexer threads; `stop()` ends them."""

    def __init__(self, settings: NodeSettings, *, create: bool = True) -> None:
        self.settings = settings
        # The keystore first: a wrong passphrase is reported as such, whatever state the chain is
        # in, and before anything is opened or contacted.
        self.signer = load_signer(settings.keystore, passphrase_file=settings.passphrase_file)
        deployment = load_deployment(settings.deployment)
        compiled = compile_contracts()
        self.w3 = connect(settings.rpc_url, expect_chain_id=deployment["chainId"])
        addresses = deployment["contracts"]
        self.ledger = self.w3.eth.contract(
            address=addresses["RecordLedger"]["address"], abi=compiled["RecordLedger"].abi
        )
        self.registry = self.w3.eth.contract(
            address=addresses["AgencyRegistry"]["address"], abi=compiled["AgencyRegistry"].abi
        )
        check_signer(self.registry, settings.agency, self.signer.address)
        self.authority = Authority(
            self.registry, settings.agency, self.signer.address, ttl=settings.registry_ttl
        )
        location = settings.store or settings.data_dir / "store"
        self.store = Store(
            location,
            load_kek(settings.kek_hex, settings.kek_file),
            create=create,
            sync=settings.sync_writes,
            exclusive=not is_postgresql(location),  # PostgreSQL: the agency's other nodes too
        )
        self.lease = Lease(self.store)
        decoder = RevertDecoder({name: c.abi for name, c in compiled.items()})
        self.tx = TxManager(
            connect_for_sending(settings.rpc_url),
            self.signer,
            decoder,
            TxSettings(gas_price=settings.gas_price),
        )
        domain = ReceiptDomain(deployment["chainId"], self.ledger.address)
        self.intake = Intake(
            self.store,
            agency=settings.agency,
            signer=self.signer,
            domain=domain,
            registry=self.registry.address,
            authority=self.authority,
            anchor_within=settings.anchor_within,
            workers=settings.intake_workers,
        )
        self.batcher = Batcher(
            self.store,
            agency=settings.agency,
            ledger=self.ledger,
            tx=self.tx,
            settings=settings.batcher,
            authority=self.authority,
            lease=self.lease,
        )
        self.indexer = Indexer(
            self.store, self.w3, self.ledger, start_block=deployment["block"], lease=self.lease
        )
        self.chain_view = IndexedChainView(self.store, Web3ChainView(self.w3, deployment, compiled))
        self._threads: list[threading.Thread] = []
        self._admin: AdminServer | None = None
        self.restore_gap: str | None = None  # what a store restored from a backup lacks

    def start(self) -> AgencyNode:
        self._report_restore_gap()
        try:
            self._admin = AdminServer(
                admin_socket_path(self.settings.data_dir),
                store_actions(self.store, agency=self.settings.agency, chain_head=self.chain_head),
            )
        except OSError as exc:  # a data directory path too long for a socket, say: serve without it
            log.warning(
                "no admin socket in %s (%s): officer and backup commands need the node stopped",
                self.settings.data_dir,
                exc,
            )
        self.lease.claim()  # at once: a lone node starts anchoring without waiting a round
        threads: list[tuple[str, Callable[[], None]]] = [
            ("batcher", self.batcher.run),
            ("indexer", self.indexer.run),
        ]
        if self.store.shared:
            threads.append(("lease", lambda: self.lease.run(self._lease_changed)))
        for name, target in threads:
            thread = threading.Thread(target=target, name=f"sijill-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self.intake.close()
        self.batcher.stop()
        self.indexer.stop()
        self.lease.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        self.lease.release()
        self.store.close()

    def _errors(self) -> list[str]:
        return [e for e in (self.batcher.last_error, self.indexer.last_error, self.lease.last_error) if e]

    def _lease_changed(self, held: bool) -> None:
        if held:
            log.info("this process now batches, anchors and indexes for %s", self.settings.agency)
            self.batcher.wake()
        else:
            log.warning("another process of %s holds the batcher lease: following", self.settings.agency)

    def chain_head(self) -> tuple[int, str] | None:
        """The agency's (seq, root hex) on the chain now; None if the chain does not answer."""
        try:
            root, seq = self.ledger.functions.head(agency_code(self.settings.agency)).call()
        except Exception:  # a backup goes on without it: the manifest says it is unknown
            return None
        return int(seq), bytes(root).hex()

    def _report_restore_gap(self) -> None:
        """After a restore (`meta/restored`), say which of the agency's batches the chain holds
        and the store lacks, taking back those made of the backup's queued leaves
        (node/backup_gap.py): done once, at the first start that reaches the chain, before the
        batcher lines the log up, and kept, so every later start says the same."""
        restored = self.store.get_json(b"meta/restored")
        if restored is None:
            return
        gap = restored.get("gap")
        if gap is None:
            head = self.chain_head()
            if head is None:
                return  # asked again at the next start
            local = self.store.get_json(b"meta/head") or {"seq": 0}
            batch_size = self.settings.batcher.batch_size
            adopted = adopt_queued_batches(self.store, self.ledger, self.settings.agency, batch_size)
            queued = self.store.queued_leaves
            gap = {"from": local["seq"] + 1, "to": head[0], "queued": queued, "adopted": adopted}
            self.store.put_json(None, b"meta/restored", {**restored, "gap": gap})
        self.restore_gap = restore_gap(gap["from"], gap["to"], gap["queued"], tuple(gap["adopted"]))
        if self.restore_gap is not None:
            log.warning("%s", self.restore_gap)

    def health(self) -> dict[str, Any]:
        backlog = self.store.queued_leaves
        waiting = self.batcher.unanchored()
        lag = self.indexer.lag()
        held = self.batcher.holds
        degraded = (
            self.batcher.last_error is not None
            or self.indexer.last_error is not None
            or lag is None
            or self.lease.last_error is not None
            or bool(held)
        )
        return {
            "status": "degraded" if degraded else "ok",
            "agency": self.settings.agency,
            "signer": self.signer.address,
            "backlog": backlog,
            "unanchored": waiting.leaves,
            "anchoringStalledFor": round(waiting.stalled_for, 1),
            "indexerLag": lag,
            "lastAnchorAt": self.batcher.last_anchor_at,
            "batcher": "this process" if self.lease.held() else "another process",
            "errors": self._errors() + held,
        }
