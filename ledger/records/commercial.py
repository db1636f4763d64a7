"""The `commercial` record: an entry of the commercial registry (السجل التجاري).

A registration names the business in Arabic (the registered trade name) and in Latin letters,
gives its legal form, declared capital, owners with their shares (summing to exactly 1, no
owner twice), its activities as ISIC Rev.4 class codes (no code twice), where its head office
is, and whether it is active, suspended or struck off, and since when. Field by field in
docs/records.md.
"""

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import Field, TypeAdapter

from ledger.records.common import (
    OWNERS,
    Address,
    ArabicName,
    Currency,
    GovernorateCode,
    Identifier,
    IsicClass,
    LatinName,
    Money,
    Owner,
    Owners,
    PastDate,
    StrictModel,
    owner_problems,
    validated_part,
)
from ledger.records.problems import FieldProblem

#: Activities one registration may list.
MAX_ACTIVITIES = 50

LegalForm = Literal[
    "sole_proprietorship",
    "general_partnership",
    "limited_partnership",
    "llc",
    "joint_stock",
    "branch_of_foreign",
    "other",
]


class Capital(StrictModel):
    """The declared capital."""

    amount: Money
    currency: Currency


class HeadOffice(StrictModel):
    """Where the business has its head office (for a foreign company's branch: the branch)."""

    governorate: GovernorateCode
    address: Address


class BusinessStatus(StrictModel):
    """The registration's state, and the date it took effect."""

    state: Literal["active", "suspended", "struck_off"]
    since: PastDate


Activities = list[IsicClass]


class CommercialRecord(StrictModel):
    """A commercial registration (see the module docstring)."""

    registration_number: Identifier
    trade_name_ar: ArabicName
    trade_name_en: LatinName
    legal_form: LegalForm
    capital: Capital
    owners: Owners
    activities: Activities = Field(min_length=1, max_length=MAX_ACTIVITIES)
    head_office: HeadOffice
    status: BusinessStatus


_ACTIVITIES = TypeAdapter[Activities](Activities)


def commercial_problems(
    record: CommercialRecord | None, data: Mapping[str, Any], today: date
) -> list[FieldProblem]:
    """The record-level rules of a registration: those on its owners, no activity twice."""
    owners: list[Owner] | None
    activities: list[str] | None
    if record is not None:
        owners, activities = record.owners, record.activities
    else:
        owners = validated_part(OWNERS, data, "owners", today)
        activities = validated_part(_ACTIVITIES, data, "activities", today)
    problems = owner_problems(owners) if owners is not None else []
    first_seen: dict[str, int] = {}
    for index, code in enumerate(activities or ()):
        first = first_seen.setdefault(code, index)
        if first != index:
            problems.append(
                FieldProblem(
                    f"/activities/{index}",
                    "duplicate-activity",
                    f"repeats the activity at /activities/{first}",
                    f"النشاط مكرر: هو نفسه النشاط في /activities/{first}",
                )
            )
    return problems
