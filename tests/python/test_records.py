"""Record schemas: valid records come back canonical; every rule rejects with its path and rule."""

from __future__ import annotations

import json
import sys
import unicodedata
from datetime import date, datetime, timedelta
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import (
    canonical_json,
    is_canonical_text,
    normalize_text,
    plainly_canonical,
    refused_character,
)
from ledger.codes import KNOWN_RECORD_TYPES
from ledger.errors import LedgerError
from ledger.records import RECORD_TYPES, FieldProblem, RecordInvalid, validate_record
from ledger.records.common import shares_add_up_to_one
from ledger.records.examples import (
    EXAMPLES,
    TODAY,
    commercial_example,
    make_national_id,
    marriage_example,
    title_example,
)

Record = dict[str, Any]


def problems(record_type: str, data: Any) -> list[tuple[str, str]]:
    """(path, rule) of every problem of an invalid record."""
    with pytest.raises(RecordInvalid) as caught:
        validate_record(record_type, data, today=TODAY)
    return [(p.path, p.rule) for p in caught.value.problems]


def has_arabic(text: str) -> bool:
    return any(unicodedata.name(c, "").startswith("ARABIC LETTER") for c in text)


def walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *(x for v in value.values() for x in walk(v))]
    if isinstance(value, list):
        return [value, *(x for v in value for x in walk(v))]
    return [value]


# --- valid records -------------------------------------------------------------------------------


def test_record_types_are_the_known_ones() -> None:
    assert RECORD_TYPES == ("title", "marriage", "commercial") == KNOWN_RECORD_TYPES


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_examples_are_valid_and_already_canonical(record_type: str) -> None:
    example = EXAMPLES[record_type]()
    assert validate_record(record_type, example, today=TODAY) == example


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_output_is_plain_json_of_canonical_strings(record_type: str) -> None:
    out = validate_record(record_type, EXAMPLES[record_type](), today=TODAY)
    for value in walk(out):
        assert type(value) in (dict, list, str, type(None)), value
        if isinstance(value, str):
            assert is_canonical_text(value)
        if isinstance(value, dict):
            assert all(isinstance(key, str) for key in value)
    canonical_json(out)  # no float, date or Decimal anywhere
    assert json.loads(json.dumps(out)) == out


def test_input_is_normalised_to_canonical_form() -> None:
    title = title_example()
    title["title_number"] = "٢٠١٩/٤٥٨٧٣"
    title["governorate"] = "١٢"
    title["district"] = "  حي   شرق\tالمنصــــورة "
    title["area_m2"] = "0125.50"
    title["owners"][0]["name"] = "محمـــد \u200fعبد الرحمن  السيد"
    title["owners"][0]["national_id"] = "٢٧٥٠٣٢٢١٢٠٤١٣٩"
    title["owners"][0]["share"] = "٢/٤"
    title["owners"][1]["share"] = "01 / 4"
    title["encumbrances"][0]["holder"] = "البنك الأهلي المصري"
    title["registration_date"] = "٢٠١٩-٠٩-١٧"
    title["registry_office"] = "م\u06a9تب الشهر العقاري بالمنصورة"  # keheh for kaf
    out = validate_record("title", title, today=TODAY)
    assert out["title_number"] == "2019/45873"
    assert out["governorate"] == "12"
    assert out["district"] == "حي شرق المنصورة"
    assert out["area_m2"] == "125.5"
    assert out["owners"][0] == {
        "name": "محمد عبد الرحمن السيد",
        "national_id": "27503221204139",
        "share": "2/4",
    }
    assert out["owners"][1]["share"] == "1/4"
    assert out["registration_date"] == "2019-09-17"
    assert out["registry_office"] == title_example()["registry_office"]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("125.50", "125.5"),
        ("100.00", "100"),
        ("100", "100"),
        ("007", "7"),
        ("0.50", "0.5"),
        ("٣٠٠٠٠٫٠".replace("٫", "."), "30000"),
        ("000.000", "0"),
        ("123456789012345678.123", "123456789012345678.123"),
    ],
)
def test_decimals_come_back_canonical(given: str, canonical: str) -> None:
    record = marriage_example()
    record["dower"]["deferred"] = given
    assert validate_record("marriage", record, today=TODAY)["dower"]["deferred"] == canonical


