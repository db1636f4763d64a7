"""The network operator's tools: the Besu QBFT network whose validators the agencies run, and
the council that governs the registry. docs/besu.md and docs/besu-operations.md are their manual.

Owns:
- generating a network (`sijill network init`): `generate` (writes the directory; its
  docstring lists the files), `options` (what is asked for and the constants every file
  shares), `agencies` (the agencies file, checked), `extradata` (the QBFT extraData codec),
  `genesis` (genesis.json), `nodekeys` (node keys, enodes, `unlock-key`), `configs` (each
  validator's config.toml and permissions_config.toml), `compose` (docker-compose.yml);
- keeping each Besu node's account allow-list in line with the on-chain AgencyRegistry
  (`sijill network sync-permissions`): `allowlist` (the sync), `wanted` (what the lists must
  hold, and which nodes), `perm` (one node's PERM JSON-RPC API);
- council governance beyond single contract calls: `council` (the voting key, sending with the
  node's transaction manager, a signer rotation, a refusal in words); the calls themselves are
  `node.chain.registry`.

The commands (options, output) are in `cli/network.py`, `cli/network_permissions.py`,
`cli/agency.py` and `cli/agency_vote.py`.

Imports: `ledger`, `node.chain` (its transaction manager sends the votes), `node.errors` and
`node.keys` (keystores). Never `api` or `cli`, nor typer or rich.
"""
