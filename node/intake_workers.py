"""Preparing records for intake, in this process or in worker processes: validate, seal, sign.

`prepare` is the whole per-record work of bulk intake that needs neither the store nor the
registry: the record's schema validation, its sealing (salts, field hashes, leaf) and its
receipt's signature, and the plaintext of its secret. It is pure (no write, no shared state), so
it may run anywhere: `Preparer` runs a chunk of records in this process, or in `workers` worker
processes (`concurrent.futures`, started by a forkserver, each with the agency's signing key)
so that the store's process keeps its core for the writes and the batcher. The same function
runs either way; the store's process checks the record types against the registry before and
writes the results after, exactly as it does for records it prepares itself.

A worker that dies (`BrokenProcessPool`) fails nothing: its chunk is prepared again in this
process, and the pool is not used again (logged).
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.errors import LedgerError
from ledger.fields import RecordKey, seal_record
from ledger.receipts import Receipt, ReceiptDomain, ReceiptSigner
from ledger.records import FieldProblem, RecordInvalid, validate_record
from node.intake_values import secret_value

log = logging.getLogger("sijill.intake")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record validated, sealed and signed, ready to be stored."""

    record_type: str
    record_id: str
    leaf: bytes
    signature: bytes
    secret: bytes  # the plaintext of record/<type>/<id>/<version>


@dataclass(frozen=True, slots=True)
class Signing:
    """What signing a receipt needs, the same in every process."""

    agency: str
    key: bytes
    domain: ReceiptDomain
    anchor_within: int


Item = tuple[str, Any, str] | RecordInvalid
"""(record type, data, record id) to prepare, or the refusal the store's process already made."""

Outcome = Prepared | tuple[str, tuple[FieldProblem, ...]]
"""A prepared record, or (record type, problems) of one validation rejected (`RecordInvalid`
does not survive pickling: `Preparer` makes it again from these)."""


def type_refused(record_type: Any, exc: Exception) -> RecordInvalid:
    """The refusal of a record whose type this agency may not take (or no agency knows)."""
    arabic = getattr(exc, "message_ar", None) or "نوع السجل غير مسموح به لهذه الجهة"
    return RecordInvalid(str(record_type), (FieldProblem("", "record-type", str(exc), arabic),))


def seal_and_sign(
    signing: Signing,
    signer: ReceiptSigner,
    record_type: str,
    record_id: str,
    version: int,
    record: dict[str, Any],
    now: int,
) -> Prepared:
    """Seal one validated record version received at `now` and sign its receipt."""
    sealed = seal_record(RecordKey(signing.agency, record_type, record_id, version), record)
    receipt = Receipt(
        signing.agency, record_type, record_id, version, sealed.leaf, now, now + signing.anchor_within
    )
    signature = signer.sign(receipt, signing.domain)
    return Prepared(record_type, record_id, sealed.leaf, signature, secret_value(record, sealed.salts))


def prepare(
    signing: Signing, signer: ReceiptSigner, item: tuple[str, Any, str], now: int, today: date
) -> Outcome:
    """Validate, seal and sign one new record (version 1) received at `now`."""
    record_type, data, record_id = item
    try:
        record = validate_record(record_type, data, today=today)
    except RecordInvalid as exc:
        return (exc.record_type, exc.problems)
    except LedgerError as exc:
        refused = type_refused(record_type, exc)
        return (refused.record_type, refused.problems)
    return seal_and_sign(signing, signer, record_type, record_id, 1, record, now)


def prepare_chunk(
    signing: Signing, signer: ReceiptSigner, items: list[tuple[str, Any, str]], now: int, today: date
) -> list[Outcome]:
    return [prepare(signing, signer, item, now, today) for item in items]


_worker: tuple[Signing, ReceiptSigner] | None = None


def _start_worker(signing: Signing) -> None:
    global _worker
    _worker = (signing, ReceiptSigner(signing.key))


def _worker_chunk(items: list[tuple[str, Any, str]], now: int, today: date) -> list[Outcome]:
    assert _worker is not None, "a worker is started with its signing key"
    return prepare_chunk(_worker[0], _worker[1], items, now, today)


class Preparer:
    """Prepares chunks of records here (`workers` 0) or in worker processes, in order."""

    def __init__(self, signing: Signing, *, workers: int = 0) -> None:
        self.signing = signing
        self.workers = workers
        self._signer = ReceiptSigner(signing.key)
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, items: list[Item], now: int, today: date) -> Future[list[RecordInvalid | Prepared]]:
        """The outcomes of `items`, in order (a refusal stays as it is), as a future: done at once
        without workers, else when a worker has prepared them."""
        work = [item for item in items if not isinstance(item, RecordInvalid)]
        done: Future[list[RecordInvalid | Prepared]] = Future()
        pool = self._start_pool() if work and self.workers > 0 else None
        if pool is None:
            done.set_result(_merge(items, prepare_chunk(self.signing, self._signer, work, now, today)))
            return done
        try:
            pending = pool.submit(_worker_chunk, work, now, today)
        except (BrokenProcessPool, RuntimeError) as exc:
            self._give_up(exc)
            return self.submit(items, now, today)

        def finished(future: Future[list[Outcome]]) -> None:
            try:
                done.set_result(_merge(items, future.result()))
            except BrokenProcessPool as exc:
                self._give_up(exc)
                done.set_result(_merge(items, prepare_chunk(self.signing, self._signer, work, now, today)))
            except BaseException as exc:  # what validation raised: the caller sees it
                done.set_exception(exc)

        pending.add_done_callback(finished)
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _start_pool(self) -> ProcessPoolExecutor | None:
        if self._pool is None and self.workers > 0:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_start_worker,
                initargs=(self.signing,),
            )
        return self._pool

    def _give_up(self, exc: BaseException) -> None:
        log.warning("intake workers failed (%s): preparing records in this process from now on", exc)
        self.workers = 0
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _merge(items: list[Item], outcomes: list[Outcome]) -> list[RecordInvalid | Prepared]:
    results: list[RecordInvalid | Prepared] = []
    queue = iter(outcomes)
    for item in items:
        if isinstance(item, RecordInvalid):
            results.append(item)
            continue
        outcome = next(queue)
        results.append(outcome if isinstance(outcome, Prepared) else RecordInvalid(*outcome))
    return results
