"""The agency node, and beside it the chain toolkit, the auditor's tools and the operator's tools.

Owns, at the top of the package, the agency node at run time: the encrypted store
(`node.store`), intake (`node.intake`), the batcher (`node.batcher`), what the registry lets the
node do (`node.authority`), the indexer, keys, shares, node-to-node proofs (`node.peer`), the
operator's admin socket and its actions (`node.admin`, `node.admin_actions`), backups and what
a restored store lacks (`node.backup`, `node.backup_gap`) and the service that wires them
(`node.service`). `node.errors` holds the errors every part of the package raises;
`node.failpoints` the crash points the tests use.

Subpackages, each with one job:
- `node.chain`: the chain toolkit (compile, dev chain, connect, send transactions, deploy,
  views, JSON-RPC batches, registry and council calls);
- `node.auditor`: the auditor's tools (verify a bundle, export a node's log, audit it);
- `node.network`: the operator's tools (Besu network files, allow-list sync, council votes).

Imports run one way: `ledger` <- `node.chain` <- the node <- `api` <- `cli`. `node.chain`
imports only `ledger` and `node.errors`; the node at run time imports neither `node.auditor` nor
`node.network`; nothing in `node` imports `api` or `cli` (tests/python/test_architecture.py).
"""
