"""Sijill's pure core: the data and the rules every other piece shares.

Nothing here does I/O. The core imports no web3, no plyvel, no fastapi and no HTTP or
database client: only data in, data out, so the node, the API, the CLI and the verify page
agree on one definition of records, hashes, proofs and verification.
"""

from ledger.errors import LedgerError

__all__ = ["LedgerError"]
