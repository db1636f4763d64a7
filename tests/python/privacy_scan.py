"""Searching what a run left behind for what must not be there: personal data anywhere on the
chain (every transaction and event, raw and ABI-decoded), secrets in logs, outputs and files.

Both searches look for every encoding a value could plausibly take, and report where each hit
is, so a failing test names the block, transaction, log or file and the value found."""

from __future__ import annotations

import base64
import bisect
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_abi_to_log_topic, get_abi_input_types
from hexbytes import HexBytes
from web3 import Web3

from ledger.codes import decode_code
from ledger.errors import InvalidCode
from node.chain.toolchain import CompiledContract

# Never in UTF-8 text (0xff, 0xfe are not UTF-8 bytes) nor in the UTF-16 of any name (U+FEFF
# twice): joining segments with it cannot make a match that spans two of them.
_SEPARATOR = b"\xff\xfe\xff\xfe"


# ------------------------------------------------------------------------------ the chain


@dataclass(frozen=True, slots=True)
class ChainCapture:
    """Everything a chain holds that a value could hide in, walked from block 0 to `head`.

    `raw` is (where, bytes): each transaction's input, each log's topics and data, each block's
    extraData. `decoded` is (where, value): every argument of every call, contract creation
    and event decoded through the contracts' ABIs, bytes32 codes also as their text. `calls`
    names each transaction's function ("unknown" for one to no known contract: raw only)."""

    head: int
    transactions: int
    logs: int
    raw: tuple[tuple[str, bytes], ...]
    decoded: tuple[tuple[str, str | int | bytes], ...]
    calls: tuple[tuple[str, str], ...]  # (transaction, function or "new <contract>" or "unknown")
    events: tuple[tuple[str, str], ...]  # (log, event name)

    @property
    def raw_bytes(self) -> int:
        return sum(len(data) for _, data in self.raw)


