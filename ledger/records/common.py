"""The value types every record schema is built from, and the rules that come with them.

Each type is a pydantic `Annotated` type with a plain validator, so pydantic never coerces on
its own: a value is accepted only in the JSON type written here, then put in canonical form.

| type | JSON input | canonical output | limits |
| --- | --- | --- | --- |
| `Name` | string | `normalize_text` form | 1 to 200 characters |
| `Address` | string | `normalize_text` form | 1 to 500 characters |
| `Identifier` | string | `normalize_text` form | 1 to 64 characters |
| `ArabicName` / `LatinName` | string | as `Name` | with Arabic letters / in Latin letters only |
| `PastDate` | `"YYYY-MM-DD"` | same | a real date, 1800-01-01 to `today` |
| `Area` | decimal string | canonical decimal | > 0, at most 2 decimal places |
| `Money` | decimal string | canonical decimal | >= 0, at most 3 decimal places |
| `Share` | `"n/d"` | `"n/d"`, no leading zeros | 1 <= n <= d <= 10^12 |
| `GovernorateCode` | `"01"`..`"35"` | same | a code of the official list, not 88 |
| `NationalIdDigits` | 14-digit string | the 14 ASCII digits | see `ledger.national_id` |
| `Currency` | `"EGP"` | same | three capital letters (ISO 4217 form) |
| `IsicClass` | `"4711"` | same | four digits, 0111 to 9900 (ISIC Rev.4 class) |

Every string is normalised (`ledger.canonical.normalize_text`: NFC, tatweel and invisible marks
removed, Arabic-Indic digits to ASCII, white space collapsed) before it is checked, so what is
stored and hashed is the canonical text. Then, before any rule of its type, a string holding a
character canonical text may not hold (`ledger.canonical.refused_character`: direction
overrides and isolates, other format and invisible characters, controls, surrogates, private-use,
noncharacters, unassigned code points) is rejected, rule `characters`, naming the code point.

Decimals are JSON strings only, never JSON numbers: one rule, and no float ever touches a value.
Their canonical form has no sign, exponent or leading zeros, and no trailing zeros or point after
the decimal point ("125.50" -> "125.5", "100.00" -> "100", "007" -> "7"); the decimal-places
limit applies to that form. Shares are kept as written ("6/24" stays "6/24", not "1/4"): land
shares are customarily counted in qirat (24ths), and a reduced fraction would not be what the
registry wrote.

The rules need `today` (no date may be in the future): validate with
`context=validation_context(today)`.
"""

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date
from fractions import Fraction
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)

from ledger.canonical import (
    REFUSED_KIND_TEXT,
    normalize_text,
    plainly_canonical,
    refused_character,
)
from ledger.national_id import BORN_ABROAD, GOVERNORATES, InvalidNationalId, NationalId, parse_national_id
from ledger.records.problems import FieldProblem, field_error

NAME_MAX_LENGTH = 200
ADDRESS_MAX_LENGTH = 500
IDENTIFIER_MAX_LENGTH = 64
EARLIEST_DATE = date(1800, 1, 1)
DECIMAL_MAX_INTEGER_DIGITS = 18
AREA_MAX_PLACES = 2
MONEY_MAX_PLACES = 3
SHARE_MAX_DENOMINATOR = 10**12
#: Owners of one title or one business (heirs can be many; larger companies list shareholders
#: in their own registers, not in the commercial registry record).
MAX_OWNERS = 1000

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_FRACTION = re.compile(r"([0-9]+) ?/ ?([0-9]+)")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ISIC_CLASS = re.compile(r"[0-9]{4}")

T = TypeVar("T")