def test_optional_fields_come_back_as_null_when_absent() -> None:
    title = title_example()
    del title["unit_number"]
    assert validate_record("title", title, today=TODAY)["unit_number"] is None
    title["unit_number"] = None
    assert validate_record("title", title, today=TODAY)["unit_number"] is None
    marriage = marriage_example()
    del marriage["status"]["event_date"]
    assert validate_record("marriage", marriage, today=TODAY)["status"] == {
        "state": "married",
        "event_date": None,
    }


def test_a_divorce_comes_back_with_its_date() -> None:
    record = marriage_example()
    record["status"] = {"state": "divorced", "event_date": "2025-02-01"}
    assert validate_record("marriage", record, today=TODAY)["status"]["event_date"] == "2025-02-01"


def test_boundaries_that_pass() -> None:
    title = title_example()
    title["title_number"] = "x" * 64
    title["district"] = "ب" * 200
    title["registration_date"] = TODAY.isoformat()
    title["encumbrances"] = []
    title["area_m2"] = "0.01"
    title["owners"][0]["share"] = "1/2"
    validate_record("title", title, today=TODAY)
    marriage = marriage_example()
    marriage["place"] = "ا" * 500
    marriage["dower"] = {"immediate": "0", "deferred": "0.125", "currency": "KWD"}
    validate_record("marriage", marriage, today=TODAY)
    commercial = commercial_example()
    commercial["trade_name_en"] = "Café Misr 2000 (S.A.E.)"
    commercial["trade_name_ar"] = "مقهى مصر Misr 2000"
    commercial["activities"] = ["0111", "9900"]
    commercial["capital"]["amount"] = "0"
    validate_record("commercial", commercial, today=TODAY)


def test_any_mapping_is_accepted() -> None:
    out = validate_record("commercial", MappingProxyType(commercial_example()), today=TODAY)
    assert out == commercial_example()


# --- each rule, alone: exactly one problem, at the right path -------------------------------------

DELETE = object()
FIRST_OWNER = "27503221204139"


def spouse(born: date, sex: str = "male", *, date_of_birth: str | None = None) -> dict[str, str]:
    """A spouse whose national ID encodes `born` and `sex`."""
    return {
        "name": "اسم الزوج" if sex == "male" else "اسم الزوجة",
        "national_id": make_national_id(born, sex="male" if sex == "male" else "female"),
        "date_of_birth": date_of_birth or born.isoformat(),
    }


def case(record_type: str, where: str, value: Any, rule: str, at: str | None = None) -> Any:
    """Set (or DELETE) the value at `where` ("owners/0/share") of a valid example; expect exactly one
    problem, `rule` at `at` (default: where the change was made)."""
    shown = "DELETE" if value is DELETE else repr(value)[:60]
    if isinstance(value, dict) and "national_id" in value:
        shown = f"spouse born {value['date_of_birth']}"
    return pytest.param(
        record_type, where, value, at or f"/{where}", rule, id=f"{record_type}:{where}={shown}"
    )


