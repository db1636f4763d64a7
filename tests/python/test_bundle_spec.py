"""docs/proof-bundle.md and its JSON Schema are a contract: an outsider writes a verifier from them
alone. These tests hold the page, the schema and the reference code to one another: every limit
the page gives is the code's constant, the schema takes every published vector bundle and refuses
each boundary case the readers refuse, except the three it cannot express (which the page and the
schema name), the white space and normalisation steps listed are the code's, and the views the
page tells a verifier to call are the compiled contracts' ABI."""

from __future__ import annotations

import copy
import importlib
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from ledger import bundle as bundle_module
from ledger.bundle import BundleError, load_bundle
from ledger.canonical import _MAPPED, _REMOVED
from ledger.chainview import AgencyStatus, LeafState
from ledger.codes import AGENCY_CODE_PATTERN, RECORD_ID_PATTERN, RECORD_TYPE_PATTERN
from ledger.fields import MAX_FIELDS, MAX_PATH_BYTES, MAX_VERSION, SALT_BYTES
from ledger.hashing import keccak256
from node.chain.toolchain import PROJECT_ROOT, CompiledContract

DOCS = PROJECT_ROOT / "docs"
PAGE = (DOCS / "proof-bundle.md").read_text()
SCHEMA = json.loads((DOCS / "proof-bundle.schema.json").read_text())
VECTORS = json.loads((PROJECT_ROOT / "tests" / "vectors" / "bundles.json").read_text())
FULL = VECTORS["cases"][0]["bundle"]  # every field disclosed, anchored


def _schema_accepts(document: Any) -> bool:
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(document)


def _reader_accepts(document: Any) -> bool:
    try:
        load_bundle(json.dumps(document, ensure_ascii=False))
    except BundleError:
        return False
    return True


def test_the_schema_is_valid_and_takes_every_vector_bundle() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for case in VECTORS["cases"]:
        assert _schema_accepts(case["bundle"]), case["name"]
        assert _reader_accepts(case["bundle"]), case["name"]


def test_every_documented_limit_is_the_codes_constant() -> None:
    rows = re.findall(r"^\| [^|]+ \| ([\d,]+) \| [^|]+ \| `ledger\.(\w+)\.(\w+)` \|$", PAGE, re.M)
    assert len(rows) == 8, rows
    for value, module, name in rows:
        assert getattr(importlib.import_module(f"ledger.{module}"), name) == int(value.replace(",", "")), name


def test_the_schemas_bounds_are_the_codes() -> None:
    top = SCHEMA["properties"]
    for key, pattern in (
        ("agency", AGENCY_CODE_PATTERN),
        ("recordType", RECORD_TYPE_PATTERN),
        ("recordId", RECORD_ID_PATTERN),
    ):
        assert top[key]["pattern"] == f"^{pattern.pattern}$", key
        assert f"`{pattern.pattern}`" in PAGE, key
    assert top["version"]["maximum"] == MAX_VERSION
    assert top["disclosed"]["maxItems"] == top["hidden"]["maxItems"] == MAX_FIELDS
    assert top["anchor"]["oneOf"][1]["properties"]["proof"]["maxItems"] == bundle_module.MAX_PROOF_LENGTH
    salt = top["disclosed"]["items"]["properties"]["salt"]["pattern"]
    assert salt == f"^0x[0-9a-f]{{{2 * SALT_BYTES}}}$"
    assert SCHEMA["$defs"]["path"]["maxLength"] == MAX_PATH_BYTES
    # The looser bounds are named where a reader of the schema looks.
    assert "UTF-8 bytes" in SCHEMA["$defs"]["path"]["description"]
    assert "together" in top["disclosed"]["description"] and "together" in top["hidden"]["description"]


def _hidden(paths: list[str]) -> list[dict[str, str]]:
    return [{"path": p, "hash": "0x" + "ab" * 32} for p in sorted(paths, key=str.encode)]