class StrictModel(BaseModel):
    """Base of every schema: unknown fields rejected, no coercion, immutable once validated."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def validation_context(today: date) -> dict[str, Any]:
    """The pydantic validation context the schemas need."""
    return {"today": today}


def today_of(info: ValidationInfo) -> date:
    """`today` from the validation context; a programming error if it was not given."""
    context = info.context
    today = context.get("today") if isinstance(context, dict) else None
    if not isinstance(today, date):
        raise TypeError("record schemas validate with context=validation_context(today)")
    return today


def _string(value: Any, expected_en: str, expected_ar: str) -> str:
    if not isinstance(value, str):
        field_error("type", f"must be {expected_en}", f"نوع القيمة غير صحيح: يجب أن تكون {expected_ar}")
    if type(value) is str and plainly_canonical(value):
        return value
    text = normalize_text(value)
    refused = refused_character(text)
    if refused is not None:
        # The code point and its Unicode name describe a character class, not the value: no
        # personal data goes into the message.
        field_error(
            "characters",
            f"contains {refused.description}; remove it",
            f"يحتوي النص على المحرف {refused.label}، وهو {REFUSED_KIND_TEXT[refused.kind][1]}؛ احذفه",
        )
    return text


def _text(value: Any, max_length: int) -> str:
    text = _string(value, "text (a JSON string)", "نصًا")
    if not text:
        field_error("not-empty", "must not be empty", "يجب ألا يكون الحقل فارغًا")
    if len(text) > max_length:
        field_error(
            "max-length",
            f"is {len(text)} characters long; at most {max_length} are allowed",
            f"النص أطول من المسموح: الحد الأقصى {max_length} حرفًا",
        )
    return text


def _name(value: Any) -> str:
    return _text(value, NAME_MAX_LENGTH)


def _address(value: Any) -> str:
    return _text(value, ADDRESS_MAX_LENGTH)


def _identifier(value: Any) -> str:
    return _text(value, IDENTIFIER_MAX_LENGTH)


def _is_script(letter: str, script: str) -> bool:
    return unicodedata.name(letter, "").startswith(script + " ")


def _arabic_name(value: Any) -> str:
    text = _name(value)
    if not any(c.isalpha() and _is_script(c, "ARABIC") for c in text):
        field_error("arabic-text", "must contain Arabic letters", "يجب أن يحتوي الاسم على حروف عربية")
    return text


def _latin_name(value: Any) -> str:
    text = _name(value)
    letters = [c for c in text if c.isalpha()]
    if not letters or not all(c.isascii() or _is_script(c, "LATIN") for c in letters):
        field_error(
            "latin-text",
            "must be written in Latin letters (with at least one letter)",
            "يجب أن يُكتب الاسم بحروف لاتينية",
        )
    return text


def _past_date(value: Any, info: ValidationInfo) -> date:
    return past_date_on(value, today_of(info))


def past_date_on(value: Any, today: date) -> date:
    """`PastDate`'s rules: the date `value` writes, not before 1800 nor after `today`."""
    text = _string(value, 'a date written as text, "YYYY-MM-DD"', 'تاريخًا نصيًا بالصيغة "YYYY-MM-DD"')
    try:
        day = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        field_error(
            "date",
            "is not a real date in the form YYYY-MM-DD",
            "التاريخ غير صحيح: الصيغة المطلوبة YYYY-MM-DD",
        )
    if day < EARLIEST_DATE:
        field_error("date", f"is before {EARLIEST_DATE}", f"التاريخ أقدم من {EARLIEST_DATE}")
    if day > today:
        field_error("future-date", f"is after today ({today})", f"التاريخ لاحق لتاريخ اليوم ({today})")
    return day