VIOLATIONS = [
    # structure and types
    case("title", "title_number", DELETE, "required"),
    case("title", "owners/1/share", DELETE, "required"),
    case("title", "owner", "x", "unknown-field"),
    case("title", "owners/0/nickname", "x", "unknown-field"),
    case("title", "title_number", 45873, "type"),
    case("title", "district", True, "type"),
    case("title", "district", None, "type"),
    case("title", "owners", {}, "type"),
    case("title", "encumbrances/0", [], "type"),
    case("title", "encumbrances", (), "type"),
    case("title", "registration_date", date(2019, 9, 17), "type"),
    case("title", "area_m2", 125.5, "type"),
    case("title", "area_m2", 125, "type"),
    case("title", "owners/0/share", 0.5, "type"),
    case("title", "owners/0/national_id", int(FIRST_OWNER), "type"),
    case("marriage", "wife", "سارة", "type"),
    case("marriage", "dower/immediate", 50000, "type"),
    case("commercial", "capital/amount", 250000.0, "type"),
    case("commercial", "activities/1", 4711, "type"),
    # text
    case("title", "title_number", "", "not-empty"),
    case("title", "registry_office", " \t\u200f ", "not-empty"),
    case("title", "district", "ـــ", "not-empty"),
    case("commercial", "head_office/address", "", "not-empty"),
    case("title", "parcel_number", "1" * 65, "max-length"),
    case("title", "district", "ب" * 201, "max-length"),
    case("marriage", "place", "ا" * 501, "max-length"),
    case("title", "district", "حي\x00شرق", "characters"),
    case("title", "district", "حي\ud800", "characters"),
    # refused characters (issue 15): checked before any rule of the value's type
    case("title", "owners/0/name", "محمد\u202eعبد الله", "characters"),
    case("title", "title_number", "2019/\u202d45873", "characters"),
    case("title", "parcel_number", "\u2067123\u2069", "characters"),
    case("title", "area_m2", "12\u20665", "characters"),
    case("title", "owners/0/national_id", FIRST_OWNER[:7] + "\u2069" + FIRST_OWNER[7:], "characters"),
    case("title", "registration_date", "\u202a2019-09-17\u202c", "characters"),
    case("title", "owners/1/share", "1/\u202e4", "characters"),
    case("marriage", "wife/name", "سارة\u00ad", "characters"),
    case("marriage", "dower/currency", "EGP\ufe0f", "characters"),
    case("commercial", "trade_name_en", "Nile\u2060Trading", "characters"),
    case("commercial", "trade_name_ar", "\ue000شركة النيل", "characters"),
    case("commercial", "head_office/governorate", "\u06000", "characters"),
    case("title", "district", "حي\U000e0001", "characters"),
    case("title", "district", "حي\u0378", "characters"),
    case("commercial", "trade_name_ar", "Nile Trading", "arabic-text"),
    case("commercial", "trade_name_ar", "2000", "arabic-text"),
    case("commercial", "trade_name_en", "شركة النيل", "latin-text"),
    case("commercial", "trade_name_en", "Nile النيل", "latin-text"),
    case("commercial", "trade_name_en", "2000", "latin-text"),
    case("commercial", "trade_name_en", "Νείλος", "latin-text"),
    # codes
    case("title", "governorate", "99", "governorate"),
    case("title", "governorate", "88", "governorate"),
    case("title", "governorate", "1", "governorate"),
    case("title", "governorate", "Dakahlia", "governorate"),
    case("title", "governorate", 12, "type"),
    case("commercial", "head_office/governorate", "88", "governorate"),
    case("marriage", "dower/currency", "egp", "currency"),
    case("marriage", "dower/currency", "ج.م", "currency"),
    case("marriage", "dower/currency", "EGPT", "currency"),
    case("commercial", "capital/currency", "$", "currency"),
    case("commercial", "activities/0", "469", "isic"),
    case("commercial", "activities/0", "0100", "isic"),
    case("commercial", "activities/0", "9901", "isic"),
    case("commercial", "activities/0", "G4690", "isic"),
    case("commercial", "activities", [], "min-items"),
    case("commercial", "activities", [str(4600 + i) for i in range(51)], "max-items"),
    case("commercial", "activities", ["4690", "4711", "4690"], "duplicate-activity", "/activities/2"),
    # decimals
    case("title", "area_m2", "0.00", "minimum"),
    case("title", "area_m2", "-5", "minimum"),
    case("marriage", "dower/immediate", "-1", "minimum"),
    case("commercial", "capital/amount", "-1", "minimum"),
    case("title", "area_m2", "12.345", "decimal-places"),
    case("marriage", "dower/deferred", "1.2345", "decimal-places"),
    case("title", "area_m2", "1e3", "decimal"),
    case("title", "area_m2", "+5", "decimal"),
    case("title", "area_m2", "1,000", "decimal"),
    case("title", "area_m2", ".5", "decimal"),
    case("title", "area_m2", "5.", "decimal"),
    case("title", "area_m2", "", "decimal"),
    case("title", "area_m2", "1" * 19, "decimal"),
    case("title", "area_m2", "NaN", "decimal"),
    # enums
    case("title", "use", "palace", "enum"),
    case("title", "use", "Residential", "enum"),
    case("title", "encumbrances/0/kind", "lien", "enum"),
    case("marriage", "status/state", "widowed", "enum"),
    case("commercial", "legal_form", "corporation", "enum"),
    case("commercial", "status/state", "closed", "enum"),
    # dates
    case("title", "registration_date", "2026-11-28", "future-date"),
    case("title", "encumbrances/0/registered_on", "2027-01-01", "future-date"),
    case("marriage", "contract_date", "2026-12-01", "future-date"),
    case("commercial", "status/since", "2026-11-28", "future-date"),
    case("title", "encumbrances/0/registered_on", "2021-02-30", "date"),
    case("title", "registration_date", "17/09/2019", "date"),
    case("title", "registration_date", "2019-9-17", "date"),
    case("title", "registration_date", "20190917", "date"),
    case("title", "registration_date", "2019-09-17T10:00:00", "date"),
    case("title", "registration_date", "1799-12-31", "date"),
    # owners and shares
    case("title", "owners", [], "min-items"),
    case("title", "owners/0/share", "3/2", "fraction"),
    case("title", "owners/0/share", "0/2", "fraction"),
    case("title", "owners/0/share", "1/0", "fraction"),
    case("title", "owners/0/share", "half", "fraction"),
    case("title", "owners/0/share", "0.5", "fraction"),
    case("title", "owners/0/share", "-1/2", "fraction"),
    case("title", "owners/0/share", f"1/{10**13}", "fraction"),
    case("title", "owners/2/share", "1/8", "shares-sum", "/owners"),
    case("title", "owners/0/share", "3/4", "shares-sum", "/owners"),
    case("commercial", "owners/1/share", "1/2", "shares-sum", "/owners"),
    case("title", "owners/2/national_id", FIRST_OWNER, "duplicate-national-id"),
    case("commercial", "owners/1/national_id", "26802050211071", "duplicate-national-id"),
    # national IDs inside records
    case("title", "owners/0/national_id", FIRST_OWNER[:13], "national-id-length"),
    case("title", "owners/0/national_id", "2750322-1204139", "national-id-digits"),
    case("title", "owners/0/national_id", "1" + FIRST_OWNER[1:], "national-id-century"),
    case("title", "owners/0/national_id", "27513221204139", "national-id-birth-date"),
    case(
        "title", "owners/0/national_id", make_national_id(date(2026, 11, 28)), "national-id-future-birth-date"
    ),
    case("title", "owners/0/national_id", "27503229904139", "national-id-governorate"),
    # marriage: the spouses against their IDs, their age, the status
    case("marriage", "husband/date_of_birth", "1990-01-16", "birth-date-mismatch"),
    case("marriage", "wife/date_of_birth", "1995-06-03", "birth-date-mismatch"),
    case(
        "marriage", "husband/national_id", make_national_id(date(1990, 1, 15), sex="female"), "sex-mismatch"
    ),
    case("marriage", "wife/national_id", make_national_id(date(1994, 6, 3), "21"), "sex-mismatch"),
    case("marriage", "husband", spouse(date(2005, 7, 21)), "minimum-age", "/husband/date_of_birth"),
    case("marriage", "wife", spouse(date(2006, 1, 1), "female"), "minimum-age", "/wife/date_of_birth"),
    case("marriage", "status", {"state": "divorced"}, "event-date", "/status/event_date"),
    case("marriage", "status", {"state": "divorced", "event_date": None}, "event-date", "/status/event_date"),
    case("marriage", "status/event_date", "2024-01-01", "event-date"),
    case(
        "marriage",
        "status",
        {"state": "divorced", "event_date": "2023-07-19"},
        "event-date",
        "/status/event_date",
    ),
    case(
        "marriage",
        "status",
        {"state": "divorced", "event_date": "2026-11-28"},
        "future-date",
        "/status/event_date",
    ),
]


