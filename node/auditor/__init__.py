"""The auditor's tools: check what a node claims against the chain alone.

Owns:
- verifying bundles in bulk (`sijill verify`): `sources` (bundles from files, directories,
  stdin and URLs) and `verify` (chunks parsed, the chain asked in JSON-RPC batches through
  `node.chain.rpcbatch`, `ledger.verify` run, results built);
- a node's log as files: `export` (the `sijill-export/1` format and its writing, from a node's
  store or its API) and `exportread` (reading it back, strictly);
- the audit of an agency's whole log against the chain (nothing missing, nothing back-dated,
  every receipt honoured): `report` (what the audit reads and reports), `audit` (the checks of
  the log), `receipts` (the receipts' checks, signer recovery), `rpcchain` (the chain read
  over JSON-RPC through `node.chain.rpcbatch`) and `html` (the report as an HTML page).

Imports: `ledger`, `node.chain`, `node.errors`, and the node's store read-only (`node.proofs`,
a `node.store` handed in) for an export. Never `api` or `cli`.
"""
