"""The Python reference as an oracle for the JavaScript tests (tests/js/*.test.mjs).

Reads a JSON list of requests on stdin and writes one answer per request on stdout, so a test
asks Python once for a whole table of cases. An answer is {"ok": value} or {"error": [class name,
message]}. Integers beyond 2^53 come back as "big:<digits>" strings (JavaScript's JSON.parse
would round them); byte strings go both ways as 0x-hex.

    .venv/bin/python tests/js/oracle.py < requests.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.bundle import bundle_to_json, load_bundle, parse_bundle
from ledger.canonical import canonical_json, is_canonical_text, normalize_text, show_refused
from ledger.chainview import ChainUnavailable, MemoryChain
from ledger.fields import RecordKey, field_hash, record_digest
from ledger.receipts import Receipt, ReceiptDomain, receipt_digest, recover_signer
from ledger.verify import verify

MAX_EXACT = 2**53 - 1


def norm(value: Any) -> Any:
    """JSON JavaScript reads exactly: big integers as strings, bytes as hex."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_EXACT else f"big:{value}"
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    return [norm(v) for v in value]


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


class DownChain:
    """A chain view whose every question fails, as an unreachable node's does."""

    def __init__(self, message: str, chain: MemoryChain) -> None:
        self.chain_id, self.ledger, self.registry = chain.chain_id, chain.ledger, chain.registry
        self._message = message

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any) -> Any:
            raise ChainUnavailable(self._message)

        return fail


def answer(request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "whitespace":
        return [c for c in range(0x110000) if chr(c).isspace()]
    if op == "normalize":
        return [normalize_text(request["text"]), is_canonical_text(request["text"])]
    if op == "show_refused":
        return show_refused(request["text"])
    if op == "canonical":
        return canonical_json(request["value"])
    if op == "field":
        return field_hash(request["path"], unhex(request["salt"]), request["value"])
    if op == "digest":
        key = RecordKey(request["agency"], request["recordType"], request["recordId"], request["version"])
        return record_digest(key, {path: unhex(h) for path, h in request["hashes"].items()})
    if op == "receipt":
        m, d = request["message"], request["domain"]
        receipt = Receipt(
            m["agency"],
            m["recordType"],
            m["recordId"],
            m["version"],
            unhex(m["leaf"]),
            m["intakeTime"],
            m["anchorBy"],
        )
        return receipt_digest(receipt, ReceiptDomain(d["chainId"], d["verifyingContract"]))
    if op == "recover":
        return recover_signer(unhex(request["digest"]), unhex(request["signature"]))
    if op == "load":
        data = request["text"] if "text" in request else unhex(request["bytes"])
        return bundle_to_json(load_bundle(data))
    if op == "parse":
        return bundle_to_json(parse_bundle(request["doc"]))
    if op == "verify":
        chain = MemoryChain.from_json(request["chain"])
        view = DownChain(request["down"], chain) if "down" in request else chain
        document = request.get("text", request.get("doc"))
        if "bytes" in request:
            document = unhex(request["bytes"])
        return verify(document, view, now=request["now"]).to_json()
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    answers = []
    for request in json.load(sys.stdin):
        try:
            answers.append({"ok": norm(answer(request))})
        except Exception as exc:  # the class name is part of the answer: LedgerError or not
            answers.append({"error": [type(exc).__name__, str(exc)]})
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
