"""The fast path of validation gives what the schemas give, or steps aside.

`validate_record` first tries `ledger.records.fastpath.canonical_if_valid` and falls back to the
pydantic schemas. These tests hold the two to the same answers: on the example records, the
varied records, the test vectors' records and texts, and generated mutations of them (fields
dropped, added, retyped, dates out of range, shares that do not add up, odd Unicode...). Whenever
the fast path returns a record, the schemas return the same one (same keys in the same order,
same types, same JSON); whenever the schemas refuse a record, the fast path returns None and
`validate_record` raises the schemas' problems. (What the fast path rests on, the text check
`ledger.canonical.plainly_canonical` and the shares' integer sum, is tested in test_records.py.)
"""

from __future__ import annotations

import contextlib
import copy
import json
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.records import _SCHEMAS, RECORD_TYPES, RecordInvalid, validate_record
from ledger.records.examples import EXAMPLES, TODAY, make_national_id, varied_records
from ledger.records.fastpath import canonical_if_valid

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _vector_records() -> list[tuple[str, dict[str, Any]]]:
    fields = json.loads((VECTORS / "fields.json").read_text(encoding="utf-8"))
    return [(case["recordType"], case["record"]) for case in fields["records"]]


def _vector_texts() -> list[str]:
    canonical = json.loads((VECTORS / "canonical.json").read_text(encoding="utf-8"))
    characters = json.loads((VECTORS / "characters.json").read_text(encoding="utf-8"))
    texts = [case["input"] for case in canonical["text"]] + [case["output"] for case in canonical["text"]]
    texts += [case["text"] for case in characters["refused"]]
    return texts + [text for text in characters["accepted"] if isinstance(text, str)]


VALID: list[tuple[str, dict[str, Any]]] = [
    *((kind, make()) for kind, make in EXAMPLES.items()),
    *((kind, record) for kind in RECORD_TYPES for record in varied_records(kind, 60, seed=18)),
    *_vector_records(),
]
BY_TYPE = {kind: [record for k, record in VALID if k == kind] for kind in RECORD_TYPES}


