"""Valid example records of each type, for any test that needs one.

Each function returns a fresh dict (mutate it freely) that `validate_record` accepts with
`today=TODAY` and returns unchanged: the examples are already in canonical form, with every
field present (optional ones as None). The names are realistic Egyptian names; the national IDs
are structurally valid and agree with the dates of birth and roles, but belong to no one.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

#: The fixed "today" of the test suite.
TODAY = date(2026, 11, 27)


def make_national_id(
    birth_date: date,
    governorate_code: str = "01",
    *,
    sex: Literal["male", "female"] = "male",
    serial: str = "012",
    check: str = "0",
) -> str:
    """A structurally valid national ID: `serial` is digits 10-12; digit 13 is chosen for `sex`."""
    century = {19: "2", 20: "3"}[birth_date.year // 100]
    sex_digit = "1" if sex == "male" else "2"
    return f"{century}{birth_date:%y%m%d}{governorate_code}{serial}{sex_digit}{check}"


def title_example() -> dict[str, Any]:
    """A flat in Mansoura owned by three members of a family in shares 1/2, 1/4, 1/4, under a mortgage."""
    return {
        "title_number": "2019/45873",
        "governorate": "12",
        "district": "حي شرق المنصورة",
        "parcel_number": "1843",
        "unit_number": "12",
        "area_m2": "125.5",
        "use": "residential",
        "owners": [
            {"name": "محمد عبد الرحمن السيد", "national_id": "27503221204139", "share": "1/2"},
            {"name": "فاطمة أحمد حسن", "national_id": "27811091207223", "share": "1/4"},
            {"name": "يوسف محمد عبد الرحمن", "national_id": "30308140130516", "share": "1/4"},
        ],
        "encumbrances": [
            {
                "kind": "mortgage",
                "holder": "البنك الأهلي المصري",
                "reference": "رهن 2021/3371",
                "registered_on": "2021-05-10",
            }
        ],
        "registration_date": "2019-09-17",
        "registry_office": "مكتب الشهر العقاري بالمنصورة",
    }


def marriage_example() -> dict[str, Any]:
    """A marriage contract registered in Nasr City in 2023; the marriage stands."""
    return {
        "contract_number": "2023/118/4471",
        "contract_date": "2023-07-20",
        "place": "مدينة نصر، محافظة القاهرة",
        "husband": {
            "name": "كريم محمود عبد العزيز",
            "national_id": "29001150123457",
            "date_of_birth": "1990-01-15",
        },
        "wife": {
            "name": "سارة علي حسن الشناوي",
            "national_id": "29406032118624",
            "date_of_birth": "1994-06-03",
        },
        "notary_id": "مأذون-01-0457",
        "registry_office": "مكتب سجل مدني مدينة نصر",
        "dower": {"immediate": "50000", "deferred": "100000", "currency": "EGP"},
        "status": {"state": "married", "event_date": None},
    }


def commercial_example() -> dict[str, Any]:
    """A Cairo limited-liability company with two owners, in wholesale and retail trade."""
    return {
        "registration_number": "158234",
        "trade_name_ar": "شركة النيل للتجارة والتوزيع",
        "trade_name_en": "Nile Trading & Distribution",
        "legal_form": "llc",
        "capital": {"amount": "250000", "currency": "EGP"},
        "owners": [
            {"name": "أحمد مصطفى إبراهيم", "national_id": "26802050211071", "share": "2/3"},
            {"name": "منى سعيد عبد الله", "national_id": "28512302105082", "share": "1/3"},
        ],
        "activities": ["4690", "4711"],
        "head_office": {"governorate": "01", "address": "15 شارع طلعت حرب، وسط البلد، القاهرة"},
        "status": {"state": "active", "since": "2015-03-01"},
    }


EXAMPLES = {"title": title_example, "marriage": marriage_example, "commercial": commercial_example}


_NUMBER_FIELD = {"title": "title_number", "marriage": "contract_number", "commercial": "registration_number"}


def numbered_records(record_type: str, count: int, *, start: int = 0) -> Any:
    """`count` distinct valid records of a type (their registry numbers vary), lazily."""
    base = EXAMPLES[record_type]()
    for i in range(start, start + count):
        record = dict(base)
        record[_NUMBER_FIELD[record_type]] = f"{i + 100000:07d}"
        yield record


def numbered_titles(count: int, *, start: int = 0) -> Any:
    """`count` distinct valid title records, lazily."""
    return numbered_records("title", count, start=start)


def write_ndjson(path: Any, count: int, *, start: int = 0, record_type: str = "title") -> None:
    """An NDJSON file of numbered records, as `sijill node ingest` reads it."""
    import json

    with open(path, "w", encoding="utf-8") as handle:
        for record in numbered_records(record_type, count, start=start):
            handle.write(json.dumps({"recordType": record_type, "record": record}, ensure_ascii=False) + "\n")