def _decimal(value: Any, *, max_places: int, positive: bool) -> str:
    text = _string(value, 'a decimal number written as text, e.g. "125.5"', 'رقمًا عشريًا نصيًا، مثل "125.5"')
    match = _DECIMAL.fullmatch(text)
    if match is None or len(match[2].lstrip("0")) > DECIMAL_MAX_INTEGER_DIGITS:
        field_error(
            "decimal",
            f"is not a plain decimal number: digits with an optional decimal point, no sign, exponent or "
            f"separators, at most {DECIMAL_MAX_INTEGER_DIGITS} digits before the point",
            "ليس رقمًا عشريًا صحيحًا: أرقام فقط مع علامة عشرية اختيارية، بلا إشارة أو أس أو فواصل",
        )
    whole, fraction = match[2].lstrip("0") or "0", (match[3] or "").rstrip("0")
    canonical = f"{whole}.{fraction}" if fraction else whole
    if match[1] or (positive and canonical == "0"):
        field_error(
            "minimum",
            "must be greater than zero" if positive else "must not be negative",
            "يجب أن تكون القيمة أكبر من صفر" if positive else "يجب ألا تكون القيمة سالبة",
        )
    if len(fraction) > max_places:
        field_error(
            "decimal-places",
            f"has more than {max_places} decimal places",
            f"عدد المنازل العشرية أكثر من {max_places}",
        )
    return canonical


def _area(value: Any) -> str:
    return _decimal(value, max_places=AREA_MAX_PLACES, positive=True)


def _money(value: Any) -> str:
    return _decimal(value, max_places=MONEY_MAX_PLACES, positive=False)


def _share(value: Any) -> str:
    text = _string(value, 'a fraction written as text, e.g. "1/2"', 'كسرًا نصيًا، مثل "1/2"')
    match = _FRACTION.fullmatch(text)
    numerator, denominator = (int(match[1]), int(match[2])) if match else (0, 0)
    if not 1 <= numerator <= denominator <= SHARE_MAX_DENOMINATOR:
        field_error(
            "fraction",
            f'must be a fraction "n/d" of whole numbers with 1 <= n <= d <= {SHARE_MAX_DENOMINATOR}, '
            'e.g. "1/2"',
            'يجب أن تكون الحصة كسرًا بالصيغة "n/d" بأعداد صحيحة موجبة والبسط لا يزيد على المقام، مثل "1/2"',
        )
    return f"{numerator}/{denominator}"


def _governorate_code(value: Any) -> str:
    code = _string(
        value, 'a two-digit governorate code written as text, e.g. "01"', 'كود محافظة نصيًا، مثل "01"'
    )
    if code == BORN_ABROAD:
        field_error(
            "governorate",
            f"{BORN_ABROAD} is the national-ID code for births abroad, not a place: use a governorate code",
            f"الكود {BORN_ABROAD} يعني الميلاد خارج الجمهورية ولا يصلح لتحديد موقع: استخدم كود محافظة",
        )
    if code not in GOVERNORATES:
        field_error(
            "governorate",
            "is not a governorate code of the official list (two digits, e.g. 01 for Cairo)",
            "كود المحافظة غير موجود في القائمة الرسمية (رقمان، مثل 01 للقاهرة)",
        )
    return code


def _national_id(value: Any, info: ValidationInfo) -> NationalId:
    return national_id_on(value, today_of(info))


def national_id_on(value: Any, today: date) -> NationalId:
    """`NationalIdDigits`' rules: `value` parsed as a national ID checked on `today`."""
    text = _string(value, "the 14 digits written as text", "الأرقام الأربعة عشر نصًا")
    try:
        return parse_national_id(text, today=today)
    except InvalidNationalId as error:
        field_error(f"national-id-{error.rule}", str(error), error.message_ar)


def _national_id_digits(national_id: NationalId) -> str:
    return national_id.digits


def _currency(value: Any) -> str:
    code = _string(value, 'a currency code written as text, e.g. "EGP"', 'رمز عملة نصيًا، مثل "EGP"')
    if not _CURRENCY.fullmatch(code):
        field_error(
            "currency",
            "must be an ISO 4217 currency code: three capital Latin letters, e.g. EGP",
            "يجب أن يكون رمز العملة وفق ISO 4217: ثلاثة حروف لاتينية كبيرة، مثل EGP",
        )
    return code


