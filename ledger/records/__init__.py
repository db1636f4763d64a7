"""Record schemas: what a `title`, a `marriage` and a `commercial` record may contain.

`validate_record(record_type, data, today=...)` is the one entry point. It takes a record as
parsed from JSON and returns its canonical form, the dict that is stored and hashed, or raises
`RecordInvalid` listing *every* problem found (see `ledger.records.problems`).

Validation has two layers, and both always run:

1. the schema (pydantic, strict): field types, unknown and missing fields, and the rules of each
   field and of each nested object (a spouse's date of birth against their national ID...);
2. the record-level rules, which relate parts of a record (owners' shares sum to 1, a spouse's
   age on the contract date...). They run on every part that is valid on its own, so a record
   with a bad registry office still hears that its shares do not add up.

The canonical form holds only str, None, lists and str-keyed dicts (no numbers, booleans,
dates or decimals), with the schema's fields in schema order. Every field of the schema is
present; an optional field not given (`unit_number`, a married record's `event_date`) is None.
Strings are normalised (`ledger.canonical.normalize_text`), dates are `YYYY-MM-DD`, decimals
canonical decimal strings and national IDs their 14 ASCII digits. The rules, field by field,
are in docs/records.md.

A record that is valid takes a fast path (`ledger.records.fastpath`): the same rule functions
over the parsed JSON, without pydantic's models. Anything it is not sure of, and every invalid
record, goes through the schemas, so every problem is still reported by them.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from ledger.records.commercial import CommercialRecord, commercial_problems
from ledger.records.common import StrictModel, validation_context
from ledger.records.fastpath import canonical_if_valid
from ledger.records.marriage import MarriageRecord, marriage_problems
from ledger.records.problems import FieldProblem, RecordInvalid, problems_from_validation_error
from ledger.records.title import TitleRecord, title_problems

__all__ = [
    "RECORD_TYPES",
    "CommercialRecord",
    "FieldProblem",
    "MarriageRecord",
    "RecordInvalid",
    "TitleRecord",
    "validate_record",
]

M = TypeVar("M", bound=StrictModel)


@dataclass(frozen=True, slots=True)
class _RecordSchema(Generic[M]):
    model: type[M]
    # Record-level rules: given the valid record, or None and the raw data if it is invalid.
    problems: Callable[[M | None, Mapping[str, Any], date], list[FieldProblem]]

    def validate(self, record_type: str, data: Mapping[str, Any], today: date) -> dict[str, Any]:
        # Strict validation takes dicts only; any other mapping is read as one.
        data = dict(data) if isinstance(data, Mapping) else data
        canonical = canonical_if_valid(record_type, data, today)
        if canonical is not None:
            return canonical
        return self.validate_with_schema(record_type, data, today)

    def validate_with_schema(self, record_type: str, data: Any, today: date) -> dict[str, Any]:
        """`validate`, by the schemas alone: every problem, or the canonical form."""
        problems: list[FieldProblem] = []
        record: M | None = None
        try:
            record = self.model.model_validate(data, context=validation_context(today))
        except ValidationError as error:
            problems.extend(problems_from_validation_error(error))
        problems.extend(self.problems(record, data if isinstance(data, dict) else {}, today))
        if problems or record is None:
            raise RecordInvalid(record_type, problems)
        return record.model_dump()


_SCHEMAS: Mapping[str, _RecordSchema[Any]] = {
    "title": _RecordSchema(TitleRecord, title_problems),
    "marriage": _RecordSchema(MarriageRecord, marriage_problems),
    "commercial": _RecordSchema(CommercialRecord, commercial_problems),
}

#: The record types with a schema here (`ledger.codes.KNOWN_RECORD_TYPES` names the same).
RECORD_TYPES: tuple[str, ...] = tuple(_SCHEMAS)


def validate_record(record_type: str, data: Mapping[str, Any], *, today: date) -> dict[str, Any]:
    """The canonical form of a record of `record_type`, or `RecordInvalid` with all its problems.

    `today` is the date the record is taken in (no date in a record may be after it); the core
    reads no clock, so the caller passes it.
    """
    if isinstance(today, datetime) or not isinstance(today, date):
        raise TypeError(f"today must be a datetime.date, not {type(today).__name__}")
    schema = _SCHEMAS.get(record_type) if isinstance(record_type, str) else None
    if schema is None:
        known = ", ".join(RECORD_TYPES)
        raise RecordInvalid(
            str(record_type),
            [
                FieldProblem(
                    "",
                    "record-type",
                    f"unknown record type {record_type!r}: expected one of {known}",
                    f"نوع السجل غير معروف: الأنواع المقبولة هي {known}",
                )
            ],
        )
    return schema.validate(record_type, data, today)
