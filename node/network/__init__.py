"""The network operator's tools: the Besu QBFT network whose validators the agencies run.

Owns: `besu` (genesis, node configs, compose files of a network) and `allowlist` (keeping each
Besu node's permissioning allow-lists in line with the on-chain AgencyRegistry). docs/besu.md
is their manual.

Imports: `ledger`, `node.chain`, `node.errors`. Never `api` or `cli`.
"""