def _isic_class(value: Any) -> str:
    code = _string(
        value, 'a four-digit code written as text, e.g. "4711"', 'رمزًا من أربعة أرقام نصيًا، مثل "4711"'
    )
    if not (_ISIC_CLASS.fullmatch(code) and "0111" <= code <= "9900"):
        field_error(
            "isic",
            "must be an ISIC Rev.4 class code: four digits from 0111 to 9900",
            "يجب أن يكون رمز النشاط فئة من تصنيف ISIC Rev.4: أربعة أرقام من 0111 إلى 9900",
        )
    return code


Name = Annotated[str, PlainValidator(_name)]
Address = Annotated[str, PlainValidator(_address)]
Identifier = Annotated[str, PlainValidator(_identifier)]
ArabicName = Annotated[str, PlainValidator(_arabic_name)]
LatinName = Annotated[str, PlainValidator(_latin_name)]
PastDate = Annotated[date, PlainValidator(_past_date), PlainSerializer(date.isoformat, return_type=str)]
Area = Annotated[str, PlainValidator(_area)]
Money = Annotated[str, PlainValidator(_money)]
Share = Annotated[str, PlainValidator(_share)]
GovernorateCode = Annotated[str, PlainValidator(_governorate_code)]
NationalIdDigits = Annotated[
    NationalId, PlainValidator(_national_id), PlainSerializer(_national_id_digits, return_type=str)
]
Currency = Annotated[str, PlainValidator(_currency)]
IsicClass = Annotated[str, PlainValidator(_isic_class)]


class Owner(StrictModel):
    """An owner of a title, or of a business, and the fraction of it they own."""

    name: Name
    national_id: NationalIdDigits
    share: Share


Owners = Annotated[list[Owner], Field(min_length=1, max_length=MAX_OWNERS)]
OWNERS = TypeAdapter[list[Owner]](Owners)


def owner_problems(owners: Sequence[Owner], path: str = "/owners") -> list[FieldProblem]:
    """Record-level rules on a valid owners list: no national ID twice, shares summing to 1."""
    problems: list[FieldProblem] = []
    first_seen: dict[str, int] = {}
    for index, owner in enumerate(owners):
        first = first_seen.setdefault(owner.national_id.digits, index)
        if first != index:
            problems.append(
                FieldProblem(
                    f"{path}/{index}/national_id",
                    "duplicate-national-id",
                    f"repeats the national ID of {path}/{first}: list each owner once with their whole share",
                    f"الرقم القومي مكرر: هو نفسه الرقم القومي للمالك في {path}/{first}، "
                    "ويُذكر كل مالك مرة واحدة بحصته كاملة",
                )
            )
    if not shares_add_up_to_one([_numbers(owner.share) for owner in owners]):
        total = sum((Fraction(owner.share) for owner in owners), Fraction(0))
        problems.append(
            FieldProblem(
                path,
                "shares-sum",
                f"the owners' shares add up to {total}, not exactly 1",
                f"مجموع حصص الملاك يساوي {total} وليس 1 بالضبط",
            )
        )
    return problems


def _numbers(share: str) -> tuple[int, int]:
    numerator, denominator = share.split("/")
    return int(numerator), int(denominator)


def shares_add_up_to_one(shares: Sequence[tuple[int, int]]) -> bool:
    """Whether shares given as (numerator, denominator), denominators positive, add up to exactly
    1. In integers, not `Fraction`s: when the denominators are all the same (halves, qirat), the
    numerators must add up to it; otherwise the sum over their least common multiple must be it."""
    denominators = {denominator for _, denominator in shares}
    if len(denominators) == 1:
        return sum(numerator for numerator, _ in shares) == denominators.pop()
    common = math.lcm(*denominators)
    return sum(numerator * (common // denominator) for numerator, denominator in shares) == common


def validated_part(adapter: TypeAdapter[T], data: Mapping[str, Any], key: str, today: date) -> T | None:
    """`data[key]` validated on its own, or None if absent or invalid (its errors are reported by
    the whole-record validation); lets record-level rules run on the parts of an invalid record
    that are valid."""
    if key not in data:
        return None
    try:
        return adapter.validate_python(data[key], context=validation_context(today))
    except ValidationError:
        return None
