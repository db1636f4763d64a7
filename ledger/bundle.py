"""Proof bundles: one self-describing JSON document that proves a record against the chain.

A bundle carries what a verifier needs besides a chain endpoint: the disclosed fields with their
salts, the hashes of hidden fields, the record's identity, its leaf, the Merkle path to an
anchored root (once anchored), the chain and contract addresses, and the agency's signed intake
receipt. The format is specified in docs/proof-bundle.md, with a JSON Schema beside it.

Parsing is strict: exact keys (no unknown, none missing, no duplicates), lower-case hex of exact
lengths, integers in range, no floating point, limits enforced, and `format` must be a version
this code knows. Every rejection is a `BundleError` naming the place in the document.

Limits: `MAX_BUNDLE_BYTES` bytes of UTF-8 JSON (also when given decoded text), `fields.MAX_FIELDS`
fields in disclosed and hidden together, proofs of at most `MAX_PROOF_LENGTH` hashes (a tree of
2^32 leaves is 32 deep).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, NamedTuple

import orjson

from ledger.canonical import canonical_json, too_deep
from ledger.codes import AGENCY_CODE_PATTERN, RECORD_ID_PATTERN, RECORD_TYPE_PATTERN
from ledger.errors import LedgerError
from ledger.fields import (
    MAX_FIELDS,
    MAX_PATH_BYTES,
    MAX_VERSION,
    SALT_BYTES,
    RecordKey,
    SealedRecord,
    field_hash,
)
from ledger.receipts import Receipt, ReceiptDomain

FORMAT = "sijill-bundle/1"
MAX_BUNDLE_BYTES = 256 * 1024
MAX_PROOF_LENGTH = 32
MAX_NESTING = 6  # a bundle nests 4 deep; margin for [] and {} values

_LOWER_HEX = re.compile(r"0x[0-9a-f]*")
_SALTS = re.compile(f"(?:0x[0-9a-f]{{{2 * SALT_BYTES}}})*")
_HASHES = re.compile(r"(?:0x[0-9a-f]{64})*")
_PATH_SALT_VALUE = operator.itemgetter("path", "salt", "value")
_PATH_HASH = operator.itemgetter("path", "hash")
_new = tuple.__new__  # a NamedTuple built without its Python-level __new__
_DISCLOSED_KEYS = {"path", "salt", "value"}
_HIDDEN_KEYS = {"path", "hash"}

_TOP_KEYS = {
    "format",
    "chainId",
    "ledger",
    "registry",
    "agency",
    "recordType",
    "recordId",
    "version",
    "leaf",
    "disclosed",
    "hidden",
    "anchor",
    "receipt",
}


class BundleError(LedgerError):
    """A bundle document that does not follow the format; the message names where."""


class DisclosedField(NamedTuple):
    path: str
    salt: bytes
    value: Any


class HiddenField(NamedTuple):
    path: str
    hash: bytes


@dataclass(frozen=True, slots=True)
class Anchor:
    root: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    intake_time: int
    anchor_by: int
    signer: str  # 0x + 40 lower-case hex
    signature: bytes


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed proof bundle (`format` sijill-bundle/1)."""

    chain_id: int
    ledger: str
    registry: str
    agency: str
    record_type: str
    record_id: str
    version: int
    leaf: bytes
    disclosed: tuple[DisclosedField, ...]
    hidden: tuple[HiddenField, ...]
    anchor: Anchor | None
    receipt: SignedReceipt

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.agency, self.record_type, self.record_id, self.version)

    @property
    def domain(self) -> ReceiptDomain:
        return ReceiptDomain(self.chain_id, self.ledger)

    def receipt_message(self) -> Receipt:
        return Receipt(
            self.agency,
            self.record_type,
            self.record_id,
            self.version,
            self.leaf,
            self.receipt.intake_time,
            self.receipt.anchor_by,
        )

    def disclosed_values(self) -> dict[str, Any]:
        return {f.path: f.value for f in self.disclosed}


def make_bundle(
    sealed: SealedRecord,
    *,
    chain_id: int,
    ledger: str,
    registry: str,
    receipt: SignedReceipt,
    anchor: Anchor | None = None,
) -> Bundle:
    """A full bundle (every field disclosed) of a sealed record."""
    key = sealed.key
    disclosed = tuple(
        DisclosedField(p, sealed.salts[p], sealed.fields[p]) for p in _sorted_paths(sealed.fields)
    )
    return Bundle(
        chain_id,
        ledger.lower(),
        registry.lower(),
        key.agency,
        key.record_type,
        key.record_id,
        key.version,
        sealed.leaf,
        disclosed,
        (),
        anchor,
        receipt,
    )


