"""JSON-RPC batches: many `eth_call`s in one HTTP POST, and the verifier's questions asked so.

Verifying thousands of bundles asks the chain thousands of small questions (mostly one
`leafStatus` per bundle). One HTTP round trip each would cost more than the verification
itself, so `RpcBatch` sends them as JSON-RPC 2.0 batches: a JSON array of requests in one POST,
answered by an array matched up by `id`. Anvil, Besu and Geth accept batches; Geth caps one at
1,000 calls and Besu at its `--rpc-http-max-batch-size`, so calls go in chunks of at most
`MAX_BATCH_CALLS` (lower it for a node that allows fewer).

Failures come at two levels, kept apart:
- the transport (connection refused, timeout, an HTTP error, an answer that is not JSON-RPC,
  a batch refused as a whole): `ChainUnavailable` for everything that was asked;
- one call (a revert, an unknown method, a result that does not decode): a `CallFailed` in
  that call's place, and every other answer of the batch stands.

`ViewFunction` encodes a contract view's arguments and decodes its result with eth_abi
(selector: the first 4 bytes of keccak256 of the signature). Decoded results are memoised by
their bytes: answers repeat a lot (every current leaf's status is the same 128 zero bytes), and
decoding costs more than the call's share of its HTTP request.

`ask_chain` asks, for a list of parsed bundles, everything `ledger.verify` will want to know,
de-duplicated, in two rounds (the signer question needs the anchoring block the first round
finds), and hands back a `PrefetchedChain` per bundle: a `ChainView` answering from memory.
The audit (`node.auditor.rpcchain`) sends its calls through `RpcBatch` too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import requests
from eth_abi.abi import decode, encode

from ledger.bundle import Bundle
from ledger.chainview import (
    AgencyStatus,
    BatchInfo,
    ChainUnavailable,
    LeafState,
    LeafStatusInfo,
    NoDeployment,
)
from ledger.codes import agency_code, decode_code
from ledger.errors import LedgerError
from ledger.hashing import keccak256

MAX_BATCH_CALLS = 1000

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


@dataclass(frozen=True, slots=True)
class CallFailed:
    """One call of a batch that got an error instead of a result; the rest of the batch stands."""

    call: str
    message: str
    code: int | None = None

    def __str__(self) -> str:
        code = f" (code {self.code})" if self.code is not None else ""
        return f"{self.call}: {self.message}{code}"


class RpcBatch:
    """A JSON-RPC client that sends its calls in batches; `requests` counts its HTTP requests,
    `calls` the calls in them."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        max_calls: int = MAX_BATCH_CALLS,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if max_calls < 1:
            raise ValueError("a batch holds at least one call")
        self.url = url
        self.timeout = timeout
        self.max_calls = max_calls
        self.requests = 0
        self.calls = 0
        self._session = requests.Session()
        self._session.headers.update({"Content-Type": "application/json", **(headers or {})})

    def call(self, method: str, params: Sequence[Any]) -> Any:
        """One call's result; `ChainUnavailable` if it failed."""
        (answer,) = self.batch([(method, params)])
        if isinstance(answer, CallFailed):
            raise ChainUnavailable(f"{self.url} answered {answer}")
        return answer

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Each call's result, or a `CallFailed` in its place, in the order of `calls`."""
        answers: list[Any] = []
        for start in range(0, len(calls), self.max_calls):
            answers += self._post(calls[start : start + self.max_calls])
        return answers

    def close(self) -> None:
        self._session.close()

    def _post(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)} for i, (m, p) in enumerate(calls)]
        try:
            response = self._session.post(
                self.url, data=json.dumps(body, separators=(",", ":")), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ChainUnavailable(
                f"no JSON-RPC node answers at {self.url}: {transport_reason(exc)}"
            ) from None
        self.requests += 1
        self.calls += len(calls)
        if response.status_code != 200:
            raise ChainUnavailable(f"{self.url} answered HTTP {response.status_code} {response.reason}")
        try:
            answers = response.json()
        except ValueError:
            raise ChainUnavailable(f"{self.url} answered something that is not JSON") from None
        if not isinstance(answers, list):
            # A node that refuses the batch as a whole (too many calls, batches disabled).
            error = answers.get("error", answers) if isinstance(answers, dict) else answers
            raise ChainUnavailable(f"{self.url} refused a batch of {len(calls)} calls: {error}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results: list[Any] = []
        for i, (method, _) in enumerate(calls):
            answer = by_id.get(i)
            if answer is None:
                results.append(CallFailed(method, "no answer in the batch"))
            elif "error" in answer:
                error = answer["error"] if isinstance(answer["error"], dict) else {"message": answer["error"]}
                results.append(CallFailed(method, str(error.get("message")), error.get("code")))
            else:
                results.append(answer.get("result"))
        return results


def transport_reason(exc: Exception) -> str:
    """A short reason for a transport error (`connection refused`, `timed out`)."""
    if isinstance(exc, requests.Timeout) or "Timeout" in type(exc).__name__:
        return "timed out"
    found = _ERRNO.search(str(exc))
    return found.group(1).strip().lower() if found else type(exc).__name__


@dataclass(frozen=True, slots=True)
class ViewFunction:
    """A contract view function: its signature (`leafStatus(bytes32,bytes32)`) and output types."""

    signature: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = field(init=False)
    selector: bytes = field(init=False)

    def __post_init__(self) -> None:
        arguments = self.signature[self.signature.index("(") + 1 : -1]
        object.__setattr__(self, "inputs", tuple(_split_types(arguments)))
        object.__setattr__(self, "selector", keccak256(self.signature.encode())[:4])

    @property
    def name(self) -> str:
        return self.signature[: self.signature.index("(")]

    def calldata(self, *args: Any) -> str:
        """The call's data as 0x-hex: selector and ABI-encoded arguments."""
        return "0x" + (self.selector + encode(list(self.inputs), list(args))).hex()

    def decode(self, result: str) -> tuple[Any, ...]:
        """The decoded result of a call (hex as the node returns it)."""
        return _decode(self.outputs, result)


@lru_cache(maxsize=4096)
def _decode(types: tuple[str, ...], result: str) -> tuple[Any, ...]:
    return tuple(decode(list(types), bytes.fromhex(result.removeprefix("0x"))))


def _split_types(text: str) -> list[str]:
    """`bytes32,(uint8,bool),address` → its top-level types."""
    types, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            types.append(text[start:i])
            start = i + 1
    return [*types, text[start:]] if text else []


def view_call(
    to: str, view: ViewFunction, args: Sequence[Any], block: str = "latest"
) -> tuple[str, list[Any]]:
    """The `eth_call` (method and params) of a view function, for `RpcBatch.batch`."""
    return "eth_call", [{"to": to, "data": view.calldata(*args)}, block]


def view_result(to: str, view: ViewFunction, answer: Any) -> Any:
    """A view call's decoded result, or a `CallFailed` naming the call."""
    where = f"{view.name} at {to}"
    if isinstance(answer, CallFailed):
        return CallFailed(where, answer.message, answer.code)
    if answer in ("0x", "", None):
        return CallFailed(where, "empty result (no contract there?)")
    try:
        return view.decode(answer)
    except Exception as exc:  # eth_abi's decoding errors share no base class worth naming
        return CallFailed(where, f"result does not decode: {exc}")


def eth_calls(
    client: RpcBatch, calls: Sequence[tuple[str, ViewFunction, Sequence[Any]]], block: str = "latest"
) -> list[Any]:
    """Each view call's decoded result, or a `CallFailed` in its place. `calls`: (address, view, args)."""
    raw = client.batch([view_call(to, view, args, block) for to, view, args in calls])
    return [view_result(to, view, answer) for (to, view, _), answer in zip(calls, raw, strict=True)]


# ------------------------------------------------------------------------ the verifier's questions

REGISTRY = ViewFunction("registry()", ("address",))
BATCH = ViewFunction("batch(bytes32,bytes32)", ("(bytes32,uint64,uint64,uint64,uint32)",))
LEAF_STATUS = ViewFunction("leafStatus(bytes32,bytes32)", ("(uint8,uint16,uint64,bytes32)",))
AGENCY_INFO = ViewFunction("agencyInfo(bytes32)", ("(string,uint8,bool,uint64)",))
SIGNER_VALID_AT = ViewFunction("isSignerValidAt(bytes32,address,uint256)", ("bool",))

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Deployment:
    """The contracts bundles are checked against on one chain (addresses lower-case hex)."""

    chain_id: int
    ledger: str
    registry: str


@dataclass
class PrefetchedChain:
    """A `ChainView` of one deployment answering from what `ask_chain` asked beforehand.

    An answer may be a `ChainUnavailable` (that call failed), raised when asked for; so is a
    question nobody asked. When `missing` says there is no RecordLedger at `ledger`, every
    question raises it, the registry included (it is the ledger's answer to `registry()`).
    """

    chain_id: int
    ledger: str
    deployed_registry: str
    missing: MissingDeployment | None = None
    block: int | ChainUnavailable = 0
    batches: dict[tuple[str, bytes], BatchInfo | ChainUnavailable | None] = field(default_factory=dict)
    leaves: dict[tuple[str, bytes], LeafStatusInfo | ChainUnavailable] = field(default_factory=dict)
    agencies: dict[str, AgencyStatus | ChainUnavailable] = field(default_factory=dict)
    signers: dict[tuple[str, str, int], bool | ChainUnavailable] = field(default_factory=dict)

    @property
    def registry(self) -> str:
        if self.missing is not None:
            raise self.missing.error()
        return self.deployed_registry

    def batch(self, agency: str, root: bytes) -> BatchInfo | None:
        return self._answer(self.batches, (agency, bytes(root)))

    def leaf_status(self, agency: str, leaf: bytes) -> LeafStatusInfo:
        return self._answer(self.leaves, (agency, bytes(leaf)))

    def agency_status(self, agency: str) -> AgencyStatus:
        return self._answer(self.agencies, agency)

    def signer_valid_at(self, agency: str, signer: str, block: int) -> bool:
        return self._answer(self.signers, (agency, signer.lower(), block))

    def latest_block(self) -> int:
        return self._answer({(): self.block}, ())

    def _answer(self, answers: Mapping[Any, T | ChainUnavailable], key: Any) -> T:
        if self.missing is not None:
            raise self.missing.error()
        if key not in answers:
            raise ChainUnavailable(f"{key!r} was not asked of the chain beforehand")
        answer = answers[key]
        if isinstance(answer, ChainUnavailable):
            raise ChainUnavailable(str(answer))
        return answer


@dataclass(frozen=True, slots=True)
class MissingDeployment:
    """No RecordLedger at `ledger` on chain `chain_id`: no code there, or code that does not
    answer `registry()` as a RecordLedger does (`contract`). `message` is the operator's error
    line, naming the endpoint and what `registry()` answered."""

    chain_id: int
    ledger: str
    contract: bool
    message: str

    def error(self) -> NoDeployment:
        """What the verifier is told when it asks the chain about a bundle that points here."""
        return NoDeployment(self.chain_id, self.ledger, self.contract)


def find_deployment(client: RpcBatch, chain_id: int, ledger: str) -> Deployment | MissingDeployment:
    """The deployment whose RecordLedger is at `ledger`, or why there is none there."""
    code, registry = client.batch(
        [
            ("eth_getCode", [ledger, "latest"]),
            ("eth_call", [{"to": ledger, "data": REGISTRY.calldata()}, "latest"]),
        ]
    )
    if isinstance(code, CallFailed) or code in ("0x", "", None):
        message = f"no contract at ledger {ledger} on chain {chain_id} ({client.url})"
        return MissingDeployment(chain_id, ledger, False, message)
    try:
        if isinstance(registry, CallFailed):
            raise ValueError(registry.message)
        (address,) = REGISTRY.decode(registry)
    except Exception as exc:  # a contract that is not a RecordLedger: no registry() to ask
        message = f"the contract at {ledger} on chain {chain_id} is not a RecordLedger (registry(): {exc})"
        return MissingDeployment(chain_id, ledger, True, message)
    return Deployment(chain_id, ledger, str(address).lower())


Question = tuple[str, ViewFunction, tuple[Any, ...]]


def ask_chain(
    client: RpcBatch, bundles: Sequence[Bundle], deployments: Sequence[Deployment | MissingDeployment]
) -> list[PrefetchedChain]:
    """A `PrefetchedChain` for each bundle, holding the answer to every question `ledger.verify`
    will ask of it; `deployments[i]` is what bundle i is checked against (or why there is none:
    nothing is asked for such a bundle, and its view raises `NoDeployment`).

    The questions mirror `ledger.verify`: the batch of the bundle's root when the bundle names
    this chain and ledger; the agency's status when it names this registry; the leaf's status
    when it names this whole deployment; the latest block; then, once the batches are known,
    whether the receipt's signer was the agency's at the anchoring block (else at the latest).
    Each distinct question is asked once.
    """
    views: dict[Deployment | MissingDeployment, PrefetchedChain] = {}
    for d in deployments:
        if d not in views:
            views[d] = (
                PrefetchedChain(d.chain_id, d.ledger, d.registry)
                if isinstance(d, Deployment)
                else PrefetchedChain(d.chain_id, d.ledger, "", missing=d)
            )
    chains = [views[d] for d in deployments]
    asked = [(b, c) for b, c in zip(bundles, chains, strict=True) if c.missing is None]
    if not asked:
        return chains

    first: dict[tuple[Any, ...], Question] = {}
    for b, chain in asked:
        agency = agency_code(b.agency)
        on_ledger = (b.chain_id, b.ledger) == (chain.chain_id, chain.ledger)
        if b.anchor is not None and on_ledger:
            first[("batch", id(chain), b.agency, b.anchor.root)] = (
                chain.ledger,
                BATCH,
                (agency, b.anchor.root),
            )
        if b.registry == chain.registry:
            first[("agency", id(chain), b.agency)] = (chain.registry, AGENCY_INFO, (agency,))
            if on_ledger:
                first[("leaf", id(chain), b.agency, b.leaf)] = (chain.ledger, LEAF_STATUS, (agency, b.leaf))
    block, *raw = client.batch([("eth_blockNumber", []), *(view_call(*q) for q in first.values())])
    latest = _convert(block, lambda h: int(h, 16))
    by_id = {id(c): c for _, c in asked}
    for chain in by_id.values():
        chain.block = latest
    for (kind, view_id, *key), question, answer in zip(first, first.values(), raw, strict=True):
        chain, result = by_id[view_id], view_result(question[0], question[1], answer)
        if kind == "batch":
            chain.batches[(key[0], key[1])] = _convert(result, _batch_info)
        elif kind == "agency":
            chain.agencies[key[0]] = _convert(result, lambda a: AgencyStatus(a[0][1]))
        else:
            chain.leaves[(key[0], key[1])] = _convert(result, _leaf_status)

    second: dict[tuple[int, str, str, int], Question] = {}
    for b, chain in asked:
        status = chain.agencies.get(b.agency) if b.registry == chain.registry else None
        at = _signer_block(b, chain)
        if isinstance(status, AgencyStatus) and status != AgencyStatus.NONE and at is not None:
            args = (agency_code(b.agency), bytes.fromhex(b.receipt.signer[2:]), at)
            second[(id(chain), b.agency, b.receipt.signer, at)] = (chain.registry, SIGNER_VALID_AT, args)
    if second:
        for (view_id, *key), answer in zip(second, eth_calls(client, list(second.values())), strict=True):
            by_id[view_id].signers[(key[0], key[1], key[2])] = _convert(answer, lambda a: bool(a[0]))
    return chains


def _signer_block(bundle: Bundle, chain: PrefetchedChain) -> int | None:
    """The block `ledger.verify` checks the receipt's signer at: the anchoring block when the
    root was anchored for this record type, else the latest (None: that answer is missing)."""
    if bundle.anchor is not None and (bundle.chain_id, bundle.ledger) == (chain.chain_id, chain.ledger):
        batch = chain.batches.get((bundle.agency, bundle.anchor.root))
        if isinstance(batch, ChainUnavailable):
            return None
        if batch is not None and batch.record_type == bundle.record_type:
            return batch.block_number
    return chain.block if isinstance(chain.block, int) else None


def _convert(answer: Any, convert: Callable[[Any], T]) -> T | ChainUnavailable:
    if isinstance(answer, CallFailed):
        return ChainUnavailable(str(answer))
    try:
        return convert(answer)
    except (LedgerError, ValueError, TypeError, IndexError) as exc:
        return ChainUnavailable(f"an answer that makes no sense ({answer!r}): {exc}")


def _batch_info(answer: tuple[Any, ...]) -> BatchInfo | None:
    kind, seq, block, timestamp, count = answer[0]
    return None if seq == 0 else BatchInfo(decode_code(kind), seq, block, timestamp, count)


def _leaf_status(answer: tuple[Any, ...]) -> LeafStatusInfo:
    state, reason, block, successor = answer[0]
    return LeafStatusInfo(LeafState(state), reason, block, bytes(successor))
