"""The node's store on both backends: real LevelDB databases in tmp_path and real PostgreSQL
databases in a throwaway cluster (the `pg_cluster` fixture). Opening and schema, secrets at rest
and key rotation, atomic batches, counters, officer tokens, the audit trail: every test runs on
each backend, and `Where` gives it the raw access (and the bytes on disk) a tamperer or a
thief would have beneath the `Store`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import plyvel
import pytest
from pg_cluster import PgCluster

from node.errors import StoreError
from node.store import AUDIT_GENESIS, Store, hash_token, kek_id, make_key, verify_audit_chain
from node.store import store as store_module
from node.store.postgres import TABLE

KEK = bytes(range(32))
NEW_KEK = bytes(range(100, 132))
NAME = "فاطمة عبد الرحمن الزهراء"  # a record's personal data: must never reach the disk in clear
TOKEN = "officer-token-0123456789abcdefghijklmnop"
REPO = Path(__file__).resolve().parents[2]


class Where:
    """A test's store location on one backend, and the raw key-value access beneath `Store`."""

    def __init__(self, location: str, cluster: PgCluster | None = None, dbname: str = "") -> None:
        self.location, self.cluster, self.dbname = location, cluster, dbname

    def raw_put(self, key: bytes, value: bytes) -> None:
        if self.cluster is None:
            with closing(plyvel.DB(self.location, create_if_missing=True)) as raw:
                raw.put(key, value)
            return
        self.cluster.sql(
            self.dbname, f"CREATE TABLE IF NOT EXISTS {TABLE} (key bytea PRIMARY KEY, value bytea)"
        )
        upsert = f"INSERT INTO {TABLE} VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        self.cluster.sql(self.dbname, upsert, (key, value))

    def raw_get(self, key: bytes) -> bytes:
        if self.cluster is None:
            with closing(plyvel.DB(self.location)) as raw:
                value: bytes = raw.get(key)
                return value
        return bytes(self.cluster.sql(self.dbname, f"SELECT value FROM {TABLE} WHERE key = %s", (key,))[0][0])

    def created(self) -> bool:
        """Whether anything was made: the LevelDB directory, or the table."""
        if self.cluster is None:
            return Path(self.location).exists()
        return self.cluster.sql(self.dbname, "SELECT to_regclass(%s)", (TABLE,))[0][0] is not None

    def disk(self) -> bytes:
        """Every byte the backend wrote: LevelDB's files, or the cluster's files and a pg_dump."""
        if self.cluster is None:
            return b"".join(f.read_bytes() for f in sorted(Path(self.location).rglob("*")) if f.is_file())
        return self.cluster.files() + self.cluster.dump(self.dbname)


