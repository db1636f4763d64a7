"""Valid example records of each type: the demo's records and every test's.

Each function returns a fresh dict (mutate it freely) that `validate_record` accepts with
`today=TODAY` and returns unchanged: the examples are already in canonical form, with every
field present (optional ones as None). The names are realistic Egyptian names; the national IDs
are structurally valid and agree with the dates of birth and roles, but belong to no one.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Iterator
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


def ndjson_lines(count: int, *, start: int = 0, record_type: str = "title") -> Iterator[str]:
    """Lines of an NDJSON file of numbered records, as `sijill node ingest` reads it."""
    for record in numbered_records(record_type, count, start=start):
        yield json.dumps({"recordType": record_type, "record": record}, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------- varied records

_MALE = ("محمد", "أحمد", "محمود", "مصطفى", "إبراهيم", "عمرو", "خالد", "يوسف", "حسام", "طارق", "هشام", "كريم")
_FEMALE = (
    "فاطمة",
    "مريم",
    "نورهان",
    "هبة",
    "سارة",
    "منى",
    "ياسمين",
    "دينا",
    "رانيا",
    "شيماء",
    "آية",
    "إسراء",
)
_FAMILY = (
    "عبد الرحمن",
    "السيد",
    "الشناوي",
    "المصري",
    "حسين",
    "عبد الله",
    "الجمال",
    "النجار",
    "عثمان",
    "رضوان",
)
_LATIN_MALE = ("Youssef", "Karim", "Omar", "Tarek", "Mina", "Sherif", "Ramy")
_LATIN_FEMALE = ("Nadia", "Salma", "Hoda", "Mariam", "Dalia", "Chérine")
_LATIN_FAMILY = ("Boutros", "Mansour", "El-Sayed", "Ghali", "Habib", "Fahmy", "Naguib")
_DISTRICTS = (
    "حي شرق المنصورة",
    "قسم أول طنطا",
    "مركز طلخا",
    "قرية ميت خميس",
    "حي الدقي",
    "حي سموحة",
    "مركز بنها",
)
_STREETS = ("شارع طلعت حرب", "شارع الجمهورية", "شارع قصر النيل", "كورنيش النيل", "شارع فيصل", "شارع الهرم")
_BANKS = ("البنك الأهلي المصري", "بنك مصر", "بنك القاهرة", "محكمة المنصورة الابتدائية", "بنك الإسكندرية")
_TRADES = (
    ("للمقاولات", "Contracting"),
    ("للتجارة", "Trading"),
    ("للأدوية", "Pharmaceuticals"),
    ("للبرمجيات", "Software"),
)
_ISIC = ("4100", "4690", "4711", "2100", "6201", "5610", "4520", "1071")
_PLACES = (
    "01",
    "02",
    "03",
    "04",
    "11",
    "12",
    "13",
    "14",
    "16",
    "17",
    "18",
    "19",
    "21",
    "22",
    "24",
    "25",
    "26",
)
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def varied_records(record_type: str, count: int, *, seed: int) -> list[dict[str, Any]]:
    """`count` valid records of a type with varied personal data, reproducible from `seed`:
    Arabic and Latin names, national IDs, parcel, contract and registration numbers, addresses,
    amounts. Every third record is given in a non-canonical form (national IDs in Arabic-Indic
    digits, Arabic names in Unicode NFD) that intake normalises, so the stored values differ
    from the submitted ones. Valid on `TODAY` and on any later day."""
    make = {"title": _varied_title, "marriage": _varied_marriage, "commercial": _varied_commercial}[
        record_type
    ]
    records = []
    for i in range(count):
        rng = random.Random(f"{seed}/{record_type}/{i}")
        record = make(rng, i)
        records.append(_uncanonical(record) if i % 3 == 2 else record)
    return records


def _name(rng: random.Random, sex: str, *, latin: bool = False) -> str:
    if latin:
        first = rng.choice(_LATIN_MALE if sex == "male" else _LATIN_FEMALE)
        return f"{first} {rng.choice(_LATIN_MALE)} {rng.choice(_LATIN_FAMILY)}"
    first = rng.choice(_MALE if sex == "male" else _FEMALE)
    return f"{first} {rng.choice(_MALE)} {rng.choice(_FAMILY)}"


def _date(rng: random.Random, first: date, last: date) -> date:
    return date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def _national_id(rng: random.Random, birth: date, sex: Literal["male", "female"]) -> str:
    return make_national_id(
        birth, rng.choice(_PLACES), sex=sex, serial=f"{rng.randrange(1000):03d}", check=str(rng.randrange(10))
    )


def _owners(rng: random.Random, count: int, index: int) -> list[dict[str, Any]]:
    """`count` owners with distinct national IDs and shares in 24ths (qirat) adding up to 1."""
    cuts = sorted(rng.sample(range(1, 24), count - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 24], strict=True)]
    owners, ids = [], set()
    for k, part in enumerate(parts):
        sex: Literal["male", "female"] = rng.choice(("male", "female"))
        while (
            national_id := _national_id(rng, _date(rng, date(1940, 1, 1), date(2005, 12, 31)), sex)
        ) in ids:
            pass
        ids.add(national_id)
        latin = (index + k) % 4 == 3
        owners.append(
            {"name": _name(rng, sex, latin=latin), "national_id": national_id, "share": f"{part}/24"}
        )
    return owners


def _varied_title(rng: random.Random, index: int) -> dict[str, Any]:
    registered = _date(rng, date(2000, 1, 1), date(2025, 12, 31))
    encumbrances = [
        {
            "kind": rng.choice(("mortgage", "seizure")),
            "holder": rng.choice(_BANKS),
            "reference": f"رهن {registered.year}/{rng.randint(1000, 99999)}",
            "registered_on": _date(rng, registered, date(2025, 12, 31)).isoformat(),
        }
        for _ in range(rng.randint(0, 2))
    ]
    return {
        "title_number": f"{registered.year}/{700000 + index * 37 + rng.randint(0, 36)}",
        "governorate": rng.choice(_PLACES),
        "district": rng.choice(_DISTRICTS),
        "parcel_number": str(rng.randint(10_000, 999_999)),
        "unit_number": rng.choice(
            (None, f"شقة {rng.randint(1, 40)}", f"{rng.randint(1, 30)}-{rng.randint(10, 99)}A")
        ),
        "area_m2": f"{rng.randint(40, 5000)}.{rng.randint(1, 9)}",
        "use": rng.choice(("residential", "agricultural", "commercial", "industrial", "mixed")),
        "owners": _owners(rng, rng.randint(1, 4), index),
        "encumbrances": encumbrances,
        "registration_date": registered.isoformat(),
        "registry_office": f"مكتب الشهر العقاري ب{rng.choice(('المنصورة', 'طنطا', 'الجيزة', 'بنها'))}",
    }


def _spouse(
    rng: random.Random, sex: Literal["male", "female"], contract: date, latin: bool
) -> dict[str, Any]:
    birth = _date(rng, date(contract.year - 60, 1, 1), date(contract.year - 19, 1, 1))
    return {
        "name": _name(rng, sex, latin=latin),
        "national_id": _national_id(rng, birth, sex),
        "date_of_birth": birth.isoformat(),
    }


def _varied_marriage(rng: random.Random, index: int) -> dict[str, Any]:
    contract = _date(rng, date(2005, 1, 1), date(2025, 6, 30))
    divorced = rng.random() < 0.3
    status = {
        "state": "divorced" if divorced else "married",
        "event_date": _date(rng, contract, date(2025, 12, 31)).isoformat() if divorced else None,
    }
    return {
        "contract_number": f"{contract.year}/{rng.randint(100, 999)}/{50000 + index}",
        "contract_date": contract.isoformat(),
        "place": f"{rng.choice(_DISTRICTS)}، محافظة {rng.choice(('القاهرة', 'الجيزة', 'الدقهلية'))}",
        "husband": _spouse(rng, "male", contract, latin=index % 5 == 4),
        "wife": _spouse(rng, "female", contract, latin=index % 7 == 6),
        "notary_id": f"مأذون-{rng.randint(1, 35):02d}-{rng.randint(1000, 9999)}",
        "registry_office": f"مكتب سجل مدني {rng.choice(_DISTRICTS)}",
        "dower": {
            "immediate": str(rng.randrange(10_000, 900_000, 250)),
            "deferred": str(rng.randrange(10_000, 900_000, 250)),
            "currency": rng.choice(("EGP", "USD")),
        },
        "status": status,
    }


def _varied_commercial(rng: random.Random, index: int) -> dict[str, Any]:
    trade_ar, trade_en = rng.choice(_TRADES)
    family = rng.randrange(len(_FAMILY))
    owners = _owners(rng, rng.randint(1, 3), index)
    return {
        "registration_number": str(300_000 + index * 11 + rng.randint(0, 10)),
        "trade_name_ar": f"شركة {_FAMILY[family]} {trade_ar}",
        "trade_name_en": f"{rng.choice(_LATIN_FAMILY)} {trade_en} {rng.choice(('Co.', 'Group', 'Société'))}",
        "legal_form": rng.choice(("sole_proprietorship", "general_partnership", "llc", "joint_stock")),
        "capital": {
            "amount": str(rng.randrange(50_000, 9_000_000, 1000)),
            "currency": rng.choice(("EGP", "USD")),
        },
        "owners": owners,
        "activities": rng.sample(_ISIC, rng.randint(1, 3)),
        "head_office": {
            "governorate": rng.choice(_PLACES),
            "address": f"{rng.randint(1, 200)} {rng.choice(_STREETS)}، {rng.choice(_DISTRICTS)}",
        },
        "status": {
            "state": rng.choice(("active", "suspended")),
            "since": _date(rng, date(1995, 1, 1), date(2025, 12, 31)).isoformat(),
        },
    }


def _uncanonical(value: Any, key: str = "") -> Any:
    """The same record as a clerk's keyboard may type it: IDs in Arabic-Indic digits, text in NFD."""
    if isinstance(value, dict):
        return {k: _uncanonical(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_uncanonical(v, key) for v in value]
    if isinstance(value, str) and key == "national_id":
        return value.translate(_ARABIC_INDIC)
    if isinstance(value, str) and key == "name":
        return unicodedata.normalize("NFD", value)
    return value