@pytest.mark.parametrize(("record_type", "where", "value", "path", "rule"), VIOLATIONS)
def test_each_rule_rejects_with_its_path_and_rule(
    record_type: str, where: str, value: Any, path: str, rule: str
) -> None:
    record = EXAMPLES[record_type]()
    *parents, last = where.split("/")
    target: Any = record
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is DELETE:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    with pytest.raises(RecordInvalid) as caught:
        validate_record(record_type, record, today=TODAY)
    assert [(p.path, p.rule) for p in caught.value.problems] == [(path, rule)]
    problem = caught.value.problems[0]
    assert problem.message_en and has_arabic(problem.message_ar)
    assert f"{path}: {problem.message_en} [{rule}]" in str(caught.value)


# --- boundaries of the record-level rules ----------------------------------------------------------


def with_husband_born(born: date, contract_date: str) -> Record:
    record = marriage_example()
    record["husband"]["national_id"] = make_national_id(born)
    record["husband"]["date_of_birth"] = born.isoformat()
    record["contract_date"] = contract_date
    return record


def test_eighteenth_birthday_is_old_enough() -> None:
    validate_record("marriage", with_husband_born(date(2005, 7, 20), "2023-07-20"), today=TODAY)
    assert problems("marriage", with_husband_born(date(2005, 7, 21), "2023-07-20")) == [
        ("/husband/date_of_birth", "minimum-age")
    ]


