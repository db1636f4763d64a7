"""Officer tokens: the bearer tokens officers call the API with, kept as their SHA-256 only.

An entry `token/<sha256 hex>` holds the officer, the expiry and whether it is revoked. The first
`TOKEN_ID_LENGTH` hex digits of the hash are the token's id: it names the officer in the audit
trail, the rate limit and idempotency keys, and `sijill officer list` shows it, so it is unique.
A token is looked up by its id and taken only if the whole stored hash matches, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from node.errors import StoreError
from node.store.database import Database, WriteBatch
from node.store.layout import dump_json, load_json, make_key

MIN_TOKEN_LENGTH = 32
TOKEN_ID_LENGTH = 16


def hash_token(token: str) -> str:
    """What is stored of an officer token: its SHA-256, hex. Its first `TOKEN_ID_LENGTH` digits
    are the token's id, which names the officer in the audit trail and in `sijill officer list`."""
    return hashlib.sha256(token.encode()).hexdigest()


class OfficerTokens(Database):
    """Registering, finding, revoking and listing officer tokens."""

    def add_token(
        self, token: str, officer: dict[str, Any], expires_at: int | None, *, wb: WriteBatch | None = None
    ) -> str:
        """Register an officer's bearer token (stored as its SHA-256 only); return that hash.
        Tokens are random and at least `MIN_TOKEN_LENGTH` characters (`secrets.token_urlsafe(32)`)."""
        if len(token) < MIN_TOKEN_LENGTH:
            raise StoreError(f"an officer token must be at least {MIN_TOKEN_LENGTH} random characters")
        digest = hash_token(token)
        key = make_key("token", digest)
        # The id names the officer everywhere (audit trail, rate limit, idempotency keys): unique.
        if any(True for _ in self.iter_prefix(make_key("token", digest[:TOKEN_ID_LENGTH]), limit=1)):
            raise StoreError(f"token {digest[:TOKEN_ID_LENGTH]} is already registered; issue a fresh token")
        entry = {"officer": officer, "expiresAt": expires_at, "revoked": False}
        self._put(wb, key, dump_json(entry))
        return digest

    def find_token(self, token: str, *, now: int) -> dict[str, Any] | None:
        """The officer a token belongs to, or None if unknown, revoked or expired at `now`.

        The entry is looked up by the token's id (the first digits of its SHA-256) and taken only
        if its whole stored hash equals the token's, compared in constant time. Nothing the store
        compares is the token itself: how long a look-up takes depends at most on how many leading
        digits of the presented token's hash some stored hash shares, and that says nothing about
        any token (working back from a hash to a token is a SHA-256 preimage). docs/api.md says
        the same for every secret the API takes."""
        digest = hash_token(token)
        entry = None
        # Ids are unique (add_token): a small limit makes the look-up one query on PostgreSQL.
        for key, value in self.iter_prefix(make_key("token", digest[:TOKEN_ID_LENGTH]), limit=8):
            if hmac.compare_digest(key, make_key("token", digest)):
                entry = load_json(key, value)
        if entry is None or entry["revoked"]:
            return None
        if entry["expiresAt"] is not None and now >= entry["expiresAt"]:
            return None
        officer: dict[str, Any] = entry["officer"]
        return officer

    def revoke_token(self, token_hash: str, *, wb: WriteBatch | None = None) -> str:
        """Revoke the token whose hash is `token_hash` or starts with it (8 hex digits at least,
        as `list_tokens` shows); return the full hash."""
        if not 8 <= len(token_hash) <= 64 or not set(token_hash) <= set("0123456789abcdef"):
            raise StoreError(f"{token_hash!r} is not a token hash (8 to 64 lower-case hex digits)")
        matches = list(self.iter_prefix(make_key("token", token_hash)))
        if len(matches) != 1:
            problem = "no token" if not matches else f"{len(matches)} tokens"
            raise StoreError(f"{problem} match {token_hash}; give more digits of the hash")
        key, value = matches[0]
        entry = load_json(key, value)
        entry["revoked"] = True
        self._put(wb, key, dump_json(entry))
        return key.decode().removeprefix("token/")

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every registered token: `tokenId` (first 16 hex digits of its hash), `officer`,
        `expiresAt`, `revoked`. Never the token itself: the store does not have it."""
        tokens = []
        for key, value in self.iter_prefix(b"token/"):
            token_id = key.decode().removeprefix("token/")[:TOKEN_ID_LENGTH]
            tokens.append({"tokenId": token_id, **load_json(key, value)})
        return tokens
