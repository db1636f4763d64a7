"""A Store on a replicated PostgreSQL cluster (docs/storage.md, High availability; Backup and
point-in-time recovery): synchronous replication to a quorum of two standbys, the primary
SIGKILLed under a writer, a standby promoted and the other repointed; and a base backup taken
under writes, restored as a cluster of its own. Real clusters (tests/python/pg_cluster.py)."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from itertools import pairwise
from typing import Any

import psycopg
from pg_cluster import PgCluster, wait_for

from node.errors import StoreError
from node.store import Store, verify_audit_chain
from node.store.postgres import LOCK_KEY, TABLE

KEK = bytes(range(32))
QUORUM = "ANY 1 (s1, s2)"


def conninfo(password: str, *clusters: PgCluster, dbname: str = "t1") -> str:
    """A multi-host conninfo: libpq tries the hosts in order and keeps the read-write one."""
    ports = ",".join(str(c.port) for c in clusters)
    hosts = ",".join("127.0.0.1" for _ in clusters)
    return (
        f"postgresql:host={hosts} port={ports} dbname={dbname} user=postgres password={password} "
        "target_session_attrs=read-write connect_timeout=2"
    )


class Writer(threading.Thread):
    """Writes records one batch at a time (a record and its audit entry), each through the same
    Store, keeping the keys whose commit returned and the times of failed attempts."""

    def __init__(self, store: Store, first: int = 1) -> None:
        super().__init__(daemon=True)
        self.store, self.first = store, first
        self.acked: list[bytes] = []
        self.acked_at: list[float] = []
        self.failures: list[float] = []
        self.failed: set[bytes] = set()  # in doubt: a commit may have happened, its answer lost
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        n = self.first - 1
        while not self.stopping.is_set():
            n += 1
            key = f"batch/{n:08d}".encode()
            try:
                with self.store.write_batch() as wb:
                    self.store.put_json(wb, key, {"n": n})
                    self.store.audit(
                        wb, actor="officer:1", action="record.create", request_id=f"req-{n}",
                        subject=f"title/T-{n}", at=1_700_000_000 + n,
                    )  # fmt: skip
            except StoreError as exc:
                self.failures.append(time.monotonic())
                self.failed.add(key)
                self.errors.append(str(exc))
                self.stopping.wait(0.05)
            else:
                self.acked.append(key)
                self.acked_at.append(time.monotonic())

    def wait_acked(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert self.is_alive() and time.monotonic() < deadline, self.errors[-3:]
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def keys_in(cluster: PgCluster) -> set[bytes]:
    return {
        bytes(k)
        for (k,) in cluster.sql("t1", f"SELECT key FROM {TABLE} WHERE key >= 'batch/' AND key < 'batch0'")
    }


def test_a_store_keeps_every_acknowledged_write_across_a_failover() -> None:
    with ExitStack() as stack:
        primary = stack.enter_context(PgCluster())
        primary.create_database("t1")
        Store(primary.uri("t1"), KEK, create=True).close()

        # Synchronous: with no standby up, a commit waits.
        primary.set("synchronous_standby_names", QUORUM)
        store = Store(primary.uri("t1"), KEK)  # its sessions start with the setting
        done = threading.Event()
        waiting = threading.Thread(
            target=lambda: (store.put_json(None, b"batch/00000000", {"n": 0}), done.set())
        )
        waiting.start()
        assert not done.wait(1.0), "a commit returned with no standby to confirm it"
        s1 = primary.base_backup(standby="s1")
        stack.callback(s1.stop)
        assert done.wait(30), "the commit did not return once a standby had it"
        waiting.join()
        s2 = primary.base_backup(standby="s2")
        stack.callback(s2.stop)
        primary.wait_standby("s1", "quorum")
        primary.wait_standby("s2", "quorum")
        store.close()

        # A node's Store on the three hosts, writing all along.
        store = stack.enter_context(Store(conninfo(primary.password, primary, s1, s2), KEK))
        writer = Writer(store)
        writer.start()
        writer.wait_acked(50)
        primary.kill()
        died = time.monotonic()
        acked_before = len(writer.acked)

        # Promote the standby that has the most WAL (an acknowledged commit is on at least one
        # of the two, not on a given one), and point the other at it.
        new, other = (s1, s2) if s1.receive_lsn() >= s2.receive_lsn() else (s2, s1)
        new.promote()
        promoted = time.monotonic()
        other.follow(new, "s2" if other is s2 else "s1")
        repointed = time.monotonic()
        writer.wait_acked(acked_before + 100)
        writer.stop()
        # The writer's calls failed, or waited for a connection until the new primary took them
        # (the pool checks a connection before handing it out): the longest time without an
        # acknowledged write, from the last one before the kill on, is what it saw.
        refused = [t for t in writer.failures if t >= died]
        after = [max(t for t in writer.acked_at if t <= died), *(t for t in writer.acked_at if t > died)]
        stood_still = max(b - a for a, b in pairwise(after))

        # Every acknowledged write is on the new primary, and its commits are synchronous again.
        # A write whose answer was lost with the primary may be there too (the client saw an
        # error: it retries, with an idempotency key in the API).
        present = keys_in(new)
        assert (
            set(writer.acked) <= present
            and present - set(writer.acked) - {b"batch/00000000"} <= writer.failed
        )
        new.wait_standby("s2" if other is s2 else "s1", "quorum")
        assert verify_audit_chain(store.export_audit(), head=store.audit_head()[1]) == len(present) - 1

        # The node's exclusive lock died with the old primary's session: another node could take it.
        with psycopg.connect(new.uri("t1"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            assert row is not None and row[0] is True
        # What the runbook says to do: restart the node, whose open takes the lock on the new primary.
        store.close()
        with Store(conninfo(primary.password, primary, s1, s2), KEK) as restarted:
            assert restarted.get_json(writer.acked[-1]) is not None

        print(
            f"\nfailover: promote {promoted - died:.2f} s after the kill, repointed at "
            f"{repointed - died:.2f} s; no write acknowledged for {stood_still:.2f} s at most "
            f"({len(refused)} failed attempts, {len(present) - 1 - len(writer.acked)} of them committed); "
            f"{len(writer.acked)} acknowledged, all on the new primary"
        )


def test_a_base_backup_taken_under_writes_restores_a_store_that_verifies() -> None:
    with ExitStack() as stack:
        primary = stack.enter_context(PgCluster())
        primary.create_database("t1")
        store = stack.enter_context(Store(primary.uri("t1"), KEK, create=True))
        writer = Writer(store)
        writer.start()
        writer.wait_acked(2000)
        before = list(writer.acked)  # committed before the backup starts
        started = time.monotonic()
        restored = primary.base_backup()
        stack.callback(restored.stop)
        took = time.monotonic() - started
        writer.stop()
        store.close()

        with Store(restored.uri("t1"), KEK) as copy:
            present = keys_in(restored)
            assert set(before) <= present
            entries: list[dict[str, Any]] = list(copy.export_audit())
            assert verify_audit_chain(entries, head=copy.audit_head()[1]) == len(present)
            copy.put_json(None, b"batch/99999999", {"after": "restore"})  # a primary of its own
        print(
            f"\nbase backup under writes: {took:.2f} s to back up and start; {len(before)} committed "
            f"before it, all restored; {len(present)} rows in the copy of {len(writer.acked)} written"
        )


def test_a_point_in_time_recovery_from_the_wal_archive_stops_at_the_target() -> None:
    with ExitStack() as stack:
        primary = stack.enter_context(PgCluster())
        archive = primary.archive()
        primary.create_database("t1")
        store = stack.enter_context(Store(primary.uri("t1"), KEK, create=True))
        restored = primary.base_backup(start=False)  # the base backup, before the writes
        stack.callback(restored.stop)
        first = Writer(store)
        first.start()
        first.wait_acked(300)
        first.stop()
        target = primary.sql("postgres", "SELECT clock_timestamp()::text")[0][0]
        later = Writer(store, first=1_000_000)  # committed after the target: not restored
        later.start()
        later.wait_acked(300)
        later.stop()
        (segment,) = primary.sql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")[0]
        archived = "SELECT 1 FROM pg_stat_archiver WHERE last_archived_wal >= %s"
        wait_for(lambda: bool(primary.sql("postgres", archived, (segment,))), what="the archive")

        started = time.monotonic()
        restored.recover(
            {"restore_command": f"cp {archive}/%f %p", "recovery_target_time": target,
             "recovery_target_action": "promote"}
        )  # fmt: skip
        took = time.monotonic() - started
        with Store(restored.uri("t1"), KEK) as copy:
            assert keys_in(restored) == set(first.acked)
            assert verify_audit_chain(copy.export_audit(), head=copy.audit_head()[1]) == len(first.acked)
            copy.put_json(None, b"batch/99999999", {"after": "recovery"})
        print(f"\npoint-in-time recovery: {took:.2f} s to replay {len(first.acked)} batches and promote")