def test_born_on_29_february_turns_18_on_1_march() -> None:
    born = date(2004, 2, 29)
    assert problems("marriage", with_husband_born(born, "2022-02-28")) == [
        ("/husband/date_of_birth", "minimum-age")
    ]
    validate_record("marriage", with_husband_born(born, "2022-03-01"), today=TODAY)


def test_divorce_on_the_contract_date_is_accepted() -> None:
    record = marriage_example()
    record["status"] = {"state": "divorced", "event_date": record["contract_date"]}
    validate_record("marriage", record, today=TODAY)


# --- several problems at once -----------------------------------------------------------------------


def test_all_problems_of_a_record_are_reported() -> None:
    record = title_example()
    record["governorate"] = "99"
    record["area_m2"] = 125.5
    record["owners"][1]["national_id"] = "27811321207223"
    record["owners"][2]["share"] = "5/4"
    record["encumbrances"][0]["kind"] = "lien"
    record["encumbrances"][0]["registered_on"] = "2030-01-01"
    record["notes"] = "x"
    del record["registry_office"]
    assert problems("title", record) == [
        ("/governorate", "governorate"),
        ("/area_m2", "type"),
        ("/owners/1/national_id", "national-id-birth-date"),
        ("/owners/2/share", "fraction"),
        ("/encumbrances/0/kind", "enum"),
        ("/encumbrances/0/registered_on", "future-date"),
        ("/registry_office", "required"),
        ("/notes", "unknown-field"),
    ]


def test_record_level_rules_run_alongside_field_errors() -> None:
    title = title_example()
    title["registry_office"] = ""
    title["owners"][2]["share"] = "1/8"
    title["owners"][1]["national_id"] = FIRST_OWNER
    assert problems("title", title) == [
        ("/registry_office", "not-empty"),
        ("/owners/1/national_id", "duplicate-national-id"),
        ("/owners", "shares-sum"),
    ]
    marriage = with_husband_born(date(2010, 1, 1), "2023-07-20")
    marriage["place"] = 5
    marriage["wife"]["date_of_birth"] = "2024-01-01"
    marriage["status"] = {"state": "divorced", "event_date": "2020-01-01"}
    assert problems("marriage", marriage) == [
        ("/place", "type"),
        ("/wife/date_of_birth", "birth-date-mismatch"),
        ("/husband/date_of_birth", "minimum-age"),
        ("/status/event_date", "event-date"),
    ]
    commercial = commercial_example()
    commercial["trade_name_en"] = "النيل"
    commercial["activities"] = ["4690", "4690"]
    commercial["owners"][0]["share"] = "1/3"
    assert problems("commercial", commercial) == [
        ("/trade_name_en", "latin-text"),
        ("/owners", "shares-sum"),
        ("/activities/1", "duplicate-activity"),
    ]


def test_record_level_rules_skip_parts_that_are_invalid() -> None:
    title = title_example()
    title["owners"][0]["share"] = "half"  # the sum cannot be computed: only the share is reported
    assert problems("title", title) == [("/owners/0/share", "fraction")]
    marriage = marriage_example()
    marriage["contract_date"] = "2023-13-01"
    marriage["status"] = {"state": "divorced", "event_date": "2020-01-01"}
    assert problems("marriage", marriage) == [("/contract_date", "date")]


def test_the_exception_lists_every_problem_in_english() -> None:
    record = commercial_example()
    record["capital"]["currency"] = "egp"
    record["activities"][0] = "46"
    with pytest.raises(RecordInvalid) as caught:
        validate_record("commercial", record, today=TODAY)
    error = caught.value
    assert isinstance(error, LedgerError) and error.record_type == "commercial"
    assert str(error).startswith("commercial record is invalid (2 problems): ")
    assert "/capital/currency: must be an ISO 4217 currency code" in str(error)
    assert "/activities/0: must be an ISIC Rev.4 class code" in str(error)
    assert all(isinstance(p, FieldProblem) and has_arabic(p.message_ar) for p in error.problems)


