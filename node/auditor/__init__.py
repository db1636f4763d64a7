"""The auditor's tools: check what a node claims against the chain alone.

Owns: `export` (a node's log of batches and receipts, written and read as files) and `audit`
(an agency's whole log against the chain: nothing missing, nothing back-dated, every receipt
honoured). Verifying one bundle is `ledger.verify` over `node.chain.rpcbatch`.

Imports: `ledger`, `node.chain`, `node.errors`, and the node's store read-only (`node.proofs`)
for an export. Never `api` or `cli`.
"""
