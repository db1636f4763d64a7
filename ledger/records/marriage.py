"""The `marriage` record: a marriage contract registered by a ma'zoun (مأذون), and its status.

The spouses are identified by national ID, and the record cross-checks what the ID encodes:
each spouse's date of birth must be the one in their ID, the husband's ID must be a man's and
the wife's a woman's, and both must have turned 18 by the contract date, the minimum age of
marriage in Egyptian law (Child Law 12/1996 as amended by Law 126/2008; Civil Status Law
143/1994, art. 31 bis, forbids registering a marriage below it).

`status` follows the contract: `married`, or `divorced` with the `event_date` of the divorce,
which cannot be before the contract nor after today. A married record has no `event_date`.
Field by field in docs/records.md.
"""

from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import Field, TypeAdapter, ValidationInfo, field_validator

from ledger.national_id import NationalId, Sex
from ledger.records.common import (
    Address,
    Currency,
    Identifier,
    Money,
    Name,
    NationalIdDigits,
    PastDate,
    StrictModel,
    validated_part,
)
from ledger.records.problems import FieldProblem, field_error

#: Minimum age of both spouses on the contract date, in completed years.
MINIMUM_AGE = 18


class Spouse(StrictModel):
    """A party to the contract; `Husband` and `Wife` say which sex their ID must encode."""

    role_en: ClassVar[str]
    role_ar: ClassVar[str]  # "the husband"
    of_role_ar: ClassVar[str]  # "of the husband"
    sex: ClassVar[Sex]
    sex_ar: ClassVar[str]
    other_sex_ar: ClassVar[str]

    name: Name
    national_id: NationalIdDigits
    date_of_birth: PastDate

    @field_validator("national_id")
    @classmethod
    def _sex_matches_role(cls, national_id: NationalId) -> NationalId:
        if national_id.sex != cls.sex:
            parity = "even" if national_id.sex == "female" else "odd"
            field_error(
                "sex-mismatch",
                f"the {cls.role_en}'s national ID encodes a {national_id.sex} (its 13th digit is {parity})",
                f"الرقم القومي {cls.of_role_ar} يدل على {cls.other_sex_ar}، ويجب أن يدل على {cls.sex_ar}",
            )
        return national_id

    @field_validator("date_of_birth")
    @classmethod
    def _birth_date_matches_id(cls, date_of_birth: date, info: ValidationInfo) -> date:
        national_id = info.data.get("national_id")
        if isinstance(national_id, NationalId) and national_id.birth_date != date_of_birth:
            field_error(
                "birth-date-mismatch",
                "differs from the birth date encoded in the national ID (digits 1-7)",
                "تاريخ الميلاد لا يطابق تاريخ الميلاد المسجل في الرقم القومي",
            )
        return date_of_birth


class Husband(Spouse):
    """The husband: his national ID must encode male."""

    role_en = "husband"
    role_ar = "الزوج"
    of_role_ar = "للزوج"
    sex = "male"
    sex_ar = "ذكر"
    other_sex_ar = "أنثى"


class Wife(Spouse):
    """The wife: her national ID must encode female."""

    role_en = "wife"
    role_ar = "الزوجة"
    of_role_ar = "للزوجة"
    sex = "female"
    sex_ar = "أنثى"
    other_sex_ar = "ذكر"


class Dower(StrictModel):
    """The dower (المهر): the part paid at the contract and the part deferred, in one currency."""

    immediate: Money
    deferred: Money
    currency: Currency


class MarriageStatus(StrictModel):
    """Whether the marriage stands, and since when it does not."""

    state: Literal["married", "divorced"]
    event_date: PastDate | None = Field(default=None, validate_default=True)

    @field_validator("event_date")
    @classmethod
    def _event_date_fits_state(cls, event_date: date | None, info: ValidationInfo) -> date | None:
        state = info.data.get("state")
        if state == "divorced" and event_date is None:
            field_error(
                "event-date",
                "is required when the state is divorced: the date of the divorce",
                "تاريخ الطلاق مطلوب عندما تكون الحالة divorced (طلاق)",
            )
        if state == "married" and event_date is not None:
            field_error(
                "event-date",
                "must be absent (or null) while the state is married",
                "يجب ألا يُذكر تاريخ واقعة ما دامت الحالة married (الزواج قائم)",
            )
        return event_date


class MarriageRecord(StrictModel):
    """A marriage contract (see the module docstring)."""

    contract_number: Identifier
    contract_date: PastDate
    place: Address
    husband: Husband
    wife: Wife
    notary_id: Identifier
    registry_office: Name
    dower: Dower
    status: MarriageStatus


_CONTRACT_DATE = TypeAdapter[date](PastDate)
_HUSBAND = TypeAdapter(Husband)
_WIFE = TypeAdapter(Wife)
_STATUS = TypeAdapter(MarriageStatus)


def has_reached_age(birth_date: date, on: date, years: int) -> bool:
    """Whether someone born on `birth_date` is at least `years` old on `on`.

    Someone born on 29 February reaches an age in a common year on 1 March.
    """
    try:
        birthday = birth_date.replace(year=birth_date.year + years)
    except ValueError:
        birthday = date(birth_date.year + years, 3, 1)
    return on >= birthday


def marriage_problems(
    record: MarriageRecord | None, data: Mapping[str, Any], today: date
) -> list[FieldProblem]:
    """The record-level rules of a marriage: minimum age, divorce not before the contract."""
    contract_date: date | None
    husband: Husband | None
    wife: Wife | None
    status: MarriageStatus | None
    if record is not None:
        contract_date, husband, wife = record.contract_date, record.husband, record.wife
        status = record.status
    else:
        contract_date = validated_part(_CONTRACT_DATE, data, "contract_date", today)
        husband = validated_part(_HUSBAND, data, "husband", today)
        wife = validated_part(_WIFE, data, "wife", today)
        status = validated_part(_STATUS, data, "status", today)
    if contract_date is None:
        return []
    problems: list[FieldProblem] = []
    for spouse in (husband, wife):
        if spouse is not None and not has_reached_age(spouse.date_of_birth, contract_date, MINIMUM_AGE):
            problems.append(
                FieldProblem(
                    f"/{spouse.role_en}/date_of_birth",
                    "minimum-age",
                    f"the {spouse.role_en} was under {MINIMUM_AGE} on the contract date, the minimum age "
                    "of marriage in Egyptian law",
                    f"كان عمر {spouse.role_ar} أقل من {MINIMUM_AGE} سنة في تاريخ العقد، "
                    "وهو الحد الأدنى لسن الزواج في القانون المصري",
                )
            )
    if status is not None and status.event_date is not None and status.event_date < contract_date:
        problems.append(
            FieldProblem(
                "/status/event_date",
                "event-date",
                "is before the contract date",
                "تاريخ الواقعة سابق لتاريخ عقد الزواج",
            )
        )
    return problems
