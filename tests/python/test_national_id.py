"""Egyptian national IDs: structure, what the digits say, and every rule's named error."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import is_canonical_text
from ledger.errors import LedgerError
from ledger.national_id import (
    BORN_ABROAD,
    GOVERNORATES,
    InvalidNationalId,
    NationalId,
    parse_national_id,
)
from ledger.records.examples import TODAY, make_national_id

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_parses_what_the_digits_say() -> None:
    assert parse_national_id("29001150123457", today=TODAY) == NationalId(
        digits="29001150123457",
        birth_date=date(1990, 1, 15),
        governorate_code="01",
        governorate="Cairo",
        governorate_ar="القاهرة",
        sex="male",
        serial="2345",
    )
    parsed = parse_national_id("30402292118624", today=TODAY)
    assert (parsed.birth_date, parsed.governorate, parsed.sex, parsed.serial) == (
        date(2004, 2, 29),
        "Giza",
        "female",
        "1862",
    )


def test_arabic_indic_digits_and_surrounding_space_are_normalised() -> None:
    text = " " + "29001150123457".translate(ARABIC_INDIC) + "\u200f "
    assert parse_national_id(text, today=TODAY).digits == "29001150123457"


@pytest.mark.parametrize("last", "0123456789")
def test_the_check_digit_is_not_validated(last: str) -> None:
    assert parse_national_id("2900115012345" + last, today=TODAY).birth_date == date(1990, 1, 15)


@pytest.mark.parametrize(("digit", "sex"), [(d, "male" if d % 2 else "female") for d in range(10)])
def test_digit_13_parity_gives_sex(digit: int, sex: str) -> None:
    assert parse_national_id(f"290011501234{digit}7", today=TODAY).sex == sex


def test_born_abroad_is_a_valid_code() -> None:
    parsed = parse_national_id(make_national_id(date(1985, 5, 5), BORN_ABROAD), today=TODAY)
    assert (parsed.governorate_code, parsed.governorate, parsed.governorate_ar) == (
        "88",
        "born abroad",
        "مواليد خارج الجمهورية",
    )


def test_birth_on_today_is_accepted() -> None:
    assert parse_national_id(make_national_id(TODAY), today=TODAY).birth_date == TODAY


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "length"),
        ("2900115012345", "length"),
        ("290011501234570", "length"),
        ("2900115012345a", "digits"),
        ("29001150-123457", "digits"),
        ("2900115 0123457", "digits"),
        ("²9001150123457", "digits"),  # a superscript digit is a digit to str.isdigit, not to us
        ("19001150123457", "century"),
        ("49001150123457", "century"),
        ("09001150123457", "century"),
        ("29002300123457", "birth-date"),  # 30 February
        ("29013010123457", "birth-date"),  # month 13
        ("29000010123457", "birth-date"),  # month 0
        ("29001000123457", "birth-date"),  # day 0
        ("20002290123457", "birth-date"),  # 29 February 1900: not a leap year
        ("32611280123457", "future-birth-date"),  # the day after TODAY
        ("39901010123457", "future-birth-date"),  # 2099
        ("29001159923457", "governorate"),
        ("29001150523457", "governorate"),
        ("29001150023457", "governorate"),
        ("29001153623457", "governorate"),
    ],
)
def test_each_rule_has_a_named_error(text: str, rule: str) -> None:
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id(text, today=TODAY)
    assert caught.value.rule == rule
    assert f"({rule})" in str(caught.value)
    assert caught.value.message_ar.startswith("الرقم القومي: ")
    assert isinstance(caught.value, LedgerError)


def test_non_text_is_rejected_as_digits() -> None:
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id(29001150123457, today=TODAY)  # type: ignore[arg-type]
    assert caught.value.rule == "digits"


def test_the_messages_do_not_repeat_the_id() -> None:
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id("29001159923457", today=TODAY)
    assert "29001159923457" not in str(caught.value)


def test_the_governorate_list() -> None:
    assert list(GOVERNORATES) == [
        *("01", "02", "03", "04"),
        *("11", "12", "13", "14", "15", "16", "17", "18", "19"),
        *("21", "22", "23", "24", "25", "26", "27", "28", "29"),
        *("31", "32", "33", "34", "35"),
        "88",
    ]
    for code, governorate in GOVERNORATES.items():
        assert governorate.code == code
        assert is_canonical_text(governorate.name_en) and is_canonical_text(governorate.name_ar)
        assert all(unicodedata.name(c).startswith("ARABIC") for c in governorate.name_ar if c.isalpha()), (
            governorate
        )
    assert GOVERNORATES["21"].name_en == "Giza" and GOVERNORATES["29"].name_ar == "الأقصر"


@given(
    birth_date=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    code=st.sampled_from(sorted(GOVERNORATES)),
    serial=st.from_regex(r"[0-9]{4}", fullmatch=True),
    check=st.sampled_from("0123456789"),
    arabic_digits=st.booleans(),
)
def test_generated_valid_ids_parse_and_agree(
    birth_date: date, code: str, serial: str, check: str, arabic_digits: bool
) -> None:
    digits = f"{2 if birth_date.year < 2000 else 3}{birth_date:%y%m%d}{code}{serial}{check}"
    parsed = parse_national_id(digits.translate(ARABIC_INDIC) if arabic_digits else digits, today=TODAY)
    assert parsed.digits == digits
    assert parsed.birth_date == birth_date
    assert parsed.governorate_code == code
    assert parsed.serial == serial
    assert parsed.sex == ("male" if int(serial[-1]) % 2 else "female")


@given(birth_date=st.dates(min_value=TODAY + timedelta(days=1), max_value=date(2099, 12, 31)))
def test_generated_future_births_are_rejected(birth_date: date) -> None:
    with pytest.raises(InvalidNationalId) as caught:
        parse_national_id(make_national_id(birth_date), today=TODAY)
    assert caught.value.rule == "future-birth-date"


@given(yy=st.integers(0, 99), mm=st.integers(0, 99), dd=st.integers(0, 99))
def test_generated_birth_digits_are_real_dates_or_rejected(yy: int, mm: int, dd: int) -> None:
    text = f"2{yy:02}{mm:02}{dd:02}0123457"
    try:
        real = date(1900 + yy, mm, dd)
    except ValueError:
        real = None
    if real is None:
        with pytest.raises(InvalidNationalId) as caught:
            parse_national_id(text, today=TODAY)
        assert caught.value.rule == "birth-date"
    else:
        assert parse_national_id(text, today=TODAY).birth_date == real
