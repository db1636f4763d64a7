"""The `sijill` command: the top layer, and the only package that may import every other one.

Owns: the typer app (`cli.main`), its settings file (`cli.config`), the command groups of each
kind of user (`node`, `officer`, `agency` + `agency_vote`, `network` + `network_permissions`,
`verify`, `audit`), `serve` (one node and its API) and `demo` (`make run`; with `demo_nodes`,
`demo_scenario`, `demo_summary`).
Each command module parses options and prints; the work is done in `ledger`, `node` (and its
`node.chain`, `node.auditor`, `node.network` packages) and `api`.

Imports: anything. Nothing imports `cli`. A command module imports web3, eth_account, FastAPI,
uvicorn or WeasyPrint only inside the commands that use them, so `sijill --help` stays fast.
"""
