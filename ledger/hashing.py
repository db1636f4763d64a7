"""keccak-256, the one hash of the system, from the fastest backend available.

Hashing is the hot path (every field, record, leaf and tree node). Measured on this machine for
a 64-byte input: `safe-pysha3` about 1.7 µs a hash, pycryptodome (what `eth_hash.auto` picks)
about 11 µs. `safe-pysha3` is a dependency; pycryptodome stays as the fallback so the core
still works where the C extension cannot be built. `KECCAK_BACKEND` says which one is in use.
"""

from collections.abc import Callable, Iterable
from typing import Any

try:
    import sha3 as _sha3

    def _pysha3(data: bytes) -> bytes:
        digest: bytes = _sha3.keccak_256(data).digest()
        return digest

    _keccak: Callable[[bytes], bytes] = _pysha3
    _new: Callable[[bytes], Any] | None = _sha3.keccak_256
    KECCAK_BACKEND = "safe-pysha3"
except ImportError:  # pragma: no cover - exercised only where safe-pysha3 is missing
    from Crypto.Hash import keccak as _cryptodome

    def _pycryptodome(data: bytes) -> bytes:
        return _cryptodome.new(data=data, digest_bits=256).digest()

    _keccak = _pycryptodome
    _new = None
    KECCAK_BACKEND = "pycryptodome"


def keccak256(data: bytes) -> bytes:
    """The keccak-256 (Ethereum's, not NIST SHA3-256) digest of `data`."""
    return _keccak(data)


def keccak256_many(preimages: Iterable[bytes]) -> list[bytes]:
    """keccak-256 of each preimage, without a Python call per hash on the fast backend (the hash
    objects are made and finished by `map`, in C)."""
    if _new is None:
        return list(map(_keccak, preimages))
    return list(map(_sha3.keccak_256.digest, map(_new, preimages)))


def keccak256_chain(data: bytes) -> tuple[Any, Any]:
    """(keccak256(data), keccak256(keccak256(data))): a record's digest and its leaf, in one call.

    Typed Any so callers may name the two as they are (`Hash32`, which is `ledger.merkle`'s)."""
    if _new is None:
        first = _keccak(data)
        return first, _keccak(first)
    first = _new(data).digest()
    return first, _new(first).digest()
