"""The batcher lease (node/lease.py) on a real PostgreSQL database: one holder at a time, taken
over only after its holder has gone silent for the lease's time, and a holder that lost it can
neither write (fencing number, checked in the write's own transaction) nor believe it may send.
Each process's clock is a test clock here, so "five seconds later" is exact and instant; the
database, its locks and its transactions are real."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import PgCluster

from node.errors import StoreError
from node.lease import LEASE_KEY, Lease, LeaseLost
from node.store import Store, postgres

KEK = bytes(range(32))
TTL = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stores(pg_cluster: PgCluster) -> Iterator[tuple[Store, Store]]:
    """Two node processes' stores on one database (opened shared, as `sijill serve` opens it)."""
    uri = pg_cluster.create_database()
    Store(uri, KEK, create=True).close()
    with Store(uri, KEK, exclusive=False) as first, Store(uri, KEK, exclusive=False) as second:
        yield first, second


def test_one_holder_and_a_takeover_only_after_ttl_of_silence(stores: tuple[Store, Store]) -> None:
    clock_a, clock_b = Clock(), Clock()
    a = Lease(stores[0], ttl=TTL, clock=clock_a)
    b = Lease(stores[1], ttl=TTL, clock=clock_b)
    assert a.claim() and a.held() and a.epoch == 1
    assert not b.claim() and not b.held()
    # a renews: however long b waits, it sees the row change and never takes over.
    for _ in range(6):
        clock_a.now += TTL / 3
        clock_b.now += TTL / 3
        assert a.claim()
        assert not b.claim()
    # a goes silent: b takes over once it has seen the row unchanged for TTL, not before.
    clock_b.now += TTL - 0.1
    assert not b.claim()
    clock_b.now += 0.1
    assert b.claim() and b.held() and b.epoch == 2 and b.takeovers == 1
    holder = b.holder_now()
    assert holder is not None and holder["holder"] == b.holder and holder["epoch"] == 2
    # a's own clock: past TTL since its last renewal, it no longer believes it holds the lease...
    clock_a.now += TTL
    assert not a.held()
    # ...and when it asks, the row names b: it stays a follower.
    assert not a.claim() and not a.held()


def test_a_holder_that_lost_the_lease_writes_nothing(stores: tuple[Store, Store]) -> None:
    clock_a, clock_b = Clock(), Clock()
    a = Lease(stores[0], ttl=TTL, clock=clock_a)
    b = Lease(stores[1], ttl=TTL, clock=clock_b)
    assert a.claim()
    with stores[0].fenced(a.fence):
        stores[0].put_json(None, b"batch/first", {"by": "a"})  # fenced, and a holds it: committed
    assert stores[1].get_json(b"batch/first") == {"by": "a"}
    b.claim()
    clock_b.now += TTL
    assert b.claim()
    # a paused and resumed: its next write, a single put or a batch, commits nothing.
    with stores[0].fenced(a.fence):
        with pytest.raises(LeaseLost, match=r"now held by .*epoch 2"):
            stores[0].put_json(None, b"batch/first", {"by": "a, late"})
        with pytest.raises(LeaseLost), stores[0].write_batch() as wb:
            stores[0].put_json(wb, b"batch/second", {"by": "a, late"})
            stores[0].put_json(wb, b"meta/head", {"seq": 99})
    assert stores[1].get_json(b"batch/first") == {"by": "a"}
    assert stores[1].get_json(b"batch/second") is None and stores[1].get_json(b"meta/head") is None
    assert not a.held()
    with stores[1].fenced(b.fence):
        stores[1].put_json(None, b"batch/second", {"by": "b"})
    assert stores[0].get_json(b"batch/second") == {"by": "b"}
    # Writes outside a fence (intake) go on whoever holds the lease.
    stores[0].put_json(None, b"meta/intake", {"ok": True})
    assert stores[1].get_json(b"meta/intake") == {"ok": True}


def test_a_released_lease_is_taken_at_once(stores: tuple[Store, Store]) -> None:
    a = Lease(stores[0], ttl=TTL, clock=Clock())
    b = Lease(stores[1], ttl=TTL, clock=Clock())
    assert a.claim() and not b.claim()
    a.release()
    assert not a.held()
    assert b.claim() and b.epoch == 2  # no TTL to wait: its holder handed it back


def test_two_processes_racing_for_a_free_lease_get_one_holder(stores: tuple[Store, Store]) -> None:
    """Both ask for the lease nobody holds, from two threads, many times: each time exactly one
    gets it (the row is read and written under its database lock)."""
    for round_ in range(20):
        for store in stores:
            store.delete(None, LEASE_KEY)
        leases = [Lease(store, ttl=TTL, clock=Clock()) for store in stores]
        results: list[bool] = [False, False]
        go = threading.Barrier(2)

        def ask(i: int, go: threading.Barrier, leases: list[Lease], results: list[bool]) -> None:
            go.wait()
            results[i] = leases[i].claim()

        threads = [threading.Thread(target=ask, args=(i, go, leases, results)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False, True], round_


def test_a_leveldb_node_always_holds_its_lease(tmp_path: Path) -> None:
    with Store(tmp_path / "store", KEK, create=True) as store:
        lease = Lease(store, ttl=TTL, clock=Clock())
        assert lease.held() and lease.claim() and lease.epoch == 1
        with store.fenced(lease.fence):
            store.put_json(None, b"meta/head", {"seq": 1})
        assert store.get_json(b"meta/head") == {"seq": 1}
        assert store.get(LEASE_KEY) is None  # nothing to write: one process


def test_a_holder_stopped_inside_a_transaction_loses_its_locks(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder paused in the middle of a fenced write (SIGSTOP, a stalled VM) holds the lease
    row's lock: the server ends its session once it has sat idle in that transaction for
    IDLE_TIMEOUT (1 s here), and the other process takes the lease over; the paused write
    commits nothing."""
    monkeypatch.setattr(postgres, "IDLE_TIMEOUT", 1.0)
    clock_a, clock_b = Clock(), Clock()
    a = Lease(stores[0], ttl=TTL, clock=clock_a)
    b = Lease(stores[1], ttl=TTL, clock=clock_b)
    assert a.claim() and not b.claim()
    clock_b.now += TTL
    with pytest.raises(StoreError), stores[0].write_batch() as wb:
        a.fence(wb)  # the row's lock held, as by a batcher write under way
        started = time.monotonic()
        assert b.claim()  # waits until the server has ended a's idle session, then takes over
        waited = time.monotonic() - started
        stores[0].put_json(wb, b"batch/late", {"by": "a"})
    assert 0.5 < waited < 25, waited
    assert b.epoch == 2 and stores[1].get_json(b"batch/late") is None


def test_a_scan_closed_after_the_server_went_away_raises_nothing(pg_cluster: PgCluster) -> None:
    uri = pg_cluster.create_database()
    with Store(uri, KEK, create=True) as store:
        with store.write_batch() as wb:
            for i in range(2000):  # more than a page: a server-side cursor
                store.put(wb, b"leaf/%04d" % i, b"x")
        scan = store.iter_prefix(b"leaf/")
        assert next(scan)[0] == b"leaf/0000"
        pg_cluster.sql(
            uri.rsplit("/", 1)[1],
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        scan.close()  # its cursor cannot be closed: nothing to report, nothing lost
        assert store.get(b"leaf/0001") == b"x"  # the pool gives a working connection again