def with_anchor(bundle: Bundle, root: bytes, proof: Iterable[bytes]) -> Bundle:
    """The same bundle with its Merkle path to an anchored root."""
    return replace(bundle, anchor=Anchor(bytes(root), tuple(bytes(p) for p in proof)))


def disclose(bundle: Bundle, paths: Iterable[str]) -> Bundle:
    """A bundle revealing only `paths` (each a disclosed field, or a prefix such as `/owners/0`).

    Every other disclosed field is hidden, keeping its hash, so the result still verifies.
    """
    wanted = list(paths)
    chosen: set[str] = set()
    for prefix in wanted:
        matches = {f.path for f in bundle.disclosed if f.path == prefix or f.path.startswith(prefix + "/")}
        if not matches:
            raise BundleError(f"{prefix!r} is not a disclosed field of this bundle")
        chosen |= matches
    keep = tuple(f for f in bundle.disclosed if f.path in chosen)
    newly_hidden = [
        HiddenField(f.path, field_hash(f.path, f.salt, f.value))
        for f in bundle.disclosed
        if f.path not in chosen
    ]
    hidden = tuple(sorted((*bundle.hidden, *newly_hidden), key=lambda h: h.path.encode()))
    return replace(bundle, disclosed=keep, hidden=hidden)


# --------------------------------------------------------------------------------- to JSON


def bundle_to_json(bundle: Bundle) -> dict[str, Any]:
    """The JSON document of a bundle."""
    return {
        "format": FORMAT,
        "chainId": bundle.chain_id,
        "ledger": bundle.ledger,
        "registry": bundle.registry,
        "agency": bundle.agency,
        "recordType": bundle.record_type,
        "recordId": bundle.record_id,
        "version": bundle.version,
        "leaf": _hex(bundle.leaf),
        "disclosed": [{"path": f.path, "salt": _hex(f.salt), "value": f.value} for f in bundle.disclosed],
        "hidden": [{"path": h.path, "hash": _hex(h.hash)} for h in bundle.hidden],
        "anchor": None
        if bundle.anchor is None
        else {"root": _hex(bundle.anchor.root), "proof": [_hex(p) for p in bundle.anchor.proof]},
        "receipt": {
            "intakeTime": bundle.receipt.intake_time,
            "anchorBy": bundle.receipt.anchor_by,
            "signer": bundle.receipt.signer,
            "signature": _hex(bundle.receipt.signature),
        },
    }


def dump_bundle(bundle: Bundle) -> bytes:
    """The canonical (RFC 8785) bytes of a bundle."""
    return canonical_json(bundle_to_json(bundle))


# --------------------------------------------------------------------------------- parsing


def load_bundle(data: bytes | str) -> Bundle:
    """Parse a bundle from JSON text; `BundleError` for anything that is not a valid bundle."""
    # The limit is on UTF-8 bytes, also of text already decoded ("surrogatepass": a lone
    # surrogate counts its 3 bytes here and is refused where it stands, in a path or a value).
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_BUNDLE_BYTES:
        raise BundleError(f"a bundle is at most {MAX_BUNDLE_BYTES} bytes of UTF-8, this one {len(raw)}")
    if too_deep(raw, MAX_NESTING):
        raise BundleError(f"not a bundle: JSON nested deeper than {MAX_NESTING} levels")
    return _load_fast(raw) or _load_strict(data)


def _load_fast(raw: bytes) -> Bundle | None:
    """The bundle, if `raw` is a valid bundle in the form orjson writes; else None, and
    `_load_strict` reads it (and names what is wrong).

    orjson reads more than the strict reader takes (duplicate keys, the last one winning;
    floating point) and less (a UTF-8 BOM, lone surrogates, integers past 64 bits), and
    white space may differ. Text that orjson writes back byte for byte holds no duplicate keys
    and none of what it refuses; both readers give such text the same document, except that
    the strict one refuses floating point, so a bundle holding a float is left to it. Bundles
    from `dump_bundle` (RFC 8785) and from the API (compact, keys in the format's order) are in
    that form."""
    try:
        document = orjson.loads(raw)
        if orjson.dumps(document) != raw:
            return None
        bundle = parse_bundle(document)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, BundleError):
        return None
    # Only a disclosed value can be a float in a bundle parse_bundle takes (it checks every
    # other value's type, and a value is a scalar or empty).
    if any(type(f.value) is float for f in bundle.disclosed):
        return None
    return bundle


