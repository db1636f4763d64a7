"""The chain toolkit: everything that compiles the contracts or talks to a chain over JSON-RPC.

Owns: `toolchain` (compile the contracts offline), `devchain` (run anvil configured like Besu),
`client` (connect, call views, decode reverts), the transaction manager (`txmanager`, with
`txrpc` for its retried account calls and `txfaults` for the pool's refusals: local signing, own
nonces, a few transactions in flight, resending), `deploy` (deploy idempotently, read a
deployment file), `views` (`ledger.chainview.ChainView` over web3), `rpcbatch` (the one JSON-RPC
batch client: many view calls in one request, encoded with eth-abi), `registry` (the
AgencyRegistry and its council: read agencies and proposals, propose and approve, with the
sender the caller gives), `limits` (the largest call the node sends).

Imports: `ledger` and `node.errors` only, so the agency node, the auditor's and the operator's
tools all build on it and it on none of them.
"""