def test_messages_do_not_repeat_personal_data() -> None:
    record = marriage_example()
    record["wife"]["date_of_birth"] = "1994-06-04"
    record["husband"]["national_id"] = "29001159923457"
    with pytest.raises(RecordInvalid) as caught:
        validate_record("marriage", record, today=TODAY)
    text = str(caught.value) + "".join(p.message_ar for p in caught.value.problems)
    assert "1994-06-04" not in text and "29001159923457" not in text


# --- the whole record ------------------------------------------------------------------------------


@pytest.mark.parametrize("record_type", ["deed", "Title", "", None])
def test_unknown_record_type(record_type: Any) -> None:
    with pytest.raises(RecordInvalid) as caught:
        validate_record(record_type, title_example(), today=TODAY)
    [problem] = caught.value.problems
    assert (problem.path, problem.rule) == ("", "record-type")
    assert "title, marriage, commercial" in problem.message_en and has_arabic(problem.message_ar)


@pytest.mark.parametrize("data", [[], "title", None, 5])
def test_a_record_must_be_an_object(data: Any) -> None:
    assert problems("title", data) == [("", "type")]


def test_an_empty_record_reports_every_missing_field() -> None:
    assert problems("commercial", {}) == [
        (f"/{name}", "required")
        for name in (
            "registration_number",
            "trade_name_ar",
            "trade_name_en",
            "legal_form",
            "capital",
            "owners",
            "activities",
            "head_office",
            "status",
        )
    ]


def test_unknown_field_paths_are_escaped_json_pointers() -> None:
    record = title_example()
    record["a/b~c"] = 1
    assert problems("title", record) == [("/a~1b~0c", "unknown-field")]


def test_today_must_be_a_date() -> None:
    with pytest.raises(TypeError):
        validate_record("title", title_example(), today=datetime(2026, 11, 27, 12, 0))
    with pytest.raises(TypeError):
        validate_record("title", title_example(), today="2026-11-27")  # type: ignore[arg-type]


def test_the_input_is_not_modified() -> None:
    record = title_example()
    record["district"] = " حي  شرق المنصورة "
    validate_record("title", record, today=TODAY)
    assert record["district"] == " حي  شرق المنصورة "


# --- generated -------------------------------------------------------------------------------------


def owners_with_shares(shares: list[str]) -> list[dict[str, str]]:
    return [
        {
            "name": f"مالك {i}",
            "national_id": make_national_id(date(1970, 1, 1) + timedelta(days=i)),
            "share": share,
        }
        for i, share in enumerate(shares)
    ]


weights = st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=30)


@given(weights=weights, reduce=st.booleans())
def test_generated_splits_summing_to_1_pass(weights: list[int], reduce: bool) -> None:
    total = sum(weights)
    shares = [
        f"{Fraction(w, total).numerator}/{Fraction(w, total).denominator}" if reduce else f"{w}/{total}"
        for w in weights
    ]
    record = title_example()
    record["owners"] = owners_with_shares(shares)
    assert [o["share"] for o in validate_record("title", record, today=TODAY)["owners"]] == shares


@given(weights=weights, data=st.data())
def test_generated_splits_off_by_one_fail(weights: list[int], data: st.DataObject) -> None:
    total = sum(weights)
    shares = [f"{w}/{total}" for w in weights]
    off = data.draw(st.integers(0, len(shares) - 1))
    shares[off] = f"{weights[off]}/{total + 1}"
    record = commercial_example()
    record["owners"] = owners_with_shares(shares)
    assert problems("commercial", record) == [("/owners", "shares-sum")]


@pytest.mark.parametrize(
    ("where", "value", "label", "name"),
    [
        ("owners/0/name", "محمد\u202eعبد الله", "U+202E", "RIGHT-TO-LEFT OVERRIDE"),
        ("district", "حي\u2066شرق\u2069", "U+2066", "LEFT-TO-RIGHT ISOLATE"),
        ("registry_office", "مكتب\u00ad الشهر", "U+00AD", "SOFT HYPHEN"),
        ("title_number", "2019/\x0845873", "U+0008", ""),
        ("district", "\U000f0001", "U+F0001", ""),
    ],
)
def test_a_refused_character_is_named_in_english_and_arabic(
    where: str, value: str, label: str, name: str
) -> None:
    record = title_example()
    *parents, last = where.split("/")
    target: Any = record
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[last] = value
    with pytest.raises(RecordInvalid) as caught:
        validate_record("title", record, today=TODAY)
    (problem,) = caught.value.problems
    assert (problem.path, problem.rule) == (f"/{where}", "characters")
    assert (f"contains {label} {name}," if name else f"contains {label},") in problem.message_en
    assert f"المحرف {label}" in problem.message_ar
    assert label in str(caught.value)
    # The message names the character, never the value around it (personal data).
    assert not {"محمد", "شرق", "مكتب", "45873"} & set(problem.message_en.split() + problem.message_ar.split())


