"""The fast path of validation: a record that is certainly valid, put in canonical form in plain Python.

Nearly every record an agency submits is valid, and for those the schemas' answer is only the
canonical form. pydantic spends most of its time on what a valid record does not need: building
models, collecting errors, then dumping the models back to dicts. So `canonical_if_valid` walks
the parsed JSON (dicts, lists, strings) itself and builds the canonical form directly.

It is not a second copy of the rules. Every value goes through the schemas' own rule functions
(`ledger.records.common`: `_name`, `past_date_on`, `national_id_on`...), so a value's canonical
form is the one the schemas give by construction; the Literal choices, limits and field names
are read from the schemas. What this module repeats is the structure pydantic checks (exact JSON
types, no unknown or missing field, list lengths, optional fields as None, schema order) and the
record-level rules (owners' shares, duplicates, the spouses' ages and the divorce date).

It never reports a problem: at the first thing it is not sure of (any rule broken, any type it
does not expect, a dict subclass, a value a rule refuses) it answers None, and `validate_record`
runs the schemas, which find every problem with their paths and messages. So the errors stay
the schemas' own, and this path only decides how fast a valid record goes through.
tests/python/test_records_fastpath.py checks that whatever it returns is what the schemas return.
"""

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, NoReturn, get_args

from ledger.records.commercial import (
    MAX_ACTIVITIES,
    BusinessStatus,
    Capital,
    CommercialRecord,
    HeadOffice,
    LegalForm,
)
from ledger.records.common import (
    MAX_OWNERS,
    Owner,
    _address,
    _arabic_name,
    _area,
    _currency,
    _governorate_code,
    _identifier,
    _isic_class,
    _latin_name,
    _money,
    _name,
    _share,
    national_id_on,
    past_date_on,
    shares_add_up_to_one,
)
from ledger.records.marriage import (
    MINIMUM_AGE,
    Dower,
    Husband,
    MarriageRecord,
    MarriageStatus,
    Spouse,
    Wife,
    has_reached_age,
)
from ledger.records.title import MAX_ENCUMBRANCES, Encumbrance, LandUse, TitleRecord


class _NotSure(Exception):
    """The record may be invalid: let the schemas decide."""


def _not_sure() -> NoReturn:
    raise _NotSure


def _fields(model: Any) -> frozenset[str]:
    return frozenset(model.model_fields)


def _choices(annotation: Any) -> frozenset[str]:
    return frozenset(get_args(annotation))


_TITLE = _fields(TitleRecord)
_TITLE_WITHOUT_UNIT = _TITLE - {"unit_number"}  # optional, None when absent
_OWNER = _fields(Owner)
_ENCUMBRANCE = _fields(Encumbrance)
_MARRIAGE = _fields(MarriageRecord)
_SPOUSE = _fields(Spouse)
_DOWER = _fields(Dower)
_MARRIAGE_STATUS = _fields(MarriageStatus)
_MARRIAGE_STATUS_WITHOUT_DATE = _MARRIAGE_STATUS - {"event_date"}  # None when absent
_COMMERCIAL = _fields(CommercialRecord)
_CAPITAL = _fields(Capital)
_HEAD_OFFICE = _fields(HeadOffice)
_BUSINESS_STATUS = _fields(BusinessStatus)

_LAND_USES = _choices(LandUse)
_ENCUMBRANCE_KINDS = _choices(Encumbrance.model_fields["kind"].annotation)
_MARRIAGE_STATES = _choices(MarriageStatus.model_fields["state"].annotation)
_LEGAL_FORMS = _choices(LegalForm)
_BUSINESS_STATES = _choices(BusinessStatus.model_fields["state"].annotation)


def _object(value: Any, fields: frozenset[str], or_fields: frozenset[str] | None = None) -> dict[str, Any]:
    """`value` if it is a dict with exactly `fields` (or `or_fields`) as keys."""
    if type(value) is not dict:
        _not_sure()
    keys = value.keys()
    if keys != fields and (or_fields is None or keys != or_fields):
        _not_sure()
    return value


def _list(value: Any, least: int, most: int) -> list[Any]:
    if type(value) is not list or not least <= len(value) <= most:
        _not_sure()
    return value


def _choice(value: Any, choices: frozenset[str]) -> str:
    if type(value) is not str or value not in choices:
        _not_sure()
    return value


def _owners(value: Any, today: date) -> list[dict[str, str]]:
    """The owners' canonical form, if each is valid, none appears twice and the shares add up to 1."""
    owners: list[dict[str, str]] = []
    shares: list[tuple[int, int]] = []
    seen: set[str] = set()
    for owner in _list(value, 1, MAX_OWNERS):
        owner = _object(owner, _OWNER)
        national_id = national_id_on(owner["national_id"], today).digits
        share = _share(owner["share"])
        if national_id in seen:
            _not_sure()
        seen.add(national_id)
        numerator, denominator = share.split("/")
        shares.append((int(numerator), int(denominator)))
        owners.append({"name": _name(owner["name"]), "national_id": national_id, "share": share})
    if not shares_add_up_to_one(shares):
        _not_sure()
    return owners