def shape(value: Any) -> Any:
    """The exact types of a value, all the way down (`==` takes 1 == True, JSON takes () as [])."""
    if isinstance(value, dict):
        return ("dict", [(type(k).__name__, k, shape(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [shape(v) for v in value])
    return type(value).__name__


def outcome(validate: Any) -> tuple[Any, ...]:
    try:
        return ("valid", validate())
    except RecordInvalid as error:
        return ("invalid", error.record_type, error.problems, str(error))


def check_same_answers(record_type: str, data: Any, today: date = TODAY) -> str:
    """Assert the fast path, `validate_record` and the schemas alone agree on `data`; which path
    answered ("fast", "schemas") or "invalid"."""
    try:
        before = copy.deepcopy(data)
    except TypeError:  # a mappingproxy somewhere
        before = None
    schema = _SCHEMAS[record_type]
    as_dict = dict(data) if isinstance(data, Mapping) else data
    expected = outcome(lambda: schema.validate_with_schema(record_type, as_dict, today))
    fast = canonical_if_valid(record_type, as_dict, today)
    got = outcome(lambda: validate_record(record_type, data, today=today))
    assert got[0] == expected[0]
    if expected[0] == "invalid":
        assert fast is None
        assert got == expected
        return "invalid"
    assert got[1] == expected[1]
    assert shape(got[1]) == shape(expected[1])
    assert json.dumps(got[1], ensure_ascii=False) == json.dumps(expected[1], ensure_ascii=False)
    if before is not None:
        assert data == before  # the input is not modified
    return "schemas" if fast is None else "fast"


# --- valid records take the fast path, with the schemas' answer -----------------------------------


@pytest.mark.parametrize(("record_type", "record"), VALID, ids=lambda v: v if isinstance(v, str) else "")
def test_valid_records_take_the_fast_path_with_the_same_answer(record_type: str, record: Any) -> None:
    assert check_same_answers(record_type, record) == "fast"


def test_the_fast_path_covers_non_canonical_input() -> None:
    record = EXAMPLES["title"]()
    record["district"] = "  حي   شرق ـالمنصورة\u200f "
    record["owners"][0]["national_id"] = "٢٧٥٠٣٢٢١٢٠٤١٣٩"
    record["area_m2"] = "0125.50"
    record["owners"][0]["share"] = "01 / 2"
    record["registration_date"] = "٢٠١٩-٠٩-١٧"
    del record["unit_number"]
    assert check_same_answers("title", record) == "fast"
    married = EXAMPLES["marriage"]()
    del married["status"]["event_date"]
    assert check_same_answers("marriage", married) == "fast"
    divorced = EXAMPLES["marriage"]()
    divorced["status"] = {"state": "divorced", "event_date": "2023-07-20"}
    assert check_same_answers("marriage", divorced) == "fast"


@pytest.mark.parametrize("mapping", [MappingProxyType, OrderedDict])
def test_other_mappings_get_the_same_answer(mapping: Any) -> None:
    for record_type, make in EXAMPLES.items():
        check_same_answers(record_type, mapping(make()))


def test_list_limits_get_the_same_answer() -> None:
    def owners(count: int) -> list[dict[str, str]]:
        return [
            {
                "name": f"مالك {i}",
                "national_id": make_national_id(date(1950, 1, 1) + timedelta(days=i)),
                "share": f"1/{count}",
            }
            for i in range(count)
        ]

    encumbrance = EXAMPLES["title"]()["encumbrances"][0]
    for count, answer in ((1000, "fast"), (1001, "invalid")):
        title = EXAMPLES["title"]()
        title["owners"] = owners(count)
        assert check_same_answers("title", title) == answer
    for count, answer in ((100, "fast"), (101, "invalid")):
        title = EXAMPLES["title"]()
        title["encumbrances"] = [encumbrance] * count
        assert check_same_answers("title", title) == answer
    for count, answer in ((50, "fast"), (51, "invalid"), (0, "invalid")):
        commercial = EXAMPLES["commercial"]()
        commercial["activities"] = [f"{1000 + i:04d}" for i in range(count)]
        assert check_same_answers("commercial", commercial) == answer


# --- generated mutations: the same answer, whichever path gives it --------------------------------

SPECIAL_VALUES: list[Any] = [
    None, True, False, 0, 1, 2**64, -1, 1.5, float("nan"), "", " ", [], {}, ["4711"], {"a": 1}, (),
    "2026-11-27", "2026-11-28", "1799-12-31", "1800-01-01", "2021-02-29", "2024-02-29", "2021-5-10",
    " 2021-05-10 ", "٢٠٢١-٠٥-١٠", "2021-05-10T00:00:00", "1990-01-15", "1994-06-03", "2008-11-27",
    "1/2", "1/3", "2/3", "1/4", " 1 / 2 ", "01/02", "0/1", "3/2", "1/1", "12/24", "1/1000000000000",
    "1/1000000000001", "1" * 5000 + "/" + "1" * 5000, "½",
    "0", "00.10", "125.50", "-1", "1e3", "1,000", "125.555", "1" * 19, "0.001", "٥٠٠٠٠",
    "27503221204139", "27811091207223", "29001150123457", "29406032118624", "29001150123466",
    "٢٧٥٠٣٢٢١٢٠٤١٣٩", "2750322120413", "47503221204139", "27502301204139", "37503221204139",
    "27503228804139", make_national_id(date(2010, 1, 1), "02"), make_national_id(date(1990, 1, 15)),
    "88", "01", "1", "36", "35", "EGP", "egp", "EG", "0110", "0111", "9900", "9901", "4711", "٤٧١١",
    "residential", "married", "divorced", "active", "struck_off", "mortgage", "seizure", "llc", "other",
    "a\u0301", "\u0301", "\ud800", "\U0001f600", "ـ", "\u200b", "\u202e", "x" * 64, "x" * 65,
    "x" * 200, "x" * 201, "ب" * 500, "ب" * 501, "Nile", "Zoë", "Ωmega", "شركة", "Nile شركة", "  Nile  ",
    unicodedata.normalize("NFD", "سارة علي أحمد"), "مُحَمَّد", "A\u00a0B", "A\u3000B", "A\tB", "\u3164",
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
# Copies: a mutation may write into a value put in a record before (SPECIAL_VALUES holds {} and []).
values = st.one_of(
    st.sampled_from(SPECIAL_VALUES).map(copy.deepcopy), st.sampled_from(_vector_texts()), json_values
)


def places(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON value, the root first."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += places(item, (*at, index))
    return found


def at_path(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def mutated_records(draw: st.DrawFn) -> tuple[str, Any, date]:
    record_type = draw(st.sampled_from(RECORD_TYPES))
    record = copy.deepcopy(draw(st.sampled_from(BY_TYPE[record_type])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(places(record)))
        if not path:  # the record itself: its keys in another order
            record = dict(reversed(record.items()))
            continue
        parent, last = at_path(record, path[:-1]), path[-1]
        action = draw(
            st.sampled_from(
                ["drop", "extra", "replace", "graft", "duplicate", "retype", "swap-type", "reorder"]
            )
        )
        if action == "drop":
            del parent[last]
        elif action == "extra" and isinstance(parent, dict):
            key = draw(st.sampled_from(["extra", "Name", "", "unit_number", "event_date", 1]))
            parent[key] = draw(values)
        elif action == "replace":
            parent[last] = draw(values)
        elif action == "graft":  # the same place in another valid record: near-valid combinations
            other = draw(st.sampled_from(BY_TYPE[record_type]))
            with contextlib.suppress(KeyError, IndexError, TypeError):
                parent[last] = copy.deepcopy(at_path(other, path))
        elif action == "duplicate" and isinstance(parent, list):  # the same object: nothing writes to it
            parent.insert(draw(st.integers(0, len(parent))), parent[last])
        elif action == "retype":
            target = parent[last]
            if isinstance(target, dict):
                parent[last] = draw(st.sampled_from([MappingProxyType, OrderedDict, list]))(target)
            elif isinstance(target, list):
                parent[last] = tuple(target)
            elif isinstance(target, str):
                as_number = int(target) if target.isascii() and target.isdigit() else 0
                parent[last] = draw(st.sampled_from([target.encode("utf-8", "surrogatepass"), as_number]))
        elif action == "reorder" and isinstance(parent[last], dict):  # the output keeps schema order
            parent[last] = dict(reversed(parent[last].items()))
        elif action == "swap-type" and isinstance(parent, dict):
            parent[last] = type("Text", (str,), {})(parent[last]) if isinstance(parent[last], str) else None
    today = draw(st.sampled_from([TODAY, date(2023, 7, 20), date(2019, 9, 17), date(2000, 1, 1)]))
    return record_type, record, today


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_records())
def test_mutated_records_get_the_same_answer(case: tuple[str, Any, date]) -> None:
    record_type, record, today = case
    check_same_answers(record_type, record, today)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(RECORD_TYPES), json_values)
def test_arbitrary_json_gets_the_same_answer(record_type: str, data: Any) -> None:
    check_same_answers(record_type, data)
