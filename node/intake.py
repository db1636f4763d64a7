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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.bundle import Anchor, Bundle, SignedReceipt, make_bundle
from ledger.errors import LedgerError
from ledger.fields import RecordKey, SealedRecord, seal_record
from ledger.receipts import Receipt, ReceiptDomain, ReceiptSigner
from ledger.records import FieldProblem, RecordInvalid, validate_record
from node.authority import Authority
from node.errors import NodeError
from node.failpoints import failpoint
from node.intake_values import head_value, leaf_value, new_record_ids, secret_value, ulid_of, version_value
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
    ) -> None:
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
        """
        done = 0
        if resume_key is not None:
            progress = self.store.get_json(_resume(resume_key))
            done = int(progress["done"]) if progress else 0
        position = 0
        pending: list[tuple[str, dict[str, Any]]] = []
        results: list[Accepted | RecordInvalid | None] = []
        for record_type, data in items:
            position += 1
            if position <= done:
                continue
            try:
                self._check_type(record_type)
                record = validate_record(record_type, data, today=self._today())
                pending.append((record_type, record))
                results.append(None)
            except RecordInvalid as exc:
                results.append(exc)
            except (IntakeError, LedgerError) as exc:
                arabic = getattr(exc, "message_ar", None) or "نوع السجل غير مسموح به لهذه الجهة"
                problem = FieldProblem("", "record-type", str(exc), arabic)
                results.append(RecordInvalid(str(record_type), (problem,)))
            if len(results) >= chunk:
                yield from self._commit_chunk(
                    pending, results, position, actor, request_id, resume_key, on_commit
                )
                pending, results = [], []
        if results:
            yield from self._commit_chunk(
                pending, results, position, actor, request_id, resume_key, on_commit
            )

    def _commit_chunk(
        self,
        pending: list[tuple[str, dict[str, Any]]],
        results: list[Accepted | RecordInvalid | None],
        position: int,
        actor: str,
        request_id: str,
        resume_key: str | None,
        on_commit: Callable[[WriteBatch, list[Accepted | RecordInvalid]], None] | None = None,
    ) -> Iterator[Accepted | RecordInvalid]:
        # One time for the chunk (its records are committed together): the receipts' intake
        # time, the audit entry's, and the ULIDs' millisecond part, with one urandom for the ids.
        clock = self._clock()
        now = int(clock)
        ids = new_record_ids(len(pending), int(clock * 1000))
        accepted = []
        with self.store.write_batch() as wb:
            for (record_type, record), record_id in zip(pending, ids, strict=True):
                accepted.append(self._accept(wb, record_type, record_id, 1, record, now))
            if resume_key is not None:
                self.store.put_json(wb, _resume(resume_key), {"done": position})
            if on_commit is not None:
                queue = iter(accepted)
                on_commit(wb, [next(queue) if result is None else result for result in results])
            self.store.audit(
                wb,
                actor=actor,
                action="record.create-bulk",
                request_id=request_id,
                subject=f"{len(accepted)} records",
                at=now,
                details={"accepted": len(accepted), "rejected": len(results) - len(accepted)},
            )
        failpoint("intake-committed")
        queue = iter(accepted)
        for result in results:
            yield next(queue) if result is None else result

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
                _head(record_type, record_id),
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
            self.store.put_json(wb, _head(record_type, record_id), {**head, "revoked": reason})
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
        secret = self.store.get_secret(_record(record_type, record_id, version))
        if secret is None:
            raise IntakeError("not-found", f"{record_type}/{record_id} version {version} is missing")
        blob = json.loads(secret)
        salts = {path: bytes.fromhex(salt) for path, salt in blob["salts"].items()}
        sealed = seal_record(RecordKey(self.agency, record_type, record_id, version), blob["record"], salts)
        leaf_info = self.store.get_json(_leaf(sealed.leaf)) or {}
        receipt = SignedReceipt(
            leaf_info["intakeTime"],
            leaf_info["anchorBy"],
            self._signer_of(leaf_info),
            bytes.fromhex(leaf_info["signature"]),
        )
        anchored = self.store.get(_proof(sealed.leaf)) is not None
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
        """Seal and sign one record version received at `now` and put it in `wb`: its secret, its
        head (version 1), version and leaf entries, and its leaf in the queue. The values are
        those `node/intake_values.py` formats (the same bytes as `put_json` would write)."""
        sealed = seal_record(RecordKey(self.agency, record_type, record_id, version), record)
        leaf = sealed.leaf
        anchor_by = now + self.anchor_within
        message = Receipt(self.agency, record_type, record_id, version, leaf, now, anchor_by)
        signature = self._receipts.sign(message, self.domain)
        # Storage needs no canonical form (the record was canonicalised at validation).
        secret = secret_value(record, sealed.salts)
        self.store.put_secret(wb, _record(record_type, record_id, version), secret)
        if version == 1:
            self.store.put(wb, _head(record_type, record_id), head_value(leaf))
        self.store.put(
            wb, f"version/{record_type}/{record_id}/{version:08x}".encode(), version_value(leaf, now)
        )
        self.store.put(
            wb,
            _leaf(leaf),
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
        self.store.hold(wb, _head(record_type, record_id))
        return self._head(record_type, record_id)

    def _head(self, record_type: str, record_id: str) -> dict[str, Any]:
        head: dict[str, Any] | None = self.store.get_json(_head(record_type, record_id))
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


def _record(record_type: str, record_id: str, version: int) -> bytes:
    return f"record/{record_type}/{record_id}/{version:08x}".encode()


def _head(record_type: str, record_id: str) -> bytes:
    return f"head/{record_type}/{record_id}".encode()


def _leaf(leaf: bytes) -> bytes:
    return f"leaf/{leaf.hex()}".encode()


def _proof(leaf: bytes) -> bytes:
    return f"proof/{leaf.hex()}".encode()


def _resume(key: str) -> bytes:
    return f"idem/bulk/{key}".encode()
