"""Intake: a record is accepted durably, with a signed receipt, before it is anchored.

`Intake.submit` validates a record against its schema, gives it an id (a ULID: sortable, random,
no personal data) and version 1, seals it (salts, field hashes, digest, leaf), signs the EIP-712
receipt with the agency's key (anchor promised within `anchor_within` seconds), and commits all
of it in ONE LevelDB write batch before it returns. Until that batch commits nothing is
accepted; once it has, the record survives any crash and the batcher will anchor it.

`submit_many` streams: it takes any iterable, commits every `chunk` records in one write batch,
and yields a result per item, so memory stays bounded whatever the input size. With a
`resume_key` it records how far it got in the same write batch, so a bulk load killed half way
and started again skips what was already accepted.

`amend` creates a new version (optimistic concurrency: the caller names the version it amends)
and queues a supersede old leaf -> new leaf; `revoke` queues a revocation. The batcher sends
both in bulk once the leaves involved are anchored.

Store layout (docs/node-store.md): the record itself and its salts are a secret (encrypted)
under `record/<type>/<id>/<version>`; everything else is hashes and receipts in the clear.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.bundle import Anchor, Bundle, SignedReceipt, make_bundle
from ledger.errors import LedgerError
from ledger.fields import RecordKey, SealedRecord, seal_record
from ledger.receipts import ReceiptDomain, ReceiptSigner
from ledger.records import RecordInvalid, validate_record
from node.authority import Authority
from node.errors import NodeError
from node.failpoints import failpoint
from node.intake_values import (
    bulk_progress_key,
    head_key,
    head_value,
    leaf_key,
    leaf_value,
    new_record_ids,
    proof_key,
    record_key,
    ulid_of,
    version_value,
)
from node.intake_workers import Item, Prepared, Preparer, Signing, seal_and_sign, type_refused
from node.proofs import read_proof
from node.store import Store, WriteBatch


class IntakeError(NodeError):
    """A request intake cannot honour; `kind` says which (not-found, conflict, forbidden, ...),
    `message_ar` (if any) says it in Arabic."""

    def __init__(self, kind: str, message: str, message_ar: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message_ar = message_ar


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the officer gets back at once: the record's identity, its leaf and the receipt."""

    record_type: str
    record_id: str
    version: int
    leaf: bytes
    receipt: SignedReceipt


@dataclass(frozen=True, slots=True)
class StoredRecord:
    record_type: str
    record_id: str
    version: int
    record: dict[str, Any]
    sealed: SealedRecord
    receipt: SignedReceipt
    state: str  # pending | anchored
    revoked: bool
    superseded_by: int | None


def new_record_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit millisecond time then 80 random bits, 26 Crockford base-32 characters."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return ulid_of(ms, os.urandom(10))