def capture_chain(
    w3: Web3, deployment: Mapping[str, Any], compiled: Mapping[str, CompiledContract]
) -> ChainCapture:
    """Walk every block from 0 to the head: transactions, receipts, logs, decoded through the ABIs."""
    contracts = {
        HexBytes(entry["address"]): w3.eth.contract(address=entry["address"], abi=compiled[name].abi)
        for name, entry in deployment["contracts"].items()
    }
    events: dict[bytes, tuple[str, Any]] = {}
    for contract in contracts.values():
        for item in contract.abi:
            if item["type"] == "event":
                events[bytes(event_abi_to_log_topic(item))] = (item["name"], contract)
    raw: list[tuple[str, bytes]] = []
    decoded: list[tuple[str, str | int | bytes]] = []
    calls: list[tuple[str, str]] = []
    named_events: list[tuple[str, str]] = []
    head = w3.eth.block_number
    transactions = logs = 0
    for number in range(head + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        raw.append((f"block {number} extraData", bytes(block["extraData"])))
        for tx in block["transactions"]:
            transactions += 1
            where = f"block {number} tx {tx['hash'].to_0x_hex()}"
            data = bytes(tx["input"])
            raw.append((f"{where} input", data))
            call = _decode_call(tx.get("to"), data, contracts, compiled)
            calls.append((where, "unknown" if call is None else call[0]))
            if call is not None:
                decoded.extend((f"{where} {call[0]}{path}", value) for path, value in _leaves(call[1]))
            receipt = w3.eth.get_transaction_receipt(tx["hash"])
            for log in receipt["logs"]:
                logs += 1
                at = f"{where} log {log['logIndex']}"
                for i, topic in enumerate(log["topics"]):
                    raw.append((f"{at} topic {i}", bytes(topic)))
                raw.append((f"{at} data", bytes(log["data"])))
                if log["topics"] and bytes(log["topics"][0]) in events:
                    event, contract = events[bytes(log["topics"][0])]
                    named_events.append((at, event))
                    args = contract.events[event]().process_log(log)["args"]
                    decoded.extend((f"{at} {event}{path}", value) for path, value in _leaves(dict(args)))
    return ChainCapture(
        head, transactions, logs, tuple(raw), tuple(decoded), tuple(calls), tuple(named_events)
    )


def _decode_call(
    to: str | None, data: bytes, contracts: Mapping[HexBytes, Any], compiled: Mapping[str, CompiledContract]
) -> tuple[str, Any] | None:
    """(label, arguments) of a call to a known contract or a creation of one; None otherwise."""
    if to is None:
        for name, built in compiled.items():
            if data.startswith(built.bytecode):
                constructor = next(item for item in built.abi if item["type"] == "constructor")
                values = abi_decode(get_abi_input_types(constructor), data[len(built.bytecode) :])
                names = [i["name"] or str(n) for n, i in enumerate(constructor["inputs"])]
                return f"new {name}", dict(zip(names, values, strict=True))
        return None
    contract = contracts.get(HexBytes(to))
    if contract is None:
        return None
    function, args = contract.decode_function_input(data)
    return str(function.fn_name), args


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str | int | bytes]]:
    """Every scalar inside decoded ABI values, with its path; a bytes32 code also as its text."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    elif isinstance(value, bytes):
        yield path, bytes(value)
        code = _code(value)
        if code is not None:
            yield path + " (code)", code
    elif isinstance(value, bool):
        yield path, int(value)
    elif isinstance(value, int | str):
        yield path, value


def _code(value: bytes) -> str | None:
    try:
        return decode_code(value) if len(value) == 32 else None
    except InvalidCode:
        return None


# ------------------------------------------------------------------------- personal data


@dataclass(frozen=True, slots=True)
class Hit:
    """`value` (from `sources`) found at `where`, in the form `form`."""

    where: str
    value: str
    form: str
    sources: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {self.value!r} as {self.form} (field {', '.join(self.sources[:3])})"


def text_forms(value: str) -> dict[str, bytes]:
    """The bytes a text value may take: UTF-8, UTF-16-LE and UTF-16-BE of its NFC and NFD forms."""
    forms: dict[str, bytes] = {}
    for normal in ("NFC", "NFD"):
        text = unicodedata.normalize(normal, value)
        for codec in ("utf-8", "utf-16-le", "utf-16-be"):
            encoded = text.encode(codec)
            if encoded not in forms.values():
                forms[f"{codec} {normal}"] = encoded
    return forms


def integer_word(value: str, min_bytes: int) -> bytes | None:
    """A decimal value as a 32-byte big-endian word, when its significant bytes are at least
    `min_bytes` (a smaller number is as likely to be a count, a block number or a sequence)."""
    if not value.isascii() or not value.isdigit() or len(value) > 77:
        return None
    number = int(value)
    if number >= 2**256 or (number.bit_length() + 7) // 8 < min_bytes:
        return None
    return number.to_bytes(32, "big")


def search_chain(capture: ChainCapture, needles: Mapping[str, Iterable[str]], min_bytes: int) -> list[Hit]:
    """Every occurrence on the chain of each needle value (value -> where it comes from).

    Values of at least `min_bytes` UTF-8 bytes are searched in every raw byte string, in every
    form of `text_forms` (and large integers as 32-byte words), and as substrings of every
    decoded text argument; shorter values only as the whole of a decoded text argument, where a
    chance match is impossible."""
    starts, chunks, position = [], [], 0
    for _, data in capture.raw:
        starts.append(position)
        chunks.append(data)
        position += len(data) + len(_SEPARATOR)
    haystack = _SEPARATOR.join(chunks)
    texts = [(where, value) for where, value in capture.decoded if isinstance(value, str)]
    numbers: dict[int, list[str]] = {}
    for where, value in capture.decoded:
        if isinstance(value, int):
            numbers.setdefault(value, []).append(where)
    hits: list[Hit] = []
    for value, sources in needles.items():
        found = tuple(sorted(sources))
        variants = {unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)}
        if len(value.encode()) < min_bytes:
            hits += [Hit(w, value, "decoded text", found) for w, text in texts if text in variants]
            continue
        forms = text_forms(value)
        word = integer_word(value, min_bytes)
        if word is not None:
            forms["uint256 word"] = word
            hits += [Hit(w, value, "decoded uint", found) for w in numbers.get(int(value), [])]
        for form, needle in forms.items():
            at = haystack.find(needle)
            while at != -1:
                segment = bisect.bisect_right(starts, at) - 1
                hits.append(
                    Hit(f"{capture.raw[segment][0]} (byte {at - starts[segment]})", value, form, found)
                )
                at = haystack.find(needle, at + 1)
        hits += [
            Hit(w, value, "decoded text", found) for w, text in texts if any(v in text for v in variants)
        ]
    return hits


# -------------------------------------------------------------------------------- secrets


def secret_forms(secret: bytes | str) -> dict[str, bytes]:
    """The forms a secret may be written in: for bytes (a key), raw, hex in lower and upper
    case with and without 0x, and base64 (standard and URL-safe, at each of the three
    alignments it can have inside a longer base64 text); for text (a passphrase, a token), the
    text itself and the same hex and base64 forms of its UTF-8."""
    data = secret.encode() if isinstance(secret, str) else secret
    forms = {"text" if isinstance(secret, str) else "raw": data}
    hexed = data.hex()
    forms |= {
        "hex": hexed.encode(),
        "HEX": hexed.upper().encode(),
        "0x hex": b"0x" + hexed.encode(),
        "0x HEX": b"0x" + hexed.upper().encode(),
        "0X HEX": b"0X" + hexed.upper().encode(),
    }
    for shift in range(3):
        shifted = b"\0" * shift + data
        encoded = base64.b64encode(shifted)
        # Only the characters that depend on `data` alone: not those shared with the bytes before
        # or after it in a longer encoded text.
        core = encoded[-(-8 * shift // 6) : (8 * len(shifted)) // 6]
        forms[f"base64 (offset {shift})"] = core
        forms[f"base64url (offset {shift})"] = core.replace(b"+", b"-").replace(b"/", b"_")
    return forms


@dataclass(frozen=True, slots=True)
class SecretHit:
    artifact: str
    secret: str
    form: str

    def __str__(self) -> str:
        return f"{self.secret} in {self.artifact} ({self.form})"


def search_secrets(
    artifacts: Mapping[str, bytes],
    secrets: Mapping[str, bytes | str],
    allowed: Mapping[str, Iterable[str]] | None = None,
) -> list[SecretHit]:
    """Every secret (name -> value) found in any artifact (name -> content) in any of its
    `secret_forms`, except in the artifacts `allowed[secret name]` names (where it is by design)."""
    allowed = allowed or {}
    hits = []
    for secret, value in secrets.items():
        forms = secret_forms(value)
        exempt = set(allowed.get(secret, ()))
        for artifact, content in artifacts.items():
            if artifact in exempt:
                continue
            for form, needle in forms.items():
                if needle in content:
                    hits.append(SecretHit(artifact, secret, form))
                    break
    return hits
