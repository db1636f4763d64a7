"""A PostgreSQL batch that takes a database lock (its audit entry's) after some writes applies
those writes in its transaction before it waits for the lock: the lock is held for what comes
after it and the commit only. The committed result is the same (the last write to a key wins,
nothing shows before the commit, the audit trail stays one chain)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from pg_cluster import PgCluster

from node.store import Store
from node.store.audit import AUDIT_LOCK, verify_audit_chain

KEK = bytes(range(32))


def test_writes_before_a_lock_go_in_before_it_is_waited_for(pg_cluster: PgCluster) -> None:
    uri = pg_cluster.create_database()
    Store(uri, KEK, create=True).close()
    with (
        Store(uri, KEK, exclusive=False) as store,
        psycopg.connect(uri, autocommit=True) as other,
        psycopg.connect(uri, autocommit=True) as third,
    ):
        store.put_json(None, b"old/gone", {"n": 0})
        other.execute("SELECT pg_advisory_lock(%s)", (AUDIT_LOCK,))  # the trail, held elsewhere
        errors: list[BaseException] = []

        def batch() -> None:
            try:
                with store.write_batch() as wb:
                    store.put_json(wb, b"rec/1", {"n": 1})
                    store.put_json(wb, b"rec/2", {"n": 2})
                    store.delete(wb, b"old/gone")
                    store.audit(wb, actor="t", action="bulk", request_id="r", subject="2", at=1)
                    store.put_json(wb, b"rec/2", {"n": 22})  # after the lock: the last write wins
                    store.put_json(wb, b"old/gone", {"n": 3})
            except BaseException as exc:  # pragma: no cover - shown by the assert below
                errors.append(exc)

        thread = threading.Thread(target=batch)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not other.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the batch never waited for the trail's lock"
                time.sleep(0.05)
            # The batch waits for the lock with its rows already written (uncommitted): writing
            # the same key from a third session waits for that transaction, and times out.
            with pytest.raises(psycopg.errors.LockNotAvailable), third.transaction():
                third.execute("SET LOCAL lock_timeout = '2s'")
                third.execute("INSERT INTO sijill_store (key, value) VALUES ('rec/1'::bytea, 'x')")
            assert store.get(b"rec/1") is None  # nothing shows before the commit
            assert store.get_json(b"old/gone") == {"n": 0}
        finally:
            other.execute("SELECT pg_advisory_unlock(%s)", (AUDIT_LOCK,))
            thread.join(timeout=30)
        assert not errors
        assert store.get_json(b"rec/1") == {"n": 1}
        assert store.get_json(b"rec/2") == {"n": 22}
        assert store.get_json(b"old/gone") == {"n": 3}
        assert verify_audit_chain(list(store.export_audit()), head=store.audit_head()[1]) == 1


def test_a_batch_abandoned_after_its_lock_writes_nothing(pg_cluster: PgCluster) -> None:
    uri = pg_cluster.create_database()
    Store(uri, KEK, create=True).close()
    with Store(uri, KEK, exclusive=False) as store:
        with pytest.raises(RuntimeError), store.write_batch() as wb:
            store.put_json(wb, b"rec/1", {"n": 1})
            store.audit(wb, actor="t", action="bulk", request_id="r", subject="1", at=1)
            raise RuntimeError("abandoned")
        assert store.get(b"rec/1") is None
        assert list(store.export_audit()) == []
