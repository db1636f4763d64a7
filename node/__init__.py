"""The agency node: the only part of Sijill that talks to the chain (and, later, to LevelDB).

Modules: `toolchain` compiles the contracts, `devchain` runs the anvil development chain,
`chain` signs and sends transactions and decodes reverts, `deploy` deploys the contracts
idempotently, `cli` is the `sijill` command.
"""