def _only_hidden(paths: list[str]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["disclosed"], doc["hidden"] = [], _hidden(paths)

    return change


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[path[-1]] = value  # type: ignore[index]

    return change


def _split(disclosed: int, hidden: int) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        salt = doc["disclosed"][0]["salt"]
        doc["disclosed"] = [{"path": f"/d{i:04}", "salt": salt, "value": "x"} for i in range(disclosed)]
        doc["hidden"] = _hidden([f"/h{i:04}" for i in range(hidden)])

    return change


# name -> (change, reader accepts, schema accepts). Where the two differ, the schema is the looser
# one, in exactly the three places docs/proof-bundle.md and the schema's description name.
CHECKSUMMED = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOUNDARIES: dict[str, tuple[Callable[[dict[str, Any]], None], bool, bool]] = {
    "path of 256 ASCII bytes": (_only_hidden(["/" + "a" * 255]), True, True),
    "path of 257 ASCII bytes": (_only_hidden(["/" + "a" * 256]), False, False),
    "path of 128 characters, 255 bytes": (_only_hidden(["/" + "م" * 127]), True, True),
    "path of 129 characters, 257 bytes (schema: looser)": (_only_hidden(["/" + "م" * 128]), False, True),
    "path without a leading /": (_only_hidden(["area"]), False, False),
    "1,024 hidden fields": (_only_hidden([f"/f{i:04}" for i in range(1024)]), True, True),
    "1,025 hidden fields": (_only_hidden([f"/f{i:04}" for i in range(1025)]), False, False),
    "1,024 fields in both lists": (_split(512, 512), True, True),
    "1,025 fields in both lists (schema: looser)": (_split(512, 513), False, True),
    "no field": (_split(0, 0), False, False),
    "paths out of order (schema: looser)": (
        _set(("hidden",), _hidden(["/b"])[::-1] + _hidden(["/a"])),
        False,
        True,
    ),
    "proof of 32 hashes": (_set(("anchor", "proof"), ["0x" + "cd" * 32] * 32), True, True),
    "proof of 33 hashes": (_set(("anchor", "proof"), ["0x" + "cd" * 32] * 33), False, False),
    "version 2^32-1": (_set(("version",), 2**32 - 1), True, True),
    "version 2^32": (_set(("version",), 2**32), False, False),
    "version 0": (_set(("version",), 0), False, False),
    "chain id 2^64-1": (_set(("chainId",), 2**64 - 1), True, True),
    "chain id 2^64": (_set(("chainId",), 2**64), False, False),
    "agency code of 31 characters": (_set(("agency",), "R" * 31), True, True),
    "agency code of 32 characters": (_set(("agency",), "R" * 32), False, False),
    "record id starting with _": (_set(("recordId",), "_T0"), False, False),
    "upper-case hex salt": (_set(("disclosed", "0", "salt"), "0x" + "AB" * 16), False, False),
    "checksummed signer": (
        _set(("receipt", "signer"), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        False,
        False,
    ),
    "negative intake time": (_set(("receipt", "intakeTime"), -1), False, False),
    "a non-empty list value": (_set(("disclosed", "0", "value"), [1]), False, False),
    "an empty object value": (_set(("disclosed", "0", "value"), {}), True, True),
    "a boolean as the version": (_set(("version",), True), False, False),
    "an unknown key": (_set(("note",), "x"), False, False),
    "another format": (_set(("format",), "sijill-bundle/2"), False, False),
}


@pytest.mark.parametrize("name", BOUNDARIES)
def test_schema_and_readers_agree_on_each_boundary(name: str) -> None:
    change, reader, schema = BOUNDARIES[name]
    document = copy.deepcopy(FULL)
    change(document)
    assert (_reader_accepts(document), _schema_accepts(document)) == (reader, schema)
    assert reader == schema or "(schema: looser)" in name  # the schema never refuses what a reader takes


def test_the_size_limit_counts_utf8_bytes_also_of_decoded_text() -> None:
    document = copy.deepcopy(FULL)
    document["disclosed"][0]["value"] = "م" * 140_000  # 140,000 characters, 280,000 bytes
    text = json.dumps(document, ensure_ascii=False)
    assert len(text) < bundle_module.MAX_BUNDLE_BYTES < len(text.encode())
    for data in (text, text.encode()):
        with pytest.raises(
            BundleError, match=f"at most 262144 bytes of UTF-8, this one {len(text.encode())}"
        ):
            load_bundle(data)
    # Decoded text with a lone surrogate is measured too, and refused as a bundle, not a crash.
    document = copy.deepcopy(FULL)
    document["disclosed"][0]["path"] = "/\ud800"
    with pytest.raises(BundleError, match="disclosed"):
        load_bundle(json.dumps(document, ensure_ascii=False))


def _code_points(text: str) -> set[int]:
    points: set[int] = set()
    for first, last in re.findall(r"U\+([0-9A-F]{4})(?:-U\+([0-9A-F]{4}))?", text):
        points.update(range(int(first, 16), int(last or first, 16) + 1))
    return points


def test_the_documented_canonical_text_steps_are_the_codes() -> None:
    section = PAGE[PAGE.index("### Canonical text") : PAGE.index("## Hashing")]
    white = re.search(r"White space is exactly these (\d+) code points[^:]*\):(.*?)\n\n", section, re.S)
    assert white is not None
    python_white = {c for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c))}
    assert _code_points(white[2]) == python_white and int(white[1]) == len(python_white)
    assert python_white == {c for c in range(sys.maxunicode + 1) if chr(c).isspace()}  # strip() alike
    removed = re.search(r"^1\. Remove (.*?)\n2\.", section, re.S | re.M)
    mapped = re.search(r"^2\. Map (.*?)\. Steps", section, re.S | re.M)
    assert removed is not None and mapped is not None
    assert _code_points(removed[1]) == set(_REMOVED)
    targets = {0x0643, 0x064A}  # kaf and yeh, named as what the letters map to
    assert _code_points(mapped[1]) - targets == set(_MAPPED)


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return str(item["type"])