def _title(data: dict[str, Any], today: date) -> dict[str, Any]:
    _object(data, _TITLE, _TITLE_WITHOUT_UNIT)
    owners = _owners(data["owners"], today)  # first: their rules are the likeliest to fail
    unit_number = data.get("unit_number")
    encumbrances = []
    for encumbrance in _list(data["encumbrances"], 0, MAX_ENCUMBRANCES):
        encumbrance = _object(encumbrance, _ENCUMBRANCE)
        encumbrances.append(
            {
                "kind": _choice(encumbrance["kind"], _ENCUMBRANCE_KINDS),
                "holder": _name(encumbrance["holder"]),
                "reference": _identifier(encumbrance["reference"]),
                "registered_on": past_date_on(encumbrance["registered_on"], today).isoformat(),
            }
        )
    return {
        "title_number": _identifier(data["title_number"]),
        "governorate": _governorate_code(data["governorate"]),
        "district": _name(data["district"]),
        "parcel_number": _identifier(data["parcel_number"]),
        "unit_number": None if unit_number is None else _identifier(unit_number),
        "area_m2": _area(data["area_m2"]),
        "use": _choice(data["use"], _LAND_USES),
        "owners": owners,
        "encumbrances": encumbrances,
        "registration_date": past_date_on(data["registration_date"], today).isoformat(),
        "registry_office": _name(data["registry_office"]),
    }


def _spouse(value: Any, role: type[Spouse], contract_date: date, today: date) -> dict[str, str]:
    """A spouse's canonical form, if their ID is of their role's sex and agrees with their date of
    birth, and they were of age on the contract date."""
    spouse = _object(value, _SPOUSE)
    national_id = national_id_on(spouse["national_id"], today)
    date_of_birth = past_date_on(spouse["date_of_birth"], today)
    if (
        national_id.sex != role.sex
        or national_id.birth_date != date_of_birth
        or not has_reached_age(date_of_birth, contract_date, MINIMUM_AGE)
    ):
        _not_sure()
    return {
        "name": _name(spouse["name"]),
        "national_id": national_id.digits,
        "date_of_birth": date_of_birth.isoformat(),
    }


def _marriage(data: dict[str, Any], today: date) -> dict[str, Any]:
    _object(data, _MARRIAGE)
    contract_date = past_date_on(data["contract_date"], today)
    dower = _object(data["dower"], _DOWER)
    status = _object(data["status"], _MARRIAGE_STATUS, _MARRIAGE_STATUS_WITHOUT_DATE)
    state = _choice(status["state"], _MARRIAGE_STATES)
    event_date = status.get("event_date")
    if (state == "married") != (event_date is None):
        _not_sure()
    if event_date is not None:
        divorced_on = past_date_on(event_date, today)
        if divorced_on < contract_date:
            _not_sure()
        event_date = divorced_on.isoformat()
    return {
        "contract_number": _identifier(data["contract_number"]),
        "contract_date": contract_date.isoformat(),
        "place": _address(data["place"]),
        "husband": _spouse(data["husband"], Husband, contract_date, today),
        "wife": _spouse(data["wife"], Wife, contract_date, today),
        "notary_id": _identifier(data["notary_id"]),
        "registry_office": _name(data["registry_office"]),
        "dower": {
            "immediate": _money(dower["immediate"]),
            "deferred": _money(dower["deferred"]),
            "currency": _currency(dower["currency"]),
        },
        "status": {"state": state, "event_date": event_date},
    }


def _activities(value: Any) -> list[str]:
    activities = [_isic_class(code) for code in _list(value, 1, MAX_ACTIVITIES)]
    if len(set(activities)) != len(activities):
        _not_sure()
    return activities


def _commercial(data: dict[str, Any], today: date) -> dict[str, Any]:
    _object(data, _COMMERCIAL)
    owners = _owners(data["owners"], today)  # first: their rules are the likeliest to fail
    capital = _object(data["capital"], _CAPITAL)
    head_office = _object(data["head_office"], _HEAD_OFFICE)
    status = _object(data["status"], _BUSINESS_STATUS)
    return {
        "registration_number": _identifier(data["registration_number"]),
        "trade_name_ar": _arabic_name(data["trade_name_ar"]),
        "trade_name_en": _latin_name(data["trade_name_en"]),
        "legal_form": _choice(data["legal_form"], _LEGAL_FORMS),
        "capital": {"amount": _money(capital["amount"]), "currency": _currency(capital["currency"])},
        "owners": owners,
        "activities": _activities(data["activities"]),
        "head_office": {
            "governorate": _governorate_code(head_office["governorate"]),
            "address": _address(head_office["address"]),
        },
        "status": {
            "state": _choice(status["state"], _BUSINESS_STATES),
            "since": past_date_on(status["since"], today).isoformat(),
        },
    }


_CANONICAL: Mapping[str, Callable[[dict[str, Any], date], dict[str, Any]]] = {
    "title": _title,
    "marriage": _marriage,
    "commercial": _commercial,
}


def canonical_if_valid(record_type: str, data: Any, today: date) -> dict[str, Any] | None:
    """The canonical form `validate_record` returns for `data`, if this path is sure `data` is a
    valid record of `record_type` (one of `RECORD_TYPES`); None if it is not sure."""
    if type(data) is not dict:
        return None
    try:
        return _CANONICAL[record_type](data, today)
    except (_NotSure, ValueError):  # ValueError: a rule's refusal (PydanticCustomError) too
        return None