arabic_letters = st.sampled_from("ابتثجحخدذرزسشصضطظعغفقكلمنهويةىأإآءئؤ")
noise = st.sampled_from(["ـ", " ", "  ", "\t", "\u200f", "\u200b", "\n"])


@given(st.lists(st.one_of(arabic_letters, noise), min_size=1, max_size=80))
def test_generated_names_are_stored_canonical(parts: list[str]) -> None:
    name = "".join(parts)
    record = marriage_example()
    record["husband"]["name"] = name
    expected = " ".join(name.replace("ـ", "").replace("\u200f", "").replace("\u200b", "").split())
    if expected:
        assert validate_record("marriage", record, today=TODAY)["husband"]["name"] == expected
    else:
        assert problems("marriage", record) == [("/husband/name", "not-empty")]


refused_characters = st.sampled_from(
    [
        *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
        "\u00ad",
        "\u2060",
        "\ufff9",
        "\x00",
        "\ue000",
    ]
)


@given(st.lists(st.one_of(arabic_letters, noise), min_size=1, max_size=80), refused_characters, st.data())
def test_generated_names_with_a_refused_character_are_refused(
    parts: list[str], refused: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(parts)))
    name = "".join([*parts[:at], refused, *parts[at:]])
    record = marriage_example()
    record["husband"]["name"] = name
    with pytest.raises(RecordInvalid) as caught:
        validate_record("marriage", record, today=TODAY)
    (problem,) = caught.value.problems
    assert (problem.path, problem.rule) == ("/husband/name", "characters")
    assert f"U+{ord(refused):04X}" in problem.message_en and f"U+{ord(refused):04X}" in problem.message_ar


# --- the text check that spares normalising text already canonical ------------------------------


def test_plain_canonical_characters_are_canonical_and_not_refused() -> None:
    for code_point in range(sys.maxunicode + 1):
        for text in (chr(code_point), f"a{chr(code_point)}b"):
            if plainly_canonical(text):
                assert normalize_text(text) == text, f"U+{code_point:04X}"
                assert refused_character(text) is None, f"U+{code_point:04X}"


everyday_text = st.text(
    alphabet=st.sampled_from(
        [
            *"ابتثجحخدذرزسشصضطظعغفقكلمنهويةىأإآءئؤ abcXYZ019/-.,،",
            *"\u0640\u064e\u0651\u0654\u0655\u06a9\u06cc\u0661\u06f5",
            *"\u0301é\u00a0\t\n\u200b\u200f\u202e\u3164\U0001f600",
        ]
    ),
    max_size=40,
)


@given(st.one_of(everyday_text, st.text(max_size=40)))
def test_plain_canonical_text_is_canonical_and_not_refused(text: str) -> None:
    if plainly_canonical(text):
        assert normalize_text(text) == text
        assert refused_character(text) is None


@pytest.mark.parametrize(
    "text", ["محمد عبد الرحمن السيد", "2019/45873", "Nile Trading & Distribution", "مأذون-01-0457", "Zoë"]
)
def test_everyday_text_plainly_canonical(text: str) -> None:
    assert plainly_canonical(text)


# --- owners' shares add up in integers ------------------------------------------------------------

shares = st.lists(
    st.tuples(st.integers(1, 10**12), st.integers(1, 10**12)).map(sorted).map(tuple), min_size=1, max_size=12
)


qirats = st.lists(st.integers(1, 23), min_size=1, max_size=6).map(lambda ns: [(n, 24) for n in ns])


@given(st.one_of(shares, qirats))
def test_shares_add_up_to_one_as_fractions_do(pairs: list[tuple[int, int]]) -> None:
    exact = sum((Fraction(n, d) for n, d in pairs), Fraction(0)) == 1
    assert shares_add_up_to_one(pairs) == exact
    # And a split that does add up, however it is written.
    total = sum(n for n, _ in pairs)
    split = [(n, total) for n, _ in pairs]
    assert shares_add_up_to_one(split)
