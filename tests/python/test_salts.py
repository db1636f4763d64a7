"""Field salts cannot be guessed (issue 9): 128 bits from the OS, never reused.

A field hash is keccak256 of a tag, the salt, the path and the value; without the salt a
national ID (14 digits, most of them fixed by a birth date) would be found by trying every
candidate. So the salts must be unpredictable and never repeat: each is 16 bytes of
`os.urandom`, fresh for every field of every version.
"""

from __future__ import annotations

import inspect
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.fields import SALT_BYTES, RecordKey, new_salts, seal_record
from ledger.receipts import ReceiptDomain
from ledger.records.examples import title_example
from node.authority import Authority
from node.intake import Intake
from node.store import Store

SALTS = 1_000_000
FIELDS_PER_RECORD = 1_000  # salts are drawn per record, as seal_record does: 1,000 records here
#: Chance that a real random source fails the bit-balance check in one run.
FALSE_ALARM = 1e-9


def bit_balance_bound(count: int, positions: int = 8 * SALT_BYTES, false_alarm: float = FALSE_ALARM) -> int:
    """How far from count/2 the number of salts with a given bit set may be.

    For independent fair bits, Hoeffding's inequality bounds one position's deviation:
    P(|X - n/2| >= t) <= 2 exp(-2 t^2 / n); over all positions (union bound) the chance of any
    false alarm is at most `positions` times that. Solving 2 * positions * exp(-2 t^2 / n) =
    false_alarm for t: for a million salts and 1e-9, t = 3,625 (0.36 % of n), while a counter
    or a constant leaves its high bits fixed, at 0 or n."""
    return math.ceil(math.sqrt(count * math.log(2 * positions / false_alarm) / 2))


def bit_counts(pool: bytes, width: int = SALT_BYTES) -> list[int]:
    """For each bit position of `width`-byte items laid end to end, how many items have it set."""
    counts = []
    for byte in range(width):
        column = pool[byte::width]
        for bit in range(8):
            mask = 0x80 >> bit
            table = bytes(1 if value & mask else 0 for value in range(256))
            counts.append(column.translate(table).count(1))
    return counts


def balanced(pool: bytes) -> bool:
    count = len(pool) // SALT_BYTES
    bound = bit_balance_bound(count)
    return all(abs(c - count / 2) <= bound for c in bit_counts(pool))


def test_a_million_salts_are_16_bytes_unique_and_balanced() -> None:
    started = time.perf_counter()
    paths = [f"/owners/{i}/national_id" for i in range(FIELDS_PER_RECORD)]
    pool = bytearray()
    for _ in range(SALTS // FIELDS_PER_RECORD):
        salts = new_salts(paths)
        assert list(salts) == paths
        for salt in salts.values():
            assert type(salt) is bytes and len(salt) == SALT_BYTES
            pool += salt
    drawn = bytes(pool)
    assert len({drawn[i : i + SALT_BYTES] for i in range(0, len(drawn), SALT_BYTES)}) == SALTS
    assert bit_balance_bound(SALTS) == 3625
    counts = bit_counts(drawn)
    worst = max(abs(c - SALTS / 2) for c in counts)
    assert len(counts) == 128 and worst <= bit_balance_bound(SALTS), sorted(counts)[:3] + sorted(counts)[-3:]
    assert time.perf_counter() - started < 30


def test_the_balance_check_catches_a_counter_or_a_constant() -> None:
    """The same check, given what a broken source would produce, fails."""
    counter = b"".join(i.to_bytes(SALT_BYTES, "big") for i in range(SALTS))
    assert not balanced(counter)
    offset = secrets.randbits(128 - 21)  # a counter started anywhere still fixes its high bits
    assert not balanced(b"".join((offset + i).to_bytes(SALT_BYTES, "big") for i in range(1 << 16)))
    constant = new_salts([f"/{i}" for i in range(1 << 16)], random_bytes=lambda n: b"\x5a" * n)
    assert len(set(constant.values())) == 1 and not balanced(b"".join(constant.values()))
    assert balanced(os.urandom(SALT_BYTES * (1 << 16)))


def test_the_default_source_is_the_os() -> None:
    assert inspect.signature(new_salts).parameters["random_bytes"].default is os.urandom
    drawn: list[int] = []

    def recording(n: int) -> bytes:
        drawn.append(n)
        return os.urandom(n)

    # seal_record draws one salt per field through new_salts' default source.
    defaults = new_salts.__defaults__
    try:
        new_salts.__defaults__ = (recording,)
        sealed = seal_record(RecordKey("REPD", "title", "01ABC", 1), title_example())
    finally:
        new_salts.__defaults__ = defaults
    assert drawn == [SALT_BYTES * len(sealed.fields)]


def test_two_seals_of_the_same_record_share_no_salt() -> None:
    key = RecordKey("REPD", "title", "01ABC", 1)
    first, second = seal_record(key, title_example()), seal_record(key, title_example())
    assert first.fields == second.fields and first.leaf != second.leaf
    assert not set(first.salts.values()) & set(second.salts.values())
    assert all(first.field_hashes[p] != second.field_hashes[p] for p in first.fields)


def test_an_amended_version_gets_fresh_salts_for_every_field(
    tmp_path: Path, contracts: dict[str, Any], accounts: list[LocalAccount]
) -> None:
    """Through a node's intake on a real LevelDB store, asking the demo registry on anvil what
    REPD may anchor: version 2 of a record, even with the
    same content, reuses none of version 1's salts (a reused salt would let whoever saw one
    version's disclosed field test guesses against the other's hidden one)."""
    with Store(tmp_path / "store", secrets.token_bytes(32), create=True) as store:
        intake = Intake(
            store,
            agency="REPD",
            signer=accounts[1],
            domain=ReceiptDomain(31337, "0x" + "11" * 20),
            registry=contracts["AgencyRegistry"].address,
            authority=Authority(contracts["AgencyRegistry"], "REPD", accounts[1].address),
        )
        record = title_example()
        accepted = intake.submit("title", record, actor="test", request_id="r1")
        # Version 2 has version 1's content; version 3 changes one field.
        for version, data in enumerate((record, dict(record, title_number="2019/99999")), start=1):
            intake.amend(
                "title",
                accepted.record_id,
                expected_version=version,
                data=data,
                reason=1,
                actor="test",
                request_id=f"r{version + 1}",
            )
        versions = [intake.stored("title", accepted.record_id, v).sealed for v in (1, 2, 3)]
    assert versions[0].fields == versions[1].fields
    salts = [set(v.salts.values()) for v in versions]
    # None shared within one version, nor between two.
    assert all(len(s) == len(v.fields) for s, v in zip(salts, versions, strict=True))
    assert not salts[0] & salts[1] and not salts[0] & salts[2] and not salts[1] & salts[2]
    assert all(len(salt) == SALT_BYTES for s in salts for salt in s)
