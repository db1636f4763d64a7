"""The network operator's tools: the Besu QBFT network whose validators the agencies run.

Owns generating a network (`sijill network init`): `generate` (writes the directory; its
docstring lists the files), `options` (what is asked for and the constants every file shares),
`agencies` (the agencies file, checked), `extradata` (the QBFT extraData codec), `genesis`
(genesis.json), `nodekeys` (node keys, enodes, `unlock-key`), `configs` (each validator's
config.toml and permissions_config.toml), `compose` (docker-compose.yml); and `allowlist`
(keeping each Besu node's permissioning allow-lists in line with the on-chain AgencyRegistry);
and `council` (council governance beyond single contract calls: the voting key, sending with
the node's transaction manager, a signer rotation, a refusal in words; the calls themselves
are `node.chain.registry`). docs/besu.md is their manual.

Imports: `ledger`, `node.chain`, `node.errors`, and the node's `keys` and `txmanager`. Never
`api`. (`allowlist` still takes its command's option types from `cli`, for now.)
"""
