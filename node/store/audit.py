"""The audit trail: every officer's and operator's act, append-only and hash-chained.

Entries live at `audit/<seq>` (fixed-width hex), as canonical JSON, each carrying the SHA-256
of the previous entry's canonical JSON as `prev` (`AUDIT_GENESIS` for the first). An entry is
numbered and chained under a lock held from `audit()` until its write batch is queued for its
group commit (node/store/database.py; on PostgreSQL until it commits), so entries are numbered
without gaps and chained in commit order; an abandoned batch writes none. On a
shared database (PostgreSQL) that lock is also a database lock taken in the batch's transaction,
which reads the head there: several processes append to one chain.
`verify_audit_chain` checks an exported trail; `audit_head()`, kept outside the node, makes
the last entries tamper-evident too.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ledger.canonical import NotCanonical, canonical_json
from node.errors import StoreError
from node.store.database import Database, WriteBatch
from node.store.layout import audit_key, load_json

AUDIT_GENESIS = "0" * 64
"""The `prev` of the first audit entry."""
AUDIT_LOCK = 0x53494A494C41  # the database lock a shared store's batch holds while it appends


def verify_audit_chain(entries: Iterable[dict[str, Any]], *, head: str | None = None) -> int:
    """Check an exported audit trail link by link; return the number of entries.

    Each entry must follow the previous one (next `seq`) and carry its hash as `prev`; an entry
    with seq 1 must start from `AUDIT_GENESIS`. A trail exported from a later `start_seq` is
    checked from its first entry on. Altering entry k breaks the link at k+1; the last entry
    is covered only when `head` (the hash from `Store.audit_head()`, kept elsewhere) is given.
    """
    count, last_seq, last_hash = 0, 0, ""
    for entry in entries:
        seq = entry.get("seq") if isinstance(entry, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise StoreError(f"audit entry #{count + 1} of the export has no sequence number")
        if count == 0:
            if seq == 1 and entry.get("prev") != AUDIT_GENESIS:
                raise StoreError("audit entry 1 does not start the chain (its prev is not the genesis)")
        elif seq != last_seq + 1:
            raise StoreError(f"audit entry {seq} follows entry {last_seq}: entries are missing or reordered")
        elif entry.get("prev") != last_hash:
            raise StoreError(
                f"audit entry {seq} does not chain to entry {last_seq}: one of the two was altered "
                f"(prev is {entry.get('prev')!r}, entry {last_seq} hashes to {last_hash})"
            )
        try:
            last_hash = hashlib.sha256(canonical_json(entry)).hexdigest()
        except NotCanonical as exc:
            raise StoreError(f"audit entry {seq} is not valid canonical JSON: {exc}") from None
        count, last_seq = count + 1, seq
    if head is not None and last_hash != head:
        raise StoreError(f"the last audit entry ({last_seq}) does not hash to the expected head {head}")
    return count


class AuditTrail(Database):
    """Appending to the audit trail, exporting it, and its head (the lock and head are set by
    `Store.__init__`; `Database.write_batch` moves the head and releases the lock)."""

    def audit(
        self,
        wb: WriteBatch | None,
        *,
        actor: str,
        action: str,
        request_id: str,
        subject: str,
        at: int,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append an audit entry with the batch's writes (at once when `wb` is None); return
        its sequence number. `details` never holds record field values (names, ID numbers).

        From this call until the batch is queued for its commit the trail is locked, so that
        entries are numbered without gaps and chained in commit order: call it last, just
        before the batch ends."""
        entry: dict[str, Any] = {
            "seq": 0,
            "at": at,
            "actor": actor,
            "action": action,
            "requestId": request_id,
            "subject": subject,
            "details": details if details is not None else {},
            "prev": "",
        }
        try:
            canonical_json(entry)  # refuse a bad entry before taking the lock
        except NotCanonical as exc:
            raise StoreError(f"audit entry for {action!r} is not canonical JSON: {exc}") from None
        if wb is None:
            with self.write_batch() as direct:
                return self._append_audit(direct, entry)
        return self._append_audit(wb, entry)

    def _append_audit(self, wb: WriteBatch, entry: dict[str, Any]) -> int:
        wb._check_open()
        if wb._audit is None:
            if self._audit_owner == threading.get_ident():
                raise StoreError("this thread already has an audit entry in another open write batch")
            self._audit_lock.acquire()
            self._audit_owner = threading.get_ident()
            wb._audit_locked = True
            try:
                last_seq, last_hash = self._locked_audit_head(wb)
            except BaseException:
                self._release_audit(wb)
                raise
        else:
            last_seq, last_hash = wb._audit
        entry["seq"], entry["prev"] = last_seq + 1, last_hash
        data = canonical_json(entry)
        wb._audit = (last_seq + 1, hashlib.sha256(data).hexdigest())
        wb._raw.put(audit_key(last_seq + 1), data)
        return last_seq + 1

    def export_audit(self, start_seq: int = 0) -> Iterator[dict[str, Any]]:
        """The audit entries from `start_seq` on, in order (check them with `verify_audit_chain`)."""
        for key, value in self.iter_prefix(b"audit/", start=audit_key(start_seq)):
            yield load_json(key, value)

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last committed audit entry ((0, AUDIT_GENESIS) when empty): keep
        it outside the node to make the last entries tamper-evident too."""
        return self._load_audit_head() if self._db.shared else self._audit_head

    def _locked_audit_head(self, wb: WriteBatch) -> tuple[int, str]:
        """The head to chain a batch's first entry to. On a shared database (PostgreSQL) the
        batch's transaction takes the trail's database lock first and reads the head in it, so
        entries from several processes are numbered and chained in commit order too. LevelDB:
        the last entry queued for a group commit, durable or not yet."""
        if not self._db.shared:
            with self._group:
                wb._epoch = self._audit_epoch
                return self._audit_tail
        wb._raw.lock(AUDIT_LOCK)
        return _head_of(wb._raw.last_under(b"audit/"))

    def _load_audit_head(self) -> tuple[int, str]:
        return _head_of(next(self.iter_prefix(b"audit/", reverse=True, limit=1), None))


def _head_of(last: tuple[bytes, bytes] | None) -> tuple[int, str]:
    """(seq, hash) of the audit entry `last` ((0, AUDIT_GENESIS) for none)."""
    if last is None:
        return 0, AUDIT_GENESIS
    key, value = last
    return int(key[len(b"audit/") :], 16), hashlib.sha256(value).hexdigest()