class Intake:
    """Accepts records for one agency into one store."""

    def __init__(
        self,
        store: Store,
        *,
        agency: str,
        signer: LocalAccount,
        domain: ReceiptDomain,
        registry: str,
        authority: Authority,
        anchor_within: int = 600,
        clock: Callable[[], float] = time.time,
        workers: int = 0,
    ) -> None:
        """`workers`: processes that prepare bulk intake's records (node/intake_workers.py);
        0, this thread does. `close()` stops them."""
        self.store = store
        self.agency = agency
        self.domain = domain
        self.registry = registry.lower()
        self.authority = authority
        self.anchor_within = anchor_within
        self._receipts = ReceiptSigner(bytes(signer.key))
        self._signer = signer.address.lower()
        self._clock = clock
        self._lock = threading.Lock()  # amend/revoke read-check-write
        self._signing = Signing(agency, bytes(signer.key), domain, anchor_within)
        self._preparer = Preparer(self._signing, workers=workers)

    def close(self) -> None:
        """Stop the intake workers, if any."""
        self._preparer.close()

    # ----------------------------------------------------------------------------- accepting

    def submit(
        self,
        record_type: str,
        data: Mapping[str, Any],
        *,
        actor: str,
        request_id: str,
        on_commit: Callable[[WriteBatch, Accepted], None] | None = None,
    ) -> Accepted:
        """Validate, seal, sign and durably store one new record (version 1).

        `on_commit(wb, accepted)` may add writes to the same atomic batch (the API stores its
        idempotent answer there, so a retry after a crash finds it or finds nothing)."""
        self._check_type(record_type)
        record = validate_record(record_type, data, today=self._today())
        with self.store.write_batch() as wb:
            now = int(self._clock())
            accepted = self._accept(wb, record_type, new_record_id(), 1, record, now)
            if on_commit is not None:
                on_commit(wb, accepted)
            self.store.audit(
                wb,
                actor=actor,
                action="record.create",
                request_id=request_id,
                subject=f"{record_type}/{accepted.record_id}",
                at=int(self._clock()),
            )
        return accepted

    def submit_many(
        self,
        items: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        actor: str,
        request_id: str,
        chunk: int = 1000,
        resume_key: str | None = None,
        on_commit: Callable[[WriteBatch, list[Accepted | RecordInvalid]], None] | None = None,
    ) -> Iterator[Accepted | RecordInvalid]:
        """Accept a stream of (record type, data), committing every `chunk` records at once.

        Yields, per item in order, the `Accepted` record or the `RecordInvalid` that rejected it.
        With `resume_key`, items up to the last committed chunk of an earlier run are skipped.
        `on_commit(wb, results)` adds writes to each chunk's batch, given that chunk's results.

        With `workers`, the next chunks are prepared in them (node/intake_workers.py) while
        this thread commits the one before, in order."""
        done = 0
        if resume_key is not None:
            progress = self.store.get_json(bulk_progress_key(resume_key))
            done = int(progress["done"]) if progress else 0
        position = 0
        batch: list[tuple[str, Any] | RecordInvalid] = []
        flights: deque[tuple[Future[list[RecordInvalid | Prepared]], int, int]] = deque()
        for record_type, data in items:
            position += 1
            if position <= done:
                continue
            try:
                self._check_type(record_type)
                batch.append((record_type, data))
            except (IntakeError, LedgerError) as exc:
                batch.append(type_refused(record_type, exc))
            if len(batch) >= chunk:
                flights.append((*self._prepare(batch), position))
                batch = []
                while len(flights) > self._preparer.workers:
                    future, now, at = flights.popleft()
                    yield from self._commit_chunk(
                        future.result(), now, at, actor, request_id, resume_key, on_commit
                    )
        if batch:
            flights.append((*self._prepare(batch), position))
        while flights:
            future, now, at = flights.popleft()
            yield from self._commit_chunk(future.result(), now, at, actor, request_id, resume_key, on_commit)

    def _prepare(
        self, batch: list[tuple[str, Any] | RecordInvalid]
    ) -> tuple[Future[list[RecordInvalid | Prepared]], int]:
        """Send a chunk to be prepared, with one time for it (its receipts' intake time and its
        audit entry's, and the ULIDs' millisecond part) and one urandom for its ids."""
        clock = self._clock()
        now = int(clock)
        ids = iter(
            new_record_ids(sum(1 for i in batch if not isinstance(i, RecordInvalid)), int(clock * 1000))
        )
        work: list[Item] = [i if isinstance(i, RecordInvalid) else (i[0], i[1], next(ids)) for i in batch]
        return self._preparer.submit(work, now, datetime.fromtimestamp(clock, UTC).date()), now

    def _commit_chunk(
        self,
        results: list[RecordInvalid | Prepared],
        now: int,
        position: int,
        actor: str,
        request_id: str,
        resume_key: str | None,
        on_commit: Callable[[WriteBatch, list[Accepted | RecordInvalid]], None] | None = None,
    ) -> Iterator[Accepted | RecordInvalid]:
        out: list[Accepted | RecordInvalid] = []
        with self.store.write_batch() as wb:
            for result in results:
                if isinstance(result, Prepared):
                    out.append(
                        self._store_version(
                            wb,
                            result.record_type,
                            result.record_id,
                            1,
                            result.leaf,
                            result.signature,
                            result.secret,
                            now,
                        )
                    )
                else:
                    out.append(result)
            accepted = sum(1 for result in out if isinstance(result, Accepted))
            if resume_key is not None:
                self.store.put_json(wb, bulk_progress_key(resume_key), {"done": position})
            if on_commit is not None:
                on_commit(wb, out)
            self.store.audit(
                wb,
                actor=actor,
                action="record.create-bulk",
                request_id=request_id,
                subject=f"{accepted} records",
                at=now,
                details={"accepted": accepted, "rejected": len(out) - accepted},
            )
        failpoint("intake-committed")
        yield from out

    def amend(
        self,
        record_type: str,
        record_id: str,
        *,
        expected_version: int,
        data: Mapping[str, Any],
        reason: int,
        actor: str,
        request_id: str,
        on_commit: Callable[[WriteBatch, Accepted], None] | None = None,
    ) -> Accepted:
        """A new version of a record; `IntakeError("conflict")` if `expected_version` is stale.

        A record this node does not hold is not-found before anything else; a type the registry
        no longer lets the agency anchor is forbidden (the new version could not be anchored),
        while revoking such a record stays possible (revocation needs no record type right)."""
        self._head(record_type, record_id)
        self._check_type(record_type)
        record = validate_record(record_type, data, today=self._today())
        with self._lock, self.store.write_batch() as wb:
            head = self._held_head(wb, record_type, record_id)
            self._check_current(head, record_type, record_id, expected_version)
            now = int(self._clock())
            accepted = self._accept(wb, record_type, record_id, head["version"] + 1, record, now)
            self.store.put_json(
                wb,
                head_key(record_type, record_id),
                {**head, "version": accepted.version, "leaf": accepted.leaf.hex()},
            )
            self._queue_op(
                wb,
                {
                    "kind": "supersede",
                    "leaf": head["leaf"],
                    "successor": accepted.leaf.hex(),
                    "reason": reason,
                },
            )
            if on_commit is not None:
                on_commit(wb, accepted)
            self.store.audit(
                wb,
                actor=actor,
                action="record.amend",
                request_id=request_id,
                subject=f"{record_type}/{record_id}",
                at=int(self._clock()),
                details={"version": accepted.version, "reason": reason},
            )
        return accepted

    def revoke(
        self,
        record_type: str,
        record_id: str,
        *,
        expected_version: int,
        reason: int,
        actor: str,
        request_id: str,
        on_commit: Callable[[WriteBatch], None] | None = None,
    ) -> None:
        """Revoke a record's current version (queued for the chain)."""
        if not 1 <= reason < 2**16:
            raise IntakeError("invalid", "a revocation reason code is 1 to 65535")
        with self._lock, self.store.write_batch() as wb:
            head = self._held_head(wb, record_type, record_id)
            self._check_current(head, record_type, record_id, expected_version)
            self.store.put_json(wb, head_key(record_type, record_id), {**head, "revoked": reason})
            self._queue_op(wb, {"kind": "revoke", "leaf": head["leaf"], "reason": reason})
            if on_commit is not None:
                on_commit(wb)
            self.store.audit(
                wb,
                actor=actor,
                action="record.revoke",
                request_id=request_id,
                subject=f"{record_type}/{record_id}",
                at=int(self._clock()),
                details={"version": head["version"], "reason": reason},
            )

    # ----------------------------------------------------------------------------- reading

    def stored(self, record_type: str, record_id: str, version: int | None = None) -> StoredRecord:
        """A record version as stored (decrypted), with its state."""
        head = self._head(record_type, record_id)
        version = head["version"] if version is None else version
        if not 1 <= version <= head["version"]:
            raise IntakeError("not-found", f"{record_type}/{record_id} has no version {version}")
        secret = self.store.get_secret(record_key(record_type, record_id, version))
        if secret is None:
            raise IntakeError("not-found", f"{record_type}/{record_id} version {version} is missing")
        blob = json.loads(secret)
        salts = {path: bytes.fromhex(salt) for path, salt in blob["salts"].items()}
        sealed = seal_record(RecordKey(self.agency, record_type, record_id, version), blob["record"], salts)
        leaf_info = self.store.get_json(leaf_key(sealed.leaf)) or {}
        receipt = SignedReceipt(
            leaf_info["intakeTime"],
            leaf_info["anchorBy"],
            self._signer_of(leaf_info),
            bytes.fromhex(leaf_info["signature"]),
        )
        anchored = self.store.get(proof_key(sealed.leaf)) is not None
        is_current = version == head["version"]
        return StoredRecord(
            record_type,
            record_id,
            version,
            blob["record"],
            sealed,
            receipt,
            "anchored" if anchored else "pending",
            bool(head.get("revoked")) and is_current,
            None if is_current else version + 1,
        )

    def bundle(self, record_type: str, record_id: str, version: int | None = None) -> Bundle:
        """The full proof bundle of a record version (anchor null while pending)."""
        stored = self.stored(record_type, record_id, version)
        proof = read_proof(self.store, stored.sealed.leaf)
        anchor = None if proof is None else Anchor(proof[0], tuple(proof[1]))
        return make_bundle(
            stored.sealed,
            chain_id=self.domain.chain_id,
            ledger=self.domain.ledger,
            registry=self.registry,
            receipt=stored.receipt,
            anchor=anchor,
        )

    def history(self, record_type: str, record_id: str) -> list[dict[str, Any]]:
        """Every version's leaf and state, oldest first (no field values)."""
        head = self._head(record_type, record_id)
        out = []
        for version in range(1, head["version"] + 1):
            info = self.store.get_json(f"version/{record_type}/{record_id}/{version:08x}".encode()) or {}
            out.append({"version": version, **info})
        return out

    # ----------------------------------------------------------------------------- internals

    def _accept(
        self, wb: Any, record_type: str, record_id: str, version: int, record: dict[str, Any], now: int
    ) -> Accepted:
        """Seal and sign one record version received at `now` and put it in `wb`."""
        p = seal_and_sign(self._signing, self._receipts, record_type, record_id, version, record, now)
        return self._store_version(wb, record_type, record_id, version, p.leaf, p.signature, p.secret, now)

    def _store_version(
        self,
        wb: Any,
        record_type: str,
        record_id: str,
        version: int,
        leaf: bytes,
        signature: bytes,
        secret: bytes,
        now: int,
    ) -> Accepted:
        """Put a sealed and signed record version in `wb`: its secret, its head (version 1),
        version and leaf entries, and its leaf in the queue. The values are those
        node/intake_values.py formats (the same bytes as `put_json` would write)."""
        anchor_by = now + self.anchor_within
        self.store.put_secret(wb, record_key(record_type, record_id, version), secret)
        if version == 1:
            self.store.put(wb, head_key(record_type, record_id), head_value(leaf))
        self.store.put(
            wb, f"version/{record_type}/{record_id}/{version:08x}".encode(), version_value(leaf, now)
        )
        self.store.put(
            wb,
            leaf_key(leaf),
            leaf_value(record_type, record_id, version, now, anchor_by, signature, self._signer),
        )
        self.store.enqueue(wb, record_type, leaf)
        return Accepted(
            record_type, record_id, version, leaf, SignedReceipt(now, anchor_by, self._signer, signature)
        )

    def _queue_op(self, wb: Any, op: dict[str, Any]) -> None:
        seq = self.store.next_sequence(wb, "op")
        self.store.put_json(wb, f"op/{seq:016x}".encode(), {**op, "status": "queued"})

    def _held_head(self, wb: WriteBatch, record_type: str, record_id: str) -> dict[str, Any]:
        """The record's head, held in `wb` until it commits: another process's amend or revoke
        of the record waits, then sees this one's version (node/store/database.py `hold`)."""
        self.store.hold(wb, head_key(record_type, record_id))
        return self._head(record_type, record_id)

    def _head(self, record_type: str, record_id: str) -> dict[str, Any]:
        head: dict[str, Any] | None = self.store.get_json(head_key(record_type, record_id))
        if head is None:
            raise IntakeError("not-found", f"no {record_type} record {record_id} at {self.agency}")
        return head

    @staticmethod
    def _check_current(head: dict[str, Any], record_type: str, record_id: str, expected: int) -> None:
        if head.get("revoked"):
            raise IntakeError("conflict", f"{record_type}/{record_id} is revoked")
        if head["version"] != expected:
            raise IntakeError(
                "conflict", f"{record_type}/{record_id} is at version {head['version']}, not {expected}"
            )

    def _check_type(self, record_type: str) -> None:
        """Refuse a new leaf the registry would not let this agency anchor now (type not allowed,
        agency suspended, signer retired): its receipt would promise what cannot be kept."""
        refusal = self.authority.refusal(record_type)
        if refusal is not None:
            raise IntakeError("forbidden", refusal.message_en, refusal.message_ar)

    def _signer_of(self, leaf_info: dict[str, Any]) -> str:
        return str(leaf_info.get("signer", self._signer))

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), UTC).date()