def test_the_documented_views_are_the_compiled_abi(compiled: dict[str, CompiledContract]) -> None:
    rows = re.findall(
        r"^\| (RecordLedger|AgencyRegistry) \| `(\w+)\(([\w,]*)\)` `(0x[0-9a-f]{8})`[^|]* \| `([^`]+)`",
        PAGE,
        re.M,
    )
    assert {row[1] for row in rows} == {
        "registry",
        "batch",
        "leafStatus",
        "agencyInfo",
        "isSignerValidAt",
        "signerInfo",
    }
    for contract, name, inputs, selector, returns in rows:
        (function,) = [f for f in compiled[contract].abi if f.get("type") == "function" and f["name"] == name]
        assert function["stateMutability"] == "view", name
        assert ",".join(_abi_type(i) for i in function["inputs"]) == inputs, name
        assert ",".join(_abi_type(o) for o in function["outputs"]) == returns, name
        assert "0x" + keccak256(f"{name}({inputs})".encode())[:4].hex() == selector, name
    # The enum numbering the page gives is the contracts' order and ledger.chainview's.
    for enum, members, python in (
        ("LeafState", ("Current", "Superseded", "Revoked"), LeafState),
        ("AgencyStatus", ("None", "Active", "Suspended"), AgencyStatus),
    ):
        numbered = ", ".join(members)
        assert f"enum {enum} {{ {numbered} }}" in PAGE
        source = (PROJECT_ROOT / "contracts").glob("I*.sol")
        declared = [re.search(rf"enum {enum} \{{([^}}]*)\}}", p.read_text()) for p in source]
        (found,) = [m for m in declared if m is not None]
        assert tuple(re.findall(r"\w+", found[1])) == members
        assert [m.name for m in python] == [m.upper() for m in members]


def test_the_page_states_the_verdict_of_a_bad_receipt_signature() -> None:
    bad = [c for c in VECTORS["cases"] if c["name"].startswith("receipt signature")]
    assert len(bad) == 2
    for case in bad:
        assert f'"{case["name"]}"' in " ".join(PAGE.split())  # the page cites the vector
        assert case["expected"]["verdict"] == "not-authentic"
        assert case["expected"]["checks"]["receipt"] == "fail"
        assert case["expected"]["checks"]["authority"] == "unknown"