def _load_strict(data: bytes | str) -> Bundle:
    """The reference reader: stdlib json refusing duplicate keys, NaN and floating point."""
    try:
        document = json.loads(
            data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_no_float
        )
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"not a JSON document: {exc}") from None
    return parse_bundle(document)


def parse_bundle(document: Any) -> Bundle:
    """Check a decoded JSON document and build the `Bundle`."""
    top = _object(document, "bundle", _TOP_KEYS)
    if top["format"] != FORMAT:
        raise BundleError(f"format: {top['format']!r} is not a known bundle format (this reads {FORMAT!r})")
    disclosed_list = _list(top["disclosed"], "disclosed")
    hidden_list = _list(top["hidden"], "hidden")
    if not 1 <= len(disclosed_list) + len(hidden_list) <= MAX_FIELDS:
        raise BundleError(f"disclosed + hidden: a record has 1 to {MAX_FIELDS} fields")
    disclosed = _disclosed_fast(disclosed_list)
    if disclosed is None:
        disclosed = tuple([_disclosed(item, i) for i, item in enumerate(disclosed_list)])
    hidden = _hidden_fast(hidden_list)
    if hidden is None:
        hidden = tuple([_hidden(item, i) for i, item in enumerate(hidden_list)])
    _check_paths([f.path for f in disclosed], "disclosed")
    if hidden:
        _check_paths([h.path for h in hidden], "hidden")
        both = {f.path for f in disclosed} & {h.path for h in hidden}
        if both:
            raise BundleError(f"field {sorted(both)[0]!r} is both disclosed and hidden")

    anchor = None
    if top["anchor"] is not None:
        raw = _object(top["anchor"], "anchor", {"root", "proof"})
        proof = _list(raw["proof"], "anchor.proof")
        if len(proof) > MAX_PROOF_LENGTH:
            raise BundleError(f"anchor.proof: at most {MAX_PROOF_LENGTH} hashes")
        anchor = Anchor(
            _bytes(raw["root"], 32, "anchor.root"),
            _hashes_fast(proof) or tuple(_bytes(p, 32, f"anchor.proof[{i}]") for i, p in enumerate(proof)),
        )
    raw_receipt = _object(top["receipt"], "receipt", {"intakeTime", "anchorBy", "signer", "signature"})
    receipt = SignedReceipt(
        _int(raw_receipt["intakeTime"], "receipt.intakeTime", 0, 2**64 - 1),
        _int(raw_receipt["anchorBy"], "receipt.anchorBy", 0, 2**64 - 1),
        _address(raw_receipt["signer"], "receipt.signer"),
        _bytes(raw_receipt["signature"], 65, "receipt.signature"),
    )
    return Bundle(
        chain_id=_int(top["chainId"], "chainId", 1, 2**64 - 1),
        ledger=_address(top["ledger"], "ledger"),
        registry=_address(top["registry"], "registry"),
        agency=_text(top["agency"], "agency", AGENCY_CODE_PATTERN),
        record_type=_text(top["recordType"], "recordType", RECORD_TYPE_PATTERN),
        record_id=_text(top["recordId"], "recordId", RECORD_ID_PATTERN),
        version=_int(top["version"], "version", 1, MAX_VERSION),
        leaf=_bytes(top["leaf"], 32, "leaf"),
        disclosed=disclosed,
        hidden=hidden,
        anchor=anchor,
        receipt=receipt,
    )


# The fast paths check a whole list at once (one regular expression over the joined salts or
# hashes, each of the exact length) and return None at the first thing out of the ordinary;
# the item by item checks after them then name what is wrong. A test holds the two to the same
# answers (tests/python/test_bundle_fast.py).


def _disclosed_fast(items: list[Any]) -> tuple[DisclosedField, ...] | None:
    if not items or not all([type(item) is dict and item.keys() == _DISCLOSED_KEYS for item in items]):
        return None
    paths, salts, values = zip(*map(_PATH_SALT_VALUE, items), strict=True)
    for value in values:
        if type(value) in (dict, list) and value:
            return None
    if not _good_paths(paths) or not _all_hex(salts, SALT_BYTES, _SALTS):
        return None
    fromhex = bytes.fromhex
    triples = zip(paths, salts, values, strict=True)
    return tuple([_new(DisclosedField, (p, fromhex(s[2:]), v)) for p, s, v in triples])


