"""The batcher: pending leaves become anchored batches, and queued amendments and revocations
reach the chain, crash-safely.

`Batcher` is built in layers, one module each, every layer a subclass of the one below:
- `node.batcher.log`: settings, state, the batch log in the store and the chain's answers about
  it, finalising a batch (`BatcherSettings`, `BatchLog`);
- `node.batcher.ops`: revocations and supersessions sent in bulk (`Operations`);
- `node.batcher.lineup`: recovering after a restart and lining the log up with the chain's when
  it is behind (lost blocks) or ahead (`ChainLineUp`);
- `node.batcher.waiting`: what waits and why, the receipts' promises (`Unanchored`) and what the
  registry holds back (`WhatWaits`);
- `node.batcher.loop`: the loop, closing batches and sending them (`Batcher`).

Imports `ledger`, `node.chain`, `node.store`, `node.authority` and the node's small helpers
(`node.errors`, `node.failpoints`, `node.proofs`); nothing of `api` or `cli`.
"""

from node.batcher.log import BatcherSettings
from node.batcher.loop import Batcher
from node.batcher.waiting import Unanchored

__all__ = ["Batcher", "BatcherSettings", "Unanchored"]
