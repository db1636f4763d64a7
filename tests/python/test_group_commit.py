"""Group commit of the store's write batches (node/store/database.py): concurrent writers whose
batches are written together keep the audit chain in write order and gap-free, every
acknowledged batch is durable, counters are never handed out twice after a reopen, a failed
group write fails the batches chained to it and nothing else, and a `sijill serve` SIGKILLed
under concurrent creates keeps every record it answered 201 for, with a chain that verifies.
On LevelDB and PostgreSQL (the `db` and `backend` fixtures)."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import KEK, Backend, deploy_fresh, init_node, start_server, stop_server
from test_store import Where, audit_entry, db  # noqa: F401  (the `db` fixture: both backends)
from web3 import Web3

from ledger.records.examples import title_example as title
from node.chain.toolchain import CompiledContract
from node.errors import StoreError
from node.store import Store, verify_audit_chain
from node.store.layout import make_key

KEY = bytes.fromhex(KEK)


class _Batch:
    """A backend batch whose `write` runs `before` first (a slow or failing disk)."""

    def __init__(self, raw: Any, before: Any) -> None:
        self._raw, self._before = raw, before

    def put(self, key: bytes, value: bytes) -> None:
        self._raw.put(key, value)

    def delete(self, key: bytes) -> None:
        self._raw.delete(key)

    def write(self) -> None:
        self._before()
        self._raw.write()


def test_concurrent_writers_keep_one_chain_and_every_acknowledged_batch(db: Where) -> None:  # noqa: F811
    """16 threads write batches with a record, a counter number and an audit entry; some are
    abandoned after their audit entry. After a reopen: every acknowledged batch is there, no
    abandoned one, the chain verifies to the head without a gap, and a counter goes on past
    every number handed out."""
    acknowledged: list[tuple[int, int]] = []  # (thread*1000 + i, the counter number)
    lock = threading.Lock()
    with Store(db.location, KEY, create=True) as store:

        def writer(n: int) -> None:
            for i in range(40):
                tag = n * 1000 + i
                try:
                    with store.write_batch() as wb:
                        number = store.next_sequence(wb, "test/numbers")
                        store.put_json(wb, make_key("op", f"{tag:06d}"), {"number": number})
                        audit_entry(store, wb, tag)
                        if i % 7 == 3:
                            raise RuntimeError("abandoned after its audit entry")
                except RuntimeError:
                    continue
                with lock:
                    acknowledged.append((tag, number))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(writer, range(16)))
        head = store.audit_head()
    with Store(db.location, KEY) as reopened:
        entries = list(reopened.export_audit())
        assert verify_audit_chain(entries, head=head[1]) == len(acknowledged) == head[0]
        tags = sorted(int(e["requestId"].split("-")[1]) for e in entries)
        assert tags == sorted(tag for tag, _ in acknowledged)
        for tag, number in acknowledged:
            assert reopened.get_json(make_key("op", f"{tag:06d}")) == {"number": number}
        numbers = [number for _, number in acknowledged]
        assert len(set(numbers)) == len(numbers)
        with reopened.write_batch() as wb:
            assert reopened.next_sequence(wb, "test/numbers") > max(numbers)


def test_batches_that_commit_together_share_one_durable_write(tmp_path: Path) -> None:
    """LevelDB: while one group is on the disk, the batches that come are written in the next
    single backend write, not one each."""
    with Store(str(tmp_path / "db"), KEY, create=True) as store:
        writes = []
        make_batch = store._db.batch

        def counting_batch(*, sync: bool) -> Any:
            writes.append(sync)
            return _Batch(make_batch(sync=sync), lambda: time.sleep(0.05))  # the others queue meanwhile

        store._db.batch = counting_batch  # type: ignore[method-assign]

        def writer(n: int) -> None:
            with store.write_batch() as wb:
                store.put_json(wb, make_key("op", f"{n:04d}"), {"n": n})
                audit_entry(store, wb, n)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(writer, range(64)))
        assert verify_audit_chain(store.export_audit(), head=store.audit_head()[1]) == 64
        assert all(writes) and len(writes) < 32, writes


def test_a_failed_group_write_fails_the_batches_chained_to_it_and_the_next_ones_succeed(
    tmp_path: Path,
) -> None:
    """A group whose write fails raises in each of its batches; the audit batches queued behind
    it (chained to entries that are not on the disk) fail too; the trail goes on from the last
    durable entry."""
    with Store(str(tmp_path / "db"), KEY, create=True) as store:
        audit_entry(store, None, 1)
        make_batch = store._db.batch
        release = threading.Event()
        failing = {"left": 1}

        def fail() -> None:
            release.wait(5)  # while this fails slowly, another batch queues behind it
            raise StoreError("the disk is gone")

        def failing_batch(*, sync: bool) -> Any:
            raw = make_batch(sync=sync)
            if failing["left"]:
                failing["left"] -= 1
                return _Batch(raw, fail)
            return raw

        store._db.batch = failing_batch  # type: ignore[method-assign]
        errors: dict[int, str] = {}

        def writer(n: int) -> None:
            try:
                with store.write_batch() as wb:
                    store.put_json(wb, make_key("op", f"{n:04d}"), {"n": n})
                    audit_entry(store, wb, n)
            except StoreError as exc:
                errors[n] = str(exc)

        first = threading.Thread(target=writer, args=(2,))
        first.start()
        while not store._group_leading:
            time.sleep(0.01)
        second = threading.Thread(target=writer, args=(3,))
        second.start()
        while not store._group_pending:
            time.sleep(0.01)
        release.set()
        first.join()
        second.join()
        assert errors[2] == "the disk is gone"
        assert "an earlier store write failed (the disk is gone)" in errors[3], errors
        assert store.get_json(make_key("op", "0003")) is None
        writer(4)
        entries = list(store.export_audit())
        assert [e["requestId"] for e in entries] == ["req-1", "req-4"]
        assert verify_audit_chain(entries, head=store.audit_head()[1]) == 2


@pytest.mark.chain
def test_serve_killed_under_concurrent_creates_keeps_every_201_and_its_chain(
    w3: Web3, compiled: dict[str, CompiledContract], devchain: Any, backend: Backend, tmp_path: Path
) -> None:
    """SIGKILL `sijill serve` while 16 clients create records: once restarted, every record
    answered 201 reads back, and the audit trail verifies link by link."""
    keys, deployment = deploy_fresh(w3, compiled, tmp_path / "deployment.json")
    store = backend.new_store()
    data_dir, tokens = init_node(tmp_path, "REPD", keys["REPD"], store=store)
    server = start_server(data_dir, "REPD", keys["REPD"], tokens, devchain.rpc_url, deployment, store=store)
    created: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with server.client("officer") as officer:
            while not stop.is_set():
                try:
                    answer = officer.post("/v1/records", json={"recordType": "title", "record": title()})
                except httpx.TransportError:
                    return  # killed: what it acknowledged before is counted
                if answer.status_code == 201:
                    with lock:
                        created.append(answer.json()["links"]["self"])

    try:
        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(created) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        stop_server(server)
    assert len(created) >= 150, server.log_tail()
    with Store(store or data_dir / "store", KEY) as kept:
        entries = list(kept.export_audit())
        assert verify_audit_chain(entries) == len(entries)
        audited = {e["subject"] for e in entries if e["action"] == "record.create"}
    rpc = devchain.rpc_url
    restarted = start_server(data_dir, "REPD", keys["REPD"], tokens, rpc, deployment, store=store)
    try:
        with restarted.client("officer") as officer:
            for path in created:
                assert officer.get(path).status_code == 200, path
    finally:
        stop_server(restarted)
    assert len(audited) >= len(created)