def _hidden_fast(items: list[Any]) -> tuple[HiddenField, ...] | None:
    if not items or not all([type(item) is dict and item.keys() == _HIDDEN_KEYS for item in items]):
        return None
    paths, hashes = zip(*map(_PATH_HASH, items), strict=True)
    if not _good_paths(paths) or not _all_hex(hashes, 32, _HASHES):
        return None
    fromhex = bytes.fromhex
    return tuple([_new(HiddenField, (p, fromhex(h[2:]))) for p, h in zip(paths, hashes, strict=True)])


def _hashes_fast(items: list[Any]) -> tuple[bytes, ...] | None:
    if not items or not _all_hex(items, 32, _HASHES):
        return None
    fromhex = bytes.fromhex
    return tuple([fromhex(h[2:]) for h in items])


def _good_paths(paths: Sequence[Any]) -> bool:
    """Whether every one is a path `_good_path` takes."""
    if not all(type(p) is str and p[:1] == "/" for p in paths):
        return False
    try:
        return max([len(p.encode()) for p in paths], default=0) <= MAX_PATH_BYTES
    except UnicodeEncodeError:
        return False


def _all_hex(values: Sequence[Any], size: int, pattern: re.Pattern[str]) -> bool:
    """Whether every one is 0x and `size` bytes in lower-case hex (`pattern` repeats that):
    with each of the exact length, the joined text matches only if each does."""
    length = 2 + 2 * size
    if not all(type(v) is str and len(v) == length for v in values):
        return False
    return pattern.fullmatch("".join(values)) is not None


def _disclosed(item: Any, index: int) -> DisclosedField:
    raw = _object(item, f"disclosed[{index}]", _DISCLOSED_KEYS)
    if type(raw["value"]) in (dict, list) and raw["value"]:
        raise BundleError(f"disclosed[{index}].value: a field is a scalar, [] or {{}}")
    salt_bytes = _bytes(raw["salt"], SALT_BYTES, f"disclosed[{index}].salt")
    return DisclosedField(_path(raw["path"], "disclosed", index), salt_bytes, raw["value"])


def _hidden(item: Any, index: int) -> HiddenField:
    raw = _object(item, f"hidden[{index}]", _HIDDEN_KEYS)
    return HiddenField(_path(raw["path"], "hidden", index), _bytes(raw["hash"], 32, f"hidden[{index}].hash"))


def _good_path(path: Any) -> bool:
    if type(path) is not str or path[:1] != "/":
        return False
    try:
        return len(path.encode()) <= MAX_PATH_BYTES
    except UnicodeEncodeError:  # a lone surrogate: not Unicode text, so not a path
        return False


def _check_paths(paths: list[str], where: str) -> None:
    encoded = [p.encode() for p in paths]
    # Strictly increasing: sorted, and no two equal.
    if not all(a < b for a, b in pairwise(encoded)):
        raise BundleError(f"{where}: fields must be in strictly increasing path order, without repeats")


def _object(value: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleError(f"{where}: expected an object")
    if value.keys() == keys:
        return value
    missing, unknown = keys - value.keys(), value.keys() - keys
    if missing:
        raise BundleError(f"{where}: missing {sorted(missing)[0]!r}")
    if unknown:
        raise BundleError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BundleError(f"{where}: expected a list")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BundleError(f"{where}: expected an integer from {low} to {high}")
    return value


def _text(value: Any, where: str, pattern: Any) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BundleError(f"{where}: {value!r} is not a valid {where}")
    return value


def _path(value: Any, where: str, index: int) -> str:
    if _good_path(value):
        return str(value)
    raise BundleError(f"{where}[{index}].path: a JSON Pointer starting with '/', at most 256 bytes")


def _bytes(value: Any, size: int, where: str) -> bytes:
    if type(value) is str and len(value) == 2 + 2 * size and _LOWER_HEX.fullmatch(value):
        return bytes.fromhex(value[2:])
    raise BundleError(f"{where}: expected 0x and {2 * size} lower-case hex digits")


def _address(value: Any, where: str) -> str:
    return "0x" + _bytes(value, 20, where).hex()


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _sorted_paths(paths: Iterable[str]) -> list[str]:
    return sorted(paths, key=str.encode)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [k for k, _ in pairs]
        twice = next(k for k in keys if keys.count(k) > 1)
        raise BundleError(f"key {twice!r} appears twice in one object")
    return result


def _no_constant(name: str) -> Any:
    raise BundleError(f"{name} is not a JSON number")


def _no_float(text: str) -> Any:
    raise BundleError(f"floating-point number {text} is not allowed in a bundle")
