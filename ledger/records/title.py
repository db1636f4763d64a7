"""The `title` record: a land or real-estate title of the real-estate publicity registry.

A title says which parcel (and, in a building, which unit) it covers, how large it is and what
it may be used for, who owns it in which shares, and what burdens it (mortgages, seizures).
The owners' shares must add up to exactly 1 and no owner may appear twice; `encumbrances` is
required even when empty, because "no encumbrance" is itself something the registry asserts.
Field by field in docs/records.md.
"""

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import Field

from ledger.records.common import (
    OWNERS,
    Area,
    GovernorateCode,
    Identifier,
    Name,
    Owners,
    PastDate,
    StrictModel,
    owner_problems,
    validated_part,
)
from ledger.records.problems import FieldProblem

#: Encumbrances one title may carry.
MAX_ENCUMBRANCES = 100

LandUse = Literal["residential", "agricultural", "commercial", "industrial", "mixed", "other"]


class Encumbrance(StrictModel):
    """A registered burden on the title: a mortgage, or a seizure by a court or creditor."""

    kind: Literal["mortgage", "seizure"]
    holder: Name
    reference: Identifier
    registered_on: PastDate


class TitleRecord(StrictModel):
    """A land or real-estate title (see the module docstring)."""

    title_number: Identifier
    governorate: GovernorateCode
    district: Name
    parcel_number: Identifier
    unit_number: Identifier | None = None
    area_m2: Area
    use: LandUse
    owners: Owners
    encumbrances: list[Encumbrance] = Field(max_length=MAX_ENCUMBRANCES)
    registration_date: PastDate
    registry_office: Name


def title_problems(record: TitleRecord | None, data: Mapping[str, Any], today: date) -> list[FieldProblem]:
    """The record-level rules of a title: those on its owners."""
    owners = record.owners if record is not None else validated_part(OWNERS, data, "owners", today)
    return owner_problems(owners) if owners is not None else []
