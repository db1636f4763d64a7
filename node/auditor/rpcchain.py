"""The chain as the audit reads it, over JSON-RPC: one agency's events, and the views it asks.

`RpcChain` gives the audit its `ChainLog` (`read_log`: the agency's events by block range, its
head and its batches' block times) and answers its `ChainAnswers` questions in JSON-RPC batches
of `RPC_BATCH` calls, through the project's one batch client (`node.chain.rpcbatch.RpcBatch`).
The few views are encoded with eth-abi from their signatures (`ViewFunction`), so an auditor
needs no compiler and no ABI files. Whatever the endpoint fails to answer is a `ChainError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from ledger.chainview import ChainUnavailable
from ledger.codes import agency_code, record_type
from ledger.hashing import keccak256
from node.auditor.report import (
    ChainBatch,
    ChainLog,
    LeafChange,
    ProgressStart,
    SignerInfo,
    code_text,
    no_progress,
)
from node.chain.rpcbatch import (
    AGENCY_INFO,
    BATCH,
    REGISTRY,
    SIGNER_VALID_AT,
    CallFailed,
    RpcBatch,
    ViewFunction,
    view_call,
)
from node.errors import ChainError

EVENTS = {
    "BatchAnchored": "BatchAnchored(bytes32,bytes32,bytes32,uint64,uint32,bytes32,address)",
    "LeafRevoked": "LeafRevoked(bytes32,bytes32,uint16)",
    "LeafSuperseded": "LeafSuperseded(bytes32,bytes32,bytes32,uint16)",
    "RecordTypeAllowed": "RecordTypeAllowed(bytes32,bytes32)",
    "RecordTypeDisallowed": "RecordTypeDisallowed(bytes32,bytes32)",
}
"""The events read, each with the agency as its first indexed argument."""
TOPICS = {keccak256(signature.encode()): name for name, signature in EVENTS.items()}
HEAD = ViewFunction("head(bytes32)", ("(bytes32,uint64)",))
SIGNER_INFO = ViewFunction("signerInfo(address)", ("(bytes32,uint64,uint64)",))
RECORD_TYPE_ALLOWED = ViewFunction("isRecordTypeAllowed(bytes32,bytes32)", ("bool",))
VIEWS = tuple(
    view.signature
    for view in (REGISTRY, HEAD, BATCH, AGENCY_INFO, SIGNER_INFO, SIGNER_VALID_AT, RECORD_TYPE_ALLOWED)
)
"""The view functions called (a test checks them against the compiled contracts)."""
RPC_BATCH = 200
"""Calls sent in one JSON-RPC batch."""
RPC_TIMEOUT = 10.0
"""Seconds a JSON-RPC request may take."""


def rpc_client(rpc: str) -> RpcBatch:
    """The JSON-RPC client an `RpcChain` reads through."""
    return RpcBatch(rpc, timeout=RPC_TIMEOUT, max_calls=RPC_BATCH)


class RpcChain:
    """The chain as the audit reads it: events by block range, views in JSON-RPC batches."""

    def __init__(
        self, client: RpcBatch, ledger: str, registry: str, agency: str, *, span: int = 5_000
    ) -> None:
        self.client = client
        self.ledger = to_checksum_address(ledger)
        self.registry = to_checksum_address(registry)
        self.agency = agency
        self.span = span
        self._agency_word = agency_code(agency)
        self._times: dict[int, int] = {}

    # -- single views ------------------------------------------------------------------------

    def ledger_registry(self) -> str:
        """The registry the RecordLedger consults (`registry()`)."""
        (address,) = self._view(self.ledger, REGISTRY, [])
        return str(address).lower()

    def has_code(self, address: str) -> bool:
        code = self._call("eth_getCode", [to_checksum_address(address), "latest"])
        return code not in ("0x", "", None)

    def agency_info(self) -> tuple[str, int]:
        """The agency's display name and status (0 unknown, 1 active, 2 suspended)."""
        ((name, status, _council, _at),) = self._view(self.registry, AGENCY_INFO, [self._agency_word])
        return str(name), int(status)

    def head(self) -> tuple[bytes, int]:
        """The agency's last batch on-chain: root and seq."""
        ((root, seq),) = self._view(self.ledger, HEAD, [self._agency_word])
        return bytes(root), int(seq)

    def latest_block(self) -> int:
        return _number(self._call("eth_blockNumber", []))

    # -- the log ---------------------------------------------------------------------------

    def read_log(self, from_block: int, to_block: int, progress: ProgressStart = no_progress) -> ChainLog:
        """The agency's events in [from_block, to_block], its head, and its batches' block times.

        Ranges of `span` blocks; a range the endpoint refuses (too many results, a range limit)
        is halved and asked again."""
        root, seq = self.head()
        log = ChainLog(self.agency, from_block, to_block, self.block_times([to_block])[to_block], seq, root)
        span = self.span
        advance = progress("reading the chain's log", to_block - from_block + 1)
        topics = [["0x" + t.hex() for t in TOPICS], "0x" + self._agency_word.hex()]
        start = from_block
        while start <= to_block:
            end = min(to_block, start + span - 1)
            query = {
                "address": [self.ledger, self.registry],
                "fromBlock": hex(start),
                "toBlock": hex(end),
                "topics": topics,
            }
            try:
                (entries,) = self.client.batch([("eth_getLogs", [query])])
            except ChainUnavailable as exc:
                raise ChainError(f"the chain stopped answering: {type(exc).__name__}: {exc}") from None
            if isinstance(entries, CallFailed):  # an error answer, not a transport failure
                if span == 1:
                    raise ChainError(f"eth_getLogs refused blocks {start} to {end}: {entries.message}")
                span = max(1, span // 2)
                continue
            try:
                for entry in entries:
                    self._take(log, entry)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ChainError(f"the chain stopped answering: {type(exc).__name__}: {exc}") from None
            advance(end - start + 1)
            start = end + 1
        times = self.block_times({b.block for b in log.batches.values()})
        for chained in log.batches.values():
            chained.timestamp = times[chained.block]
        return log

    def _take(self, log: ChainLog, entry: Any) -> None:
        topics = [_bytes(t) for t in entry["topics"]]
        name = TOPICS.get(topics[0])
        data = _bytes(entry["data"])
        block, index = int(entry["blockNumber"], 16), int(entry["logIndex"], 16)
        from_ledger = str(entry["address"]).lower() == self.ledger.lower()
        if name == "BatchAnchored" and from_ledger:
            log.batches[topics[3]] = ChainBatch(
                root=topics[3],
                seq=int.from_bytes(data[0:32], "big"),
                record_type=code_text(topics[2]),
                count=int.from_bytes(data[32:64], "big"),
                prev=data[64:96],
                signer="0x" + data[108:128].hex(),
                block=block,
                log_index=index,
            )
        elif name == "LeafRevoked" and from_ledger:
            log.changes.append(LeafChange(topics[2], None, int.from_bytes(data[:32], "big"), block))
        elif name == "LeafSuperseded" and from_ledger:
            log.changes.append(LeafChange(topics[2], topics[3], int.from_bytes(data[:32], "big"), block))
        elif name in ("RecordTypeAllowed", "RecordTypeDisallowed") and not from_ledger:
            events = log.type_events.setdefault(code_text(topics[2]), [])
            events.append((block, index, name == "RecordTypeAllowed"))

    # -- ChainAnswers ------------------------------------------------------------------------

    def signers_valid_at(self, questions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], bool]:
        asked = list(questions)
        answers = self._views(
            self.registry,
            SIGNER_VALID_AT,
            [[self._agency_word, to_checksum_address(signer), block] for signer, block in asked],
        )
        return {q: bool(a[0]) for q, a in zip(asked, answers, strict=True)}

    def signer_infos(self, accounts: Iterable[str]) -> dict[str, SignerInfo]:
        asked = list(accounts)
        answers = self._views(self.registry, SIGNER_INFO, [[to_checksum_address(a)] for a in asked])
        return {
            a: SignerInfo(bytes(r[0][0]), int(r[0][1]), int(r[0][2]))
            for a, r in zip(asked, answers, strict=True)
        }

    def record_types_allowed(self, types: Iterable[str]) -> dict[str, bool]:
        asked = list(types)
        answers = self._views(
            self.registry, RECORD_TYPE_ALLOWED, [[self._agency_word, _type_word(t)] for t in asked]
        )
        return {t: bool(a[0]) for t, a in zip(asked, answers, strict=True)}

    def batches(self, roots: Iterable[bytes]) -> dict[bytes, ChainBatch | None]:
        asked = list(roots)
        answers = self._views(self.ledger, BATCH, [[self._agency_word, root] for root in asked])
        found: dict[bytes, ChainBatch | None] = {}
        for root, ((kind, seq, block, timestamp, count),) in zip(asked, answers, strict=True):
            found[root] = None
            if seq:
                found[root] = ChainBatch(
                    root, seq, code_text(bytes(kind)), count, None, None, block, -1, timestamp
                )
        return found

    def block_times(self, blocks: Iterable[int]) -> dict[int, int]:
        asked = set(blocks)
        wanted = sorted(asked - set(self._times))
        answers = self._batch([("eth_getBlockByNumber", [hex(number), False]) for number in wanted])
        for number, block in zip(wanted, answers, strict=True):
            if not isinstance(block, dict):
                raise ChainError(f"the chain did not answer: block {number} is {block!r}")
            self._times[number] = _number(block.get("timestamp"))
        return {b: self._times[b] for b in asked}

    # -- calls -------------------------------------------------------------------------------

    def _view(self, to: str, view: ViewFunction, args: list[Any]) -> Any:
        return self._views(to, view, [args])[0]

    def _views(self, to: str, view: ViewFunction, calls: list[list[Any]]) -> list[Any]:
        """`view` called at `to` with each argument list, in JSON-RPC batches; decoded."""
        answers = self._batch([view_call(to, view, args) for args in calls])
        results = []
        for answer in answers:
            try:
                results.append(view.decode(answer))
            except Exception:  # no contract there, or another one
                size = len(answer.removeprefix("0x")) // 2 if isinstance(answer, str) else 0
                raise ChainError(
                    f"{view.signature} at {to} answered what it cannot ({size} bytes): is this the "
                    "Sijill deployment?"
                ) from None
        return results

    def _batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Each call's result, in as few round trips as the client's batches allow."""
        try:
            answers = self.client.batch(calls)
        except ChainUnavailable as exc:
            raise ChainError(f"the chain did not answer: {type(exc).__name__}: {exc}") from None
        for answer in answers:
            if isinstance(answer, CallFailed):
                raise ChainError(f"the chain did not answer: {type(answer).__name__}: {answer}")
        return answers

    def _call(self, method: str, params: list[Any]) -> Any:
        (answer,) = self._batch([(method, params)])
        return answer


def _number(value: Any) -> int:
    """A JSON-RPC quantity (0x-hex) as an int."""
    try:
        return int(value, 16)
    except (TypeError, ValueError) as exc:
        raise ChainError(f"the chain did not answer: {type(exc).__name__}: {exc}") from None


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x"))


def _type_word(kind: str) -> bytes:
    if kind.startswith("0x"):
        return bytes.fromhex(kind[2:])
    return record_type(kind)
