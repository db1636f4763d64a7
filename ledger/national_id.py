"""Egyptian national ID numbers (الرقم القومي): structure, not identity.

Every Egyptian citizen's national ID is 14 digits laid out as

    C YYMMDD GG SSSS K
    2 900115 01 2345 7

- `C`, digit 1: the century of birth: 2 for 1900-1999, 3 for 2000-2099.
- `YYMMDD`, digits 2-7: the date of birth, which must be a real calendar date and not after
  the day the ID is checked (`today`, passed in so the core reads no clock).
- `GG`, digits 8-9: the governorate of birth, from the official list in `GOVERNORATES`
  (88 is given to citizens born abroad).
- `SSSS`, digits 10-13: a serial among those born on that day in that governorate; the parity of
  its last digit (digit 13 of the ID) gives the sex: odd for male, even for female.
- `K`, digit 14: a check digit. It is *not* validated: the Civil Status Organization has not
  published its algorithm, and rejecting IDs by an unofficial guess could turn away a real
  citizen. Any digit is accepted there, so some typos pass; where a record also carries the
  date of birth and the role (husband, wife), those cross-checks catch many of them.

This module checks only the structure. Whether the ID belongs to a living person, or to the
person named next to it, is for the Civil Status Organization, not for the ledger.

Input is normalised with `ledger.canonical.normalize_text` first, so Arabic-Indic digits
(٢٩٠٠١١٥...) and surrounding spaces are accepted, and `NationalId.digits` is the canonical,
ASCII form. Separators inside the number (spaces, dashes) are not: the canonical form is the
14 digits alone.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Literal

from ledger.canonical import normalize_text
from ledger.errors import LedgerError

NATIONAL_ID_LENGTH = 14

#: Digits 8-9 for citizens born outside Egypt; not a place, so not valid as a location.
BORN_ABROAD = "88"

Sex = Literal["male", "female"]
NationalIdRule = Literal["length", "digits", "century", "birth-date", "future-birth-date", "governorate"]

_ASCII_DIGITS = re.compile(r"[0-9]*")
_CENTURIES = {"2": 1900, "3": 2000}


@dataclass(frozen=True, slots=True)
class Governorate:
    """A governorate of the official code list, with its English and Arabic names."""

    code: str
    name_en: str
    name_ar: str


#: The official governorate codes of national IDs (digits 8-9), in code order.
GOVERNORATES: Mapping[str, Governorate] = MappingProxyType(
    {
        g.code: g
        for g in (
            Governorate("01", "Cairo", "القاهرة"),
            Governorate("02", "Alexandria", "الإسكندرية"),
            Governorate("03", "Port Said", "بورسعيد"),
            Governorate("04", "Suez", "السويس"),
            Governorate("11", "Damietta", "دمياط"),
            Governorate("12", "Dakahlia", "الدقهلية"),
            Governorate("13", "Sharqia", "الشرقية"),
            Governorate("14", "Qalyubia", "القليوبية"),
            Governorate("15", "Kafr El Sheikh", "كفر الشيخ"),
            Governorate("16", "Gharbia", "الغربية"),
            Governorate("17", "Monufia", "المنوفية"),
            Governorate("18", "Beheira", "البحيرة"),
            Governorate("19", "Ismailia", "الإسماعيلية"),
            Governorate("21", "Giza", "الجيزة"),
            Governorate("22", "Beni Suef", "بني سويف"),
            Governorate("23", "Fayoum", "الفيوم"),
            Governorate("24", "Minya", "المنيا"),
            Governorate("25", "Asyut", "أسيوط"),
            Governorate("26", "Sohag", "سوهاج"),
            Governorate("27", "Qena", "قنا"),
            Governorate("28", "Aswan", "أسوان"),
            Governorate("29", "Luxor", "الأقصر"),
            Governorate("31", "Red Sea", "البحر الأحمر"),
            Governorate("32", "New Valley", "الوادي الجديد"),
            Governorate("33", "Matrouh", "مطروح"),
            Governorate("34", "North Sinai", "شمال سيناء"),
            Governorate("35", "South Sinai", "جنوب سيناء"),
            Governorate(BORN_ABROAD, "born abroad", "مواليد خارج الجمهورية"),
        )
    }
)

# English and Arabic message per rule; the English one is the exception's message.
_MESSAGES: Mapping[NationalIdRule, tuple[str, str]] = {
    "length": (
        f"must be exactly {NATIONAL_ID_LENGTH} digits",
        f"الرقم القومي: يجب أن يتكون من {NATIONAL_ID_LENGTH} رقمًا بالضبط",
    ),
    "digits": (
        "must contain digits only, with no spaces, dashes or letters",
        "الرقم القومي: يجب أن يحتوي على أرقام فقط بلا مسافات أو شرطات أو حروف",
    ),
    "century": (
        "the first digit (century of birth) must be 2 (born 1900-1999) or 3 (born 2000-2099)",
        "الرقم القومي: الرقم الأول (قرن الميلاد) يجب أن يكون 2 أو 3",
    ),
    "birth-date": (
        "digits 2-7 (birth date, YYMMDD) are not a real calendar date",
        "الرقم القومي: تاريخ الميلاد غير صحيح",
    ),
    "future-birth-date": (
        "the birth date in digits 2-7 is after today",
        "الرقم القومي: تاريخ الميلاد لاحق لتاريخ اليوم",
    ),
    "governorate": (
        "digits 8-9 are not a governorate code of the official list (01 Cairo ... 35 South Sinai, 88 abroad)",
        "الرقم القومي: كود المحافظة غير موجود في القائمة الرسمية",
    ),
}


class InvalidNationalId(LedgerError):
    """A national ID whose structure breaks `rule`; `message_ar` says the same in Arabic."""

    def __init__(self, rule: NationalIdRule) -> None:
        message_en, self.message_ar = _MESSAGES[rule]
        self.rule: NationalIdRule = rule
        super().__init__(f"invalid national ID ({rule}): {message_en}")


@dataclass(frozen=True, slots=True)
class NationalId:
    """A structurally valid national ID and what its digits say."""

    digits: str
    birth_date: date
    governorate_code: str
    governorate: str
    governorate_ar: str
    sex: Sex
    serial: str


def parse_national_id(text: str, *, today: date) -> NationalId:
    """Parse a national ID, or raise `InvalidNationalId` naming the first rule it breaks.

    Rules are checked in this order: digits, length, century, birth-date, future-birth-date,
    governorate. The check digit is not validated (see the module docstring).
    """
    if not isinstance(text, str):
        digits = ""
    elif _ASCII_DIGITS.fullmatch(text):  # already canonical (normalize_text leaves ASCII digits be)
        digits = text
    else:
        digits = normalize_text(text)
    if not isinstance(text, str) or not _ASCII_DIGITS.fullmatch(digits):
        raise InvalidNationalId("digits")
    if len(digits) != NATIONAL_ID_LENGTH:
        raise InvalidNationalId("length")
    century = _CENTURIES.get(digits[0])
    if century is None:
        raise InvalidNationalId("century")
    try:
        birth_date = date(century + int(digits[1:3]), int(digits[3:5]), int(digits[5:7]))
    except ValueError:
        raise InvalidNationalId("birth-date") from None
    if birth_date > today:
        raise InvalidNationalId("future-birth-date")
    governorate = GOVERNORATES.get(digits[7:9])
    if governorate is None:
        raise InvalidNationalId("governorate")
    return NationalId(
        digits=digits,
        birth_date=birth_date,
        governorate_code=governorate.code,
        governorate=governorate.name_en,
        governorate_ar=governorate.name_ar,
        sex="male" if int(digits[12]) % 2 else "female",
        serial=digits[9:13],
    )
