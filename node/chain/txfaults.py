"""What the node answers a transaction with, and the recovery each answer calls for.

Between the manager and a block lie an HTTP connection and a transaction pool. Faults of the
connection (refused or dropped connections, timeouts, HTTP 5xx/429: `is_transport_error`) are
retried with backoff (node/chain/txrpc.py). The pool's refusals of a sent transaction are read from
their messages (`classify`) and mapped to a recovery, which `TxManager` carries out
(node/chain/txmanager.py):

| the node says (Besu / anvil, geth)                                   | meaning, recovery              |
| -------------------------------------------------------------------- | ------------------------------ |
| Known transaction / transaction already imported, already known      | it is in the pool: sent        |
| Nonce too low / nonce too low                                        | nonce used: ours? sent; else   |
| Replacement transaction underpriced (both)                           |   resync nonce, sign anew      |
| Nonce too high, Transaction nonce is too distant from current sender | gap: resend our earlier ones,  |
|   nonce                                                              |   then resync nonce            |
| Gas price below current base fee / max fee per gas less than block   | fees moved: re-read fees, sign |
|   base fee, transaction underpriced                                  |   anew (same nonce)            |
| Gas price below configured minimum gas price (Besu)                  | re-read fees; the same: fail,  |
|                                                                      |   naming --min-gas-price       |
| Sender account not authorized to send transactions (Besu)            | fail, naming sync-permissions  |
| txpool is full; Initial sync is still in progress, Transaction pool  | back off and retry             |
|   not enabled (Besu, a node still syncing)                           |                                |
| anything else (upfront cost, wrong chain id, ...)                    | `ChainError` naming it         |

Besu's messages and codes are its RpcErrorType (hyperledger/besu, ethereum/api): -32000
"Known transaction", -32001 "Nonce too low", -32006 "Nonce too high", -32000 "Transaction
nonce is too distant from current sender nonce" (the layered pool keeps at most
--tx-pool-max-future-by-sender future nonces per sender), -32009 "Gas price below configured
minimum gas price" / "Gas price below current base fee", -32007 "Sender account not
authorized to send transactions" (the sender is not on the node's account allow-list:
https://besu.hyperledger.org/private-networks/how-to/use-permissioning/local), -32008
"Initial sync is still in progress", -32002 "Transaction pool not enabled. (Either txpool
explicitly disabled, or node not yet in sync)." A refusal consumes no nonce: the next send
signs the same nonce again. docs/besu-operations.md has what the operator does for each.
"""

from __future__ import annotations

import enum

import requests
from web3.exceptions import ProviderConnectionError


class PoolVerdict(enum.Enum):
    """What the pool did with a sent transaction (ACCEPTED), or why it refused it."""

    ACCEPTED = "accepted"
    KNOWN = "known"
    NONCE_TAKEN = "nonce taken"
    NONCE_GAP = "nonce gap"
    UNDERPRICED = "underpriced"
    BELOW_MINIMUM = "below the node's minimum gas price"
    NOT_AUTHORIZED = "sender not authorized"
    BUSY = "busy"
    REFUSED = "refused"


# Matched in order, lower case: "replacement transaction underpriced" before "underpriced".
_POOL_MESSAGES: tuple[tuple[str, PoolVerdict], ...] = (
    ("known transaction", PoolVerdict.KNOWN),  # Besu
    ("already known", PoolVerdict.KNOWN),  # geth
    ("already imported", PoolVerdict.KNOWN),  # anvil, reth
    ("replacement transaction underpriced", PoolVerdict.NONCE_TAKEN),
    ("nonce too low", PoolVerdict.NONCE_TAKEN),
    ("nonce is too low", PoolVerdict.NONCE_TAKEN),
    ("nonce too high", PoolVerdict.NONCE_GAP),
    ("too distant from current sender nonce", PoolVerdict.NONCE_GAP),  # Besu's layered pool
    ("gas price below configured minimum gas price", PoolVerdict.BELOW_MINIMUM),  # Besu -32009
    ("gas price below", PoolVerdict.UNDERPRICED),  # Besu -32009: "... below current base fee"
    ("less than block base fee", PoolVerdict.UNDERPRICED),  # anvil, geth
    ("transaction underpriced", PoolVerdict.UNDERPRICED),
    ("sender account not authorized to send transactions", PoolVerdict.NOT_AUTHORIZED),  # Besu -32007
    ("pool is full", PoolVerdict.BUSY),
    ("txpool is full", PoolVerdict.BUSY),
    ("initial sync is still in progress", PoolVerdict.BUSY),  # Besu -32008
    ("transaction pool not enabled", PoolVerdict.BUSY),  # Besu -32002: not yet in sync (or disabled)
)


def classify(message: str) -> PoolVerdict:
    """The verdict in a pool's message (REFUSED when none is recognised)."""
    lowered = message.lower()
    return next((kind for text, kind in _POOL_MESSAGES if text in lowered), PoolVerdict.REFUSED)


# Faults of the way to the node, not answers of the node: worth another try.
_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # connection cut mid-answer
    ProviderConnectionError,
)


def is_transport_error(exc: BaseException) -> bool:
    """Whether `exc` is a fault of the way to the node, worth another try."""
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status >= 500 or status == 429
    return isinstance(exc, _TRANSPORT_ERRORS)
