"""What is wrong with a record: every problem, where, in English and in Arabic.

A clerk fixing a rejected record needs all of its problems at once, each pinned to a field, in
the language of the office. So validation never stops at the first problem: `RecordInvalid`
carries a tuple of `FieldProblem`, each with

- `path`: an RFC 6901 JSON Pointer into the submitted record (`/owners/1/national_id`), or `""`
  for the record as a whole; list indexes count from 0;
- `rule`: a short, stable kebab-case id (`required`, `shares-sum`, `national-id-birth-date`...)
  that programs and translations can key on; the list is in docs/records.md;
- `message_en` and `message_ar`: what is wrong and what is expected.

Messages never repeat the submitted value: records hold personal data (names, national IDs,
dates of birth) and error messages end up in logs.

Problems come from two places: pydantic's errors, mapped here (`problems_from_validation_error`),
whose custom errors carry their rule as the error type and the Arabic message in their context
(`field_error`); and the record-level rules, which build `FieldProblem`s directly.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from ledger.errors import LedgerError


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One broken rule at one place of a record (see the module docstring)."""

    path: str
    rule: str
    message_en: str
    message_ar: str


class RecordInvalid(LedgerError):
    """A record that breaks one or more rules; `problems` lists them all."""

    def __init__(self, record_type: str, problems: Iterable[FieldProblem]) -> None:
        self.record_type = record_type
        self.problems: tuple[FieldProblem, ...] = tuple(problems)
        listed = "; ".join(f"{p.path or '(record)'}: {p.message_en} [{p.rule}]" for p in self.problems)
        count = len(self.problems)
        super().__init__(
            f"{record_type} record is invalid ({count} problem{'s' if count != 1 else ''}): {listed}"
        )


def field_error(rule: str, message_en: str, message_ar: str) -> NoReturn:
    """Reject the value being validated, from inside a pydantic validator."""
    raise PydanticCustomError(rule, message_en, {"message_ar": message_ar})


def json_pointer(location: Sequence[int | str]) -> str:
    """The RFC 6901 JSON Pointer of a location given as keys and list indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


# Names of the JSON types pydantic's built-in `*_type` errors expect, in English and Arabic.
_EXPECTED_TYPES: Mapping[str, tuple[str, str]] = {
    "string_type": ("text (a JSON string)", "نصًا"),
    "list_type": ("a list (a JSON array)", "قائمة"),
    "model_type": ("an object (a JSON object)", "كائنًا"),
    "dict_type": ("an object (a JSON object)", "كائنًا"),
    "model_attributes_type": ("an object (a JSON object)", "كائنًا"),
}


def _from_error(error: ErrorDetails) -> FieldProblem:
    path = json_pointer(error["loc"])
    kind = error["type"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    if "message_ar" in context:  # one of ours, raised by field_error
        return FieldProblem(path, kind, error["msg"], str(context["message_ar"]))
    if kind == "missing":
        return FieldProblem(path, "required", "is required but missing", "هذا الحقل مطلوب ولم يُذكر")
    if kind == "extra_forbidden":
        return FieldProblem(
            path,
            "unknown-field",
            "is not a field of this schema; remove it or check its spelling",
            "حقل غير معروف في هذا النموذج: احذفه أو صحح اسمه",
        )
    if kind == "literal_error":
        expected = str(context.get("expected", ""))
        return FieldProblem(
            path, "enum", f"must be one of {expected}", f"يجب أن تكون القيمة واحدة من: {expected}"
        )
    if kind == "too_short":
        least = context.get("min_length")
        return FieldProblem(
            path, "min-items", f"must have at least {least} item(s)", f"الحد الأدنى لعدد العناصر: {least}"
        )
    if kind == "too_long":
        most = context.get("max_length")
        return FieldProblem(
            path, "max-items", f"must have at most {most} item(s)", f"الحد الأقصى لعدد العناصر: {most}"
        )
    if kind.endswith("_type"):
        expected_en, expected_ar = _EXPECTED_TYPES.get(kind, ("another type", "من نوع آخر"))
        return FieldProblem(
            path, "type", f"must be {expected_en}", f"نوع القيمة غير صحيح: يجب أن تكون {expected_ar}"
        )
    return FieldProblem(path, kind.replace("_", "-"), error["msg"], "القيمة غير صحيحة")


def problems_from_validation_error(error: ValidationError) -> list[FieldProblem]:
    """Every error of a pydantic validation, as `FieldProblem`s in pydantic's order."""
    return [_from_error(details) for details in error.errors(include_url=False, include_input=False)]