@pytest.fixture(params=["leveldb", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    if request.param == "leveldb":
        return Where(str(tmp_path / "node-db"))
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    uri = cluster.create_database()
    return Where(uri, cluster, uri.rsplit("/", 1)[1])


@pytest.fixture
def store(db: Where) -> Iterator[Store]:
    with Store(db.location, KEK, create=True) as opened:
        yield opened


def record_key(n: int) -> bytes:
    return make_key("record", "title", f"T-{n:04d}", f"{1:08x}")


def audit_entry(store: Store, wb: Any, n: int, **details: Any) -> int:
    return store.audit(
        wb,
        actor="officer:42",
        action="record.create",
        request_id=f"req-{n}",
        subject=f"title/T-{n}",
        at=1_700_000_000 + n,
        details=details or None,
    )


# -- opening and schema ----------------------------------------------------------------------


def test_fresh_store_is_created_then_reopened(db: Where) -> None:
    with Store(db.location, KEK, create=True) as created:
        assert created.schema_version == store_module.SCHEMA_VERSION == 1
        assert created.kek_id == kek_id(KEK) == hashlib.sha256(KEK).hexdigest()[:16]
        created.put_json(None, b"batch/ab", {"leaves": 3})
    with Store(db.location, KEK) as reopened:
        assert reopened.get_json(b"batch/ab") == {"leaves": 3}
        assert reopened.migrated_from is None
        assert reopened.get_json(b"meta/schema") == 1


def test_missing_store_is_not_created_without_create(db: Where) -> None:
    with pytest.raises(StoreError, match=r"there is no store at .*create=True"):
        Store(db.location, KEK)
    assert not db.created()


def test_other_database_is_refused(db: Where) -> None:
    db.raw_put(b"something", b"else")
    with pytest.raises(StoreError, match="not a Sijill store"):
        Store(db.location, KEK, create=True)


def test_newer_schema_is_refused_naming_both_versions(db: Where) -> None:
    Store(db.location, KEK, create=True).close()
    db.raw_put(b"meta/schema", b"7")
    with pytest.raises(StoreError, match="schema version 7, newer than this node's 1"):
        Store(db.location, KEK)


def test_older_schema_is_migrated_once(db: Where, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(db.location, KEK, create=True) as v1:
        v1.put_json(None, b"batch/01", {"format": "old"})
    runs: list[int] = []

    def one_to_two(store: Store) -> None:
        runs.append(store.schema_version)
        with store.write_batch() as wb:
            for key, batch in store.iter_json(b"batch/"):
                store.put_json(wb, key, {**batch, "format": "new"})

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(store_module.MIGRATIONS, 1, one_to_two)
    with Store(db.location, KEK) as v2:
        assert (v2.schema_version, v2.migrated_from) == (2, 1)
        assert v2.get_json(b"batch/01") == {"format": "new"}
        assert v2.get_json(b"meta/schema") == 2
    with Store(db.location, KEK) as again:
        assert again.migrated_from is None
    assert runs == [1]

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 3)
    with pytest.raises(StoreError, match="no migration from schema version 2 to 3"):
        Store(db.location, KEK)


def test_fresh_store_gets_the_current_schema(db: Where, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    with Store(db.location, KEK, create=True) as fresh:
        assert fresh.schema_version == 2 and fresh.migrated_from is None


def test_wrong_kek_is_refused_with_the_expected_id(db: Where) -> None:
    Store(db.location, KEK, create=True).close()
    expected = f"the key-encryption key does not match this store (expected kek id {kek_id(KEK)})"
    with pytest.raises(StoreError) as caught:
        Store(db.location, NEW_KEK)
    assert str(caught.value) == expected
    with pytest.raises(StoreError, match="must be 32 bytes"):
        Store(db.location, KEK[:16])


def test_second_process_is_refused(store: Store, db: Where) -> None:
    script = (
        "import sys\n"
        "from node.store import Store\n"
        "from node.errors import StoreError\n"
        "try:\n"
        f"    Store({db.location!r}, bytes(range(32)))\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 3, result.stderr
    assert "is in use by another process" in result.stdout
    assert "Traceback" not in result.stderr


def test_second_open_in_the_same_process_is_refused(store: Store, db: Where) -> None:
    with pytest.raises(StoreError, match="already open in this process"):
        Store(db.location, KEK)


# -- secrets at rest -----------------------------------------------------------------------------


def test_secrets_round_trip_and_never_reach_the_disk_in_clear(db: Where) -> None:
    fields = json.dumps({"owner": NAME, "salt": "9f" * 16}, ensure_ascii=False).encode()
    clear_word = "حي الزمالك"  # written in the clear on purpose: shows the scan sees the files
    with Store(db.location, KEK, create=True) as store:
        store.put_secret(None, record_key(1), fields)
        with store.write_batch() as wb:
            store.put_secret(wb, record_key(2), fields)
            store.put_json(wb, b"head/title/T-0002", {"district": clear_word})
        assert store.get_secret(record_key(1)) == store.get_secret(record_key(2)) == fields
        assert store.get_secret(record_key(3)) is None
    disk = db.disk()
    assert clear_word.encode() in disk
    assert NAME.encode() not in disk
    assert b"9f" * 16 not in disk
    with Store(db.location, KEK) as reopened:
        assert reopened.get_secret(record_key(1)) == fields
        blob = reopened.get_secret(record_key(2))
        assert blob is not None and json.loads(blob)["owner"] == NAME


def test_secret_moved_to_another_key_does_not_decrypt(db: Where) -> None:
    with Store(db.location, KEK, create=True) as store:
        store.put_secret(None, record_key(1), NAME.encode())
    db.raw_put(record_key(2), db.raw_get(record_key(1)))
    db.raw_put(record_key(3), b"\x02" + db.raw_get(record_key(1))[1:])
    with Store(db.location, KEK) as store:
        assert store.get_secret(record_key(1)) == NAME.encode()
        with pytest.raises(StoreError, match="secret at record/title/T-0002/00000001 does not decrypt"):
            store.get_secret(record_key(2))
        with pytest.raises(StoreError, match="has an unknown format"):
            store.get_secret(record_key(3))


def test_secrets_and_clear_values_are_kept_apart(store: Store) -> None:
    with pytest.raises(StoreError, match="write it with put_secret"):
        store.put_json(None, record_key(1), {"owner": NAME})
    with pytest.raises(StoreError, match="not under a secret prefix"):
        store.put_secret(None, b"batch/01", NAME.encode())
    store.put_secret(None, record_key(1), NAME.encode())
    with pytest.raises(StoreError, match="read it with get_secret"):
        store.get_json(record_key(1))
    with pytest.raises(StoreError, match="covers secrets"):
        list(store.iter_json(b"rec"))
    for managed in (b"audit/0000000000000001", b"seq/intake", b"token/ab", b"meta/datakey", b"meta/schema"):
        with pytest.raises(StoreError, match="only through the store's own methods"):
            store.put_json(None, managed, 1)
        with pytest.raises(StoreError, match="only through the store's own methods"):
            store.delete(None, managed)


def test_kek_rewrap_switches_the_key_that_opens_the_store(db: Where) -> None:
    with Store(db.location, KEK, create=True) as store:
        store.put_secret(None, record_key(1), NAME.encode())
        blob_before = next(store.iter_prefix(b"record/"))[1]
        assert store.rewrap_data_key(NEW_KEK) == kek_id(NEW_KEK) == store.kek_id
        assert next(store.iter_prefix(b"record/"))[1] == blob_before  # no record re-encrypted
        assert store.get_secret(record_key(1)) == NAME.encode()
    with pytest.raises(StoreError, match=f"expected kek id {kek_id(NEW_KEK)}"):
        Store(db.location, KEK)
    with Store(db.location, NEW_KEK) as store:
        assert store.get_secret(record_key(1)) == NAME.encode()


def test_data_key_rotation_reencrypts_every_secret(db: Where) -> None:
    secrets = {record_key(n): f"{NAME} {n}".encode() for n in range(25)}
    with Store(db.location, KEK, create=True) as store:
        with store.write_batch() as wb:
            for key, value in secrets.items():
                store.put_secret(wb, key, value)
        store.put_json(None, b"batch/01", {"leaves": 25})
        before = dict(store.iter_prefix(b"record/"))
        wrapped_before = store.get_json(b"meta/datakey")
        assert store.rotate_data_key(chunk_size=4) == 25
        after = dict(store.iter_prefix(b"record/"))
        assert all(after[key] != before[key] for key in secrets)
        assert {key: store.get_secret(key) for key in secrets} == secrets
        wrapped_after = store.get_json(b"meta/datakey")
        assert wrapped_after["current"] != wrapped_before["current"] and "pending" not in wrapped_after
    with Store(db.location, KEK) as reopened:
        assert {key: reopened.get_secret(key) for key in secrets} == secrets
        assert reopened.get_json(b"batch/01") == {"leaves": 25}


def test_interrupted_data_key_rotation_resumes(db: Where) -> None:
    keys = [make_key("record", "title", f"a{n}") for n in range(10)]
    with Store(db.location, KEK, create=True) as store:
        for key in keys:
            store.put_secret(None, key, key + NAME.encode())
    broken = make_key("record", "title", "a5x")  # sorts between a5 and a6: the third chunk
    db.raw_put(broken, db.raw_get(keys[0]))
    with Store(db.location, KEK) as store:
        with pytest.raises(StoreError, match="record/title/a5x does not decrypt: data key rotation stopped"):
            store.rotate_data_key(chunk_size=3)
        assert all(store.get_secret(key) == key + NAME.encode() for key in keys)
    with Store(db.location, KEK) as store:  # the new key was recorded: both keys still read
        assert all(store.get_secret(key) == key + NAME.encode() for key in keys)
        store.put_secret(None, make_key("record", "title", "b0"), b"written mid-rotation")
        store.delete(None, broken)
        assert store.rotate_data_key(chunk_size=3) == 4  # a6-a9; the rest were done or are new
    with Store(db.location, KEK) as store:
        assert all(store.get_secret(key) == key + NAME.encode() for key in keys)
        assert store.get_secret(make_key("record", "title", "b0")) == b"written mid-rotation"
        assert "pending" not in store.get_json(b"meta/datakey")


# -- batches, iteration, keys ----------------------------------------------------------------


def test_write_batch_is_all_or_nothing(db: Where) -> None:
    with Store(db.location, KEK, create=True) as store:
        with pytest.raises(RuntimeError, match="crash"), store.write_batch() as wb:
            store.put_json(wb, b"batch/01", {"leaves": 1})
            store.put_secret(wb, record_key(1), NAME.encode())
            store.next_sequence(wb, "intake")
            audit_entry(store, wb, 1)
            raise RuntimeError("crash in the middle of the batch")
        assert store.get_json(b"batch/01") is None and store.get_secret(record_key(1)) is None
        assert list(store.export_audit()) == [] and store.audit_head() == (0, AUDIT_GENESIS)
        for late_write in (
            lambda: store.put_json(wb, b"batch/02", {}),
            lambda: store.next_sequence(wb, "intake"),
            lambda: audit_entry(store, wb, 9),
        ):
            with pytest.raises(StoreError, match="write batch is finished"):
                late_write()
        with store.write_batch() as wb:
            store.put_json(wb, b"batch/01", {"leaves": 1})
            assert store.get_json(b"batch/01") is None  # not visible before the commit
        assert store.get_json(b"batch/01") == {"leaves": 1}
        assert audit_entry(store, None, 2) == 1  # the abandoned entry left no gap
    with Store(db.location, KEK) as store:
        # LevelDB: the abandoned number was never persisted. PostgreSQL hands numbers out at once,
        # to any of several processes: the abandoned one is a gap, never a duplicate.
        assert store.next_sequence(None, "intake") == (1 if db.cluster is None else 2)


def test_iter_prefix_order_bounds_and_start(store: Store) -> None:
    for n in (3, 1, 2, 10):
        store.put_json(None, b"log/%016x" % n, n)
    store.put_json(None, b"logx", "outside")
    store.put_json(None, b"lo", "outside")
    assert [v for _, v in store.iter_json(b"log/")] == [1, 2, 3, 10]
    assert [v for _, v in store.iter_json(b"log/", reverse=True)] == [10, 3, 2, 1]
    assert [v for _, v in store.iter_json(b"log/", start=b"log/%016x" % 2)] == [2, 3, 10]
    assert [v for _, v in store.iter_json(b"log/", reverse=True, start=b"log/%016x" % 3)] == [3, 2, 1]
    assert [k for k, _ in store.iter_prefix(b"log/")] == [b"log/%016x" % n for n in (1, 2, 3, 10)]
    assert [v for _, v in store.iter_json(b"log/", limit=2)] == [1, 2]
    assert [k for k, _ in store.iter_prefix(b"log/", reverse=True, limit=1)] == [b"log/%016x" % 10]
    with pytest.raises(StoreError, match="not under the prefix"):
        store.iter_prefix(b"log/", start=b"batch/")
    store.delete(None, b"log/%016x" % 2)
    assert [v for _, v in store.iter_json(b"log/")] == [1, 3, 10]
    with store.write_batch() as wb:  # more than one page (PostgreSQL reads 500 rows at a time)
        for n in range(1234):
            store.put(wb, b"page/%016x" % n, b"%d" % n)
    assert [int(v) for _, v in store.iter_prefix(b"page/")] == list(range(1234))
    assert [int(v) for _, v in store.iter_prefix(b"page/", limit=700)] == list(range(700))
    backwards = store.iter_prefix(b"page/", reverse=True, limit=600)
    assert [int(v) for _, v in backwards] == list(range(1233, 633, -1))
    assert list(store.iter_prefix(b"page/", limit=0)) == []


def test_clear_bytes_round_trip(store: Store) -> None:
    leaf = bytes(range(32))
    with store.write_batch() as wb:
        store.put(wb, b"queue/title/%016x" % 1, leaf)
    assert store.get(b"queue/title/%016x" % 1) == leaf and store.get(b"queue/title/x") is None
    store.put_secret(None, record_key(1), NAME.encode())
    with pytest.raises(StoreError, match="write it with put_secret"):
        store.put(None, record_key(2), leaf)
    with pytest.raises(StoreError, match="read it with get_secret"):
        store.get(record_key(1))


def test_make_key_checks_its_parts() -> None:
    assert make_key("queue", "title", f"{7:016x}") == b"queue/title/0000000000000007"
    for bad in ("", "a/b", "سجل", "tab\t"):
        with pytest.raises(StoreError, match="printable ASCII without '/'"):
            make_key("record", bad)


# -- counters -----------------------------------------------------------------------------------


def test_counters_continue_across_reopen(db: Where) -> None:
    with Store(db.location, KEK, create=True) as store:
        assert [store.next_sequence(None, "intake") for _ in range(2)] == [1, 2]
        with store.write_batch() as wb:
            assert store.next_sequence(wb, "intake") == 3
            assert store.next_sequence(wb, "log") == 1
            assert store.next_sequence(wb, "queue/title") == 1
        with pytest.raises(StoreError, match="printable ASCII without '/'"):
            store.next_sequence(None, "queue//title")
    with Store(db.location, KEK) as store:
        assert store.next_sequence(None, "intake") == 4
        assert store.next_sequence(None, "log") == 2
        if db.cluster is None:
            assert store.next_sequence(None, "queue/title") == 2
            assert store.get_json(b"seq/queue/title") == 2
        else:  # PostgreSQL reserves a queue's numbers a block at a time: a restart skips the rest
            assert [store.next_sequence(None, "queue/title") for _ in range(2)] == [65, 66]
            assert store.get_json(b"seq/queue/title") == 128


def test_batches_committed_out_of_order_never_reuse_a_number(db: Where) -> None:
    with Store(db.location, KEK, create=True) as store:
        with store.write_batch() as first:
            assert store.next_sequence(first, "intake") == 1
            with store.write_batch() as second:
                assert store.next_sequence(second, "intake") == 2
        assert store.get_json(b"seq/intake") == 2
    with Store(db.location, KEK) as store:
        assert store.next_sequence(None, "intake") == 3


def test_concurrent_sequences_are_unique(db: Where) -> None:
    taken: list[int] = []
    lock = threading.Lock()
    with Store(db.location, KEK, create=True, sync=False) as store:

        def worker(n: int) -> None:
            mine = []
            for i in range(200):
                if (n + i) % 2:
                    mine.append(store.next_sequence(None, "intake"))
                else:
                    with store.write_batch() as wb:
                        mine.append(store.next_sequence(wb, "intake"))
            with lock:
                taken.extend(mine)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(taken) == list(range(1, 1601))
    with Store(db.location, KEK) as store:
        assert store.next_sequence(None, "intake") == 1601


# -- officer tokens ------------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_expire(db: Where) -> None:
    officer = {"id": "officer:42", "name": "Karim", "agency": "REPD", "roles": ["clerk"]}
    with Store(db.location, KEK, create=True) as store:
        digest = store.add_token(TOKEN, officer, expires_at=2_000)
        assert digest == hash_token(TOKEN)
        store.add_token("another-officer-token-abcdefghijklmnopq", {"id": "officer:7"}, expires_at=None)
        assert store.find_token(TOKEN, now=1_999) == officer
        assert store.find_token(TOKEN, now=2_000) is None
        assert store.find_token(TOKEN + "x", now=0) is None
        with pytest.raises(StoreError, match="already registered"):
            store.add_token(TOKEN, officer, expires_at=None)
        with pytest.raises(StoreError, match="at least 32 random characters"):
            store.add_token("short", officer, expires_at=None)
        listed = store.list_tokens()
        assert sorted(t["officer"]["id"] for t in listed) == ["officer:42", "officer:7"]
        assert TOKEN not in json.dumps(listed)
        mine = next(t for t in listed if t["officer"]["id"] == "officer:42")
        assert mine == {"tokenId": digest[:16], "officer": officer, "expiresAt": 2_000, "revoked": False}
    assert TOKEN.encode() not in db.disk()


def test_revoked_token_is_no_longer_found(store: Store) -> None:
    digest = store.add_token(TOKEN, {"id": "officer:42"}, expires_at=None)
    with pytest.raises(StoreError, match="not a token hash"):
        store.revoke_token("xyz")
    with pytest.raises(StoreError, match="no token match"):
        store.revoke_token("00000000")
    assert store.revoke_token(digest[:16]) == digest
    assert store.find_token(TOKEN, now=0) is None
    assert store.list_tokens()[0]["revoked"] is True


# -- audit trail -------------------------------------------------------------------------------


def test_audit_trail_is_ordered_and_chained(db: Where) -> None:
    with Store(db.location, KEK, create=True) as store:
        assert audit_entry(store, None, 1) == 1
        with store.write_batch() as wb:
            store.put_json(wb, b"head/title/T-2", {"version": 1})
            assert audit_entry(store, wb, 2, fields=3) == 2
            assert audit_entry(store, wb, 3) == 3
        head = store.audit_head()
    with Store(db.location, KEK) as store:  # the chain continues after a restart
        assert store.audit_head() == head
        assert audit_entry(store, None, 4) == 4
        entries = list(store.export_audit())
        assert [e["seq"] for e in entries] == [1, 2, 3, 4]
        assert entries[0]["prev"] == AUDIT_GENESIS
        assert entries[1] == {
            "seq": 2,
            "at": 1_700_000_002,
            "actor": "officer:42",
            "action": "record.create",
            "requestId": "req-2",
            "subject": "title/T-2",
            "details": {"fields": 3},
            "prev": entries[1]["prev"],
        }
        assert verify_audit_chain(entries, head=store.audit_head()[1]) == 4
        assert verify_audit_chain(store.export_audit(start_seq=3)) == 2


def test_tampered_audit_export_is_detected(store: Store) -> None:
    for n in range(1, 6):
        audit_entry(store, None, n)
    entries = list(store.export_audit())
    altered = [dict(e) for e in entries]
    altered[1]["actor"] = "officer:7"
    with pytest.raises(StoreError, match="audit entry 3 does not chain to entry 2"):
        verify_audit_chain(altered)
    with pytest.raises(StoreError, match="audit entry 4 follows entry 2: entries are missing"):
        verify_audit_chain(entries[:2] + entries[3:])
    with pytest.raises(StoreError, match="entry 1 does not start the chain"):
        verify_audit_chain([{**entries[0], "prev": "ab" * 32}, *entries[1:]])
    last_altered = [*entries[:4], {**entries[4], "subject": "title/other"}]
    assert verify_audit_chain(last_altered) == 5  # the last link needs the head to be checked
    with pytest.raises(StoreError, match="does not hash to the expected head"):
        verify_audit_chain(last_altered, head=store.audit_head()[1])


def test_bad_audit_entries_are_refused_without_holding_the_trail(store: Store) -> None:
    with pytest.raises(StoreError, match="not canonical JSON"):
        audit_entry(store, None, 1, ratio=0.5)
    with store.write_batch() as outer:
        audit_entry(store, outer, 1)
        with (
            pytest.raises(StoreError, match="already has an audit entry in another open write batch"),
            store.write_batch() as inner,
        ):
            audit_entry(store, inner, 2)
    assert audit_entry(store, None, 3) == 2
    assert verify_audit_chain(store.export_audit()) == 2


def test_concurrent_audit_entries_form_one_chain(store: Store) -> None:
    def worker(n: int) -> None:
        for i in range(25):
            with store.write_batch() as wb:
                store.put_json(wb, make_key("op", f"{n:02d}{i:02d}"), {"n": n})
                audit_entry(store, wb, n * 100 + i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = list(store.export_audit())
    assert [e["seq"] for e in entries] == list(range(1, 201))
    assert verify_audit_chain(entries, head=store.audit_head()[1]) == 200


def test_the_queue_count_follows_every_commit_and_survives_a_reopen(db: Where) -> None:
    """`queued_leaves` is what /metrics and /readyz report: kept by enqueue and dequeue under
    concurrent writers, unchanged by an abandoned batch, and counted again on open."""
    with Store(db.location, KEK, create=True) as store:

        def writer(kind: str) -> None:
            for n in range(50):
                with store.write_batch() as wb:
                    for i in range(20):
                        store.enqueue(wb, kind, hashlib.sha256(f"{kind}{n}/{i}".encode()).digest())

        threads = [threading.Thread(target=writer, args=(kind,)) for kind in ("title", "marriage", "title")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.queued_leaves == 3000 == sum(1 for _ in store.iter_prefix(b"queue/"))
        with pytest.raises(RuntimeError), store.write_batch() as wb:
            store.enqueue(wb, "title", bytes(32))
            raise RuntimeError("abandoned")
        assert store.queued_leaves == 3000
        with store.write_batch() as wb:
            for key, _ in store.iter_prefix(b"queue/title/", limit=500):
                store.dequeue(wb, key)
        assert store.queued_leaves == 2500
        with pytest.raises(StoreError, match="not a queue entry"), store.write_batch() as wb:
            store.dequeue(wb, b"log/0000000000000001")
    with Store(db.location, KEK) as reopened:
        assert reopened.queued_leaves == 2500 == sum(1 for _ in reopened.iter_prefix(b"queue/"))


# -- PostgreSQL only ---------------------------------------------------------------------------


def test_postgresql_messages_and_logs_never_show_the_password(pg_cluster: PgCluster) -> None:
    uri = pg_cluster.create_database()
    conninfo = f"postgresql:host=127.0.0.1 port={pg_cluster.port} dbname=nothere user=postgres "
    failures = {
        "cannot be opened: .*password authentication failed": uri.replace(pg_cluster.password, "not-it"),
        "there is no store at postgresql://postgres@127.0.0.1": uri,
        'database "nothere" does not exist': conninfo + f"password={pg_cluster.password}",
    }
    for expected, location in failures.items():
        with pytest.raises(StoreError, match=expected) as caught:
            Store(location, KEK)
        assert pg_cluster.password not in str(caught.value)
    with Store(uri, KEK, create=True) as store:
        assert store.where == f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{uri.rsplit('/', 1)[1]}"
        with pytest.raises(StoreError, match=r"already open in this process") as caught:
            Store(uri, KEK)
        assert pg_cluster.password not in str(caught.value)
    assert pg_cluster.password not in pg_cluster.log()


SHARING_WRITER = """
import sys
from node.store import Store
with Store(sys.argv[1], bytes(range(32)), exclusive=False) as store:
    for i in range(int(sys.argv[3])):
        with store.write_batch() as wb:
            number = store.next_sequence(wb, "intake")
            store.put_json(wb, b"op/" + sys.argv[2].encode() + b"/%016x" % number, {"n": number})
            store.enqueue(wb, "title", number.to_bytes(32, "big"))
            store.audit(wb, actor=sys.argv[2], action="op", request_id=str(i), subject=str(number), at=i)
"""


def test_processes_sharing_a_postgresql_store_keep_its_counters_and_chain(pg_cluster: PgCluster) -> None:
    """Three processes of one node (`exclusive=False`, as `sijill serve` opens a PostgreSQL
    store) write at once: no number is handed out twice, and the audit trail is one chain,
    numbered in commit order without gaps."""
    uri = pg_cluster.create_database()
    Store(uri, KEK, create=True).close()
    with Store(uri, KEK, exclusive=False) as node:
        tools = [
            subprocess.Popen([sys.executable, "-c", SHARING_WRITER, uri, f"tool{n}", "60"], cwd=REPO)
            for n in (1, 2)
        ]

        def node_writer(n: int) -> None:
            for _ in range(30):
                with node.write_batch() as wb:
                    number = node.next_sequence(wb, "intake")
                    node.put_json(wb, b"op/node%d/%016x" % (n, number), {"n": number})
                    node.enqueue(wb, "title", number.to_bytes(32, "big"))
                    audit_entry(node, wb, number)

        threads = [threading.Thread(target=node_writer, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [tool.wait(timeout=120) for tool in tools] == [0, 0]
        numbers = [value["n"] for _, value in node.iter_json(b"op/")]
        assert sorted(numbers) == list(range(1, 181))
        entries = list(node.export_audit())
        assert verify_audit_chain(entries, head=node.audit_head()[1]) == 180
        assert {e["actor"] for e in entries} == {"officer:42", "tool1", "tool2"}
        assert node.audit_head()[0] == 180
        # Queue numbers come in blocks per process: none taken twice (a key written twice would
        # leave fewer entries), and the count takes in the other processes' commits.
        leaves = sorted(int.from_bytes(leaf, "big") for _, leaf in node.iter_prefix(b"queue/title/"))
        assert leaves == list(range(1, 181))
        time.sleep(1.1)
        assert node.queued_leaves == 180


def test_config_show_hides_the_store_password() -> None:
    secret = "s3cret-" + "x" * 12
    env = {"SIJILL_STORE": f"postgresql://repd:{secret}@db1:5432,db2/sijill?target_session_attrs=read-write"}
    shown = subprocess.run(
        [sys.executable, "-m", "cli", "config", "show", "serve"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        check=True,
    ).stdout
    assert "postgresql://repd:***@db1:5432,db2/sijill" in shown and secret not in shown


def test_a_postgresql_server_restart_fails_calls_clearly_and_the_store_goes_on() -> None:
    """Calls while the server is down fail with a StoreError naming the database (never its
    password); once it is back, the same open store reads and writes again."""
    with PgCluster() as cluster:
        uri = cluster.create_database()
        with Store(uri, KEK, create=True) as store:
            store.put_json(None, b"batch/01", {"before": True})
            cluster.down()
            named = rf"the store at postgresql://postgres@127\.0\.0\.1:{cluster.port}/t1\b"
            for call in (lambda: store.get_json(b"batch/01"), lambda: audit_entry(store, None, 1)):
                with pytest.raises(StoreError, match=named) as e:
                    call()
                assert cluster.password not in str(e.value)
            cluster.up()
            deadline = time.monotonic() + 30
            while True:  # the pool replaces the connections the restart broke
                try:
                    assert store.get_json(b"batch/01") == {"before": True}
                    break
                except StoreError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            assert audit_entry(store, None, 2) == 1  # the failed append left nothing behind
            assert verify_audit_chain(store.export_audit(), head=store.audit_head()[1]) == 1


def test_a_leveldb_store_path_in_the_config_file_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sijill.toml").write_text('[serve]\nstore = "leveldb:stores/repd"\n')
    shown = subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(tmp_path / "sijill.toml"), "config", "show", "serve"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    assert f"leveldb:{tmp_path / 'stores' / 'repd'}" in shown


def test_an_audit_trail_lock_held_elsewhere_fails_the_batch_after_lock_timeout(
    pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from node.store import postgres
    from node.store.audit import AUDIT_LOCK

    monkeypatch.setattr(postgres, "LOCK_TIMEOUT", 0.5)
    uri = pg_cluster.create_database()
    with Store(uri, KEK, create=True) as store, psycopg.connect(uri, autocommit=True) as hung:
        hung.execute("SELECT pg_advisory_lock(%s)", (AUDIT_LOCK,))  # a process that appends, stuck
        with pytest.raises(StoreError, match=r"lock failed: .*lock timeout"), store.write_batch() as wb:
            store.put_json(wb, b"batch/01", {"leaves": 1})
            audit_entry(store, wb, 1)
        assert store.get_json(b"batch/01") is None
        hung.execute("SELECT pg_advisory_unlock(%s)", (AUDIT_LOCK,))
        assert audit_entry(store, None, 2) == 1  # neither the trail nor the thread lock was left held


def test_only_postgresql_is_shared(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="admits one process at a time"):
        Store(tmp_path / "db", KEK, create=True, exclusive=False)


def test_node_processes_share_a_postgresql_store_that_tools_take_alone(pg_cluster: PgCluster) -> None:
    """Node processes open it shared; a tool that needs it alone (exclusive) is refused while
    one runs, and a node is refused while such a tool holds it."""
    uri = pg_cluster.create_database()
    # node init, say, holds it alone
    with Store(uri, KEK, create=True), pytest.raises(StoreError, match="held exclusively by another process"):
        Store(uri, KEK, exclusive=False)
    # two node processes
    with (
        Store(uri, KEK, exclusive=False),
        Store(uri, KEK, exclusive=False),
        pytest.raises(StoreError, match="in use by another process"),
    ):
        Store(uri, KEK)
    Store(uri, KEK).close()  # every node gone: a tool opens it again


def test_many_values_are_read_together_in_order(store: Store) -> None:
    keys = [b"leaf/%04d" % i for i in range(3000)]
    with store.write_batch() as wb:
        for i, key in enumerate(keys[::2]):
            store.put_json(wb, key, {"n": i})
    wanted = [keys[5], keys[4], keys[0], b"leaf/missing", keys[2998]]
    assert store.get_many_json(wanted) == [None, {"n": 2}, {"n": 0}, None, {"n": 1499}]
    assert store.get_many_json(keys) == [{"n": i // 2} if i % 2 == 0 else None for i in range(3000)]
    with pytest.raises(StoreError, match="one by one"):
        store.get_many_json([b"record/title/x/00000001"])
