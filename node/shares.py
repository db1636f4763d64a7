"""Shares: what a certificate's QR code points at — one record version, with the fields its
holder chose to disclose, behind an unguessable token.

An officer makes a share for a citizen (`POST /v1/records/{type}/{id}/shares`); the token goes
into the certificate's QR code as a short URL (`/V/<token>`); anyone holding the URL can fetch
the disclosed bundle and verify it, and nothing else. The token is 160 random bits written in
RFC 4648 base32 without padding (32 characters of A-Z and 2-7, so a QR code carries the whole
URL in its dense alphanumeric mode). Guessing one is hopeless: with a billion shares issued, a
guess succeeds with probability 2^-130, and the public routes allow a handful of misses a
minute per client.

Only the token's SHA-256 is a key (`share/<sha256 hex>`), so the store alone does not give a
working URL. The entry is a secret (AES-GCM, like record fields): which record a token opens is
nobody's business but the holder's. A second key per share, `shares-of/<type>/<id>/<seq>`,
lists a record's shares in the order they were made, for its officers, without tokens.

A holder can withdraw a share (the QR code then says so), and a new share of a later version
can be linked from the earlier ones (`forward_earlier`), so that whoever scans an old,
superseded certificate is pointed at the current one. The link is off by default: the holder
decides who learns of the new version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from node.errors import NodeError
from node.store import Store, WriteBatch, make_key

TOKEN_BYTES = 20
TOKEN_PATTERN = re.compile(r"[A-Z2-7]{32}")


class ShareError(NodeError):
    """A share that cannot be made, found or withdrawn."""


@dataclass(frozen=True, slots=True)
class Share:
    share_id: str  # the first 16 hex digits of the token's SHA-256: what officers and audits see
    record_type: str
    record_id: str
    version: int
    fields: tuple[str, ...] | None  # JSON Pointers disclosed; None: every field
    created_at: int
    actor: str
    withdrawn_at: int | None = None
    successor: str | None = None  # the token of a later share this one points to

    def to_json(self) -> dict[str, Any]:
        return {
            "shareId": self.share_id,
            "recordType": self.record_type,
            "recordId": self.record_id,
            "version": self.version,
            "fields": None if self.fields is None else list(self.fields),
            "createdAt": self.created_at,
            "withdrawnAt": self.withdrawn_at,
        }


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode()


def normalize_token(text: str) -> str | None:
    """The token in canonical (upper) case, or None when it cannot be one: base32 is read
    case-insensitively, since a person may type it from paper."""
    token = text.strip().upper()
    return token if TOKEN_PATTERN.fullmatch(token) else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Shares:
    """The node's shares, over its store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self,
        wb: WriteBatch,
        *,
        record_type: str,
        record_id: str,
        version: int,
        fields: tuple[str, ...] | None,
        actor: str,
        now: int,
        forward_earlier: bool = False,
    ) -> tuple[str, Share]:
        """A new share written with `wb`: (token, share). With `forward_earlier`, every earlier
        share of an older version of the record that is still open points to this one."""
        token = new_token()
        digest = token_hash(token)
        share = Share(digest[:16], record_type, record_id, version, fields, now, actor)
        self._write(wb, digest, share)
        seq = self.store.next_sequence(wb, "share")
        self.store.put_json(
            wb,
            make_key("shares-of", record_type, record_id, f"{seq:016x}"),
            {"share": digest, "createdAt": now, "version": version},
        )
        if forward_earlier:
            for earlier_digest, earlier in self._of_record(record_type, record_id):
                if earlier.version < version and earlier.withdrawn_at is None:
                    self._write(wb, earlier_digest, replace(earlier, successor=token))
        return token, share

    def find(self, token: str) -> Share | None:
        """The share a token opens (withdrawn ones included), or None."""
        return self._read(token_hash(token))

    def of_record(self, record_type: str, record_id: str) -> list[Share]:
        """A record's shares, oldest first."""
        return [share for _, share in self._of_record(record_type, record_id)]

    def withdraw(self, wb: WriteBatch, record_type: str, record_id: str, share_id: str, now: int) -> Share:
        """Withdraw a share of this record by its id; withdrawing twice keeps the first time."""
        for digest, share in self._of_record(record_type, record_id):
            if hmac.compare_digest(share.share_id.encode(), share_id.encode()):
                if share.withdrawn_at is None:
                    share = replace(share, withdrawn_at=now)
                    self._write(wb, digest, share)
                return share
        raise ShareError(f"{record_type}/{record_id} has no share {share_id}")

    def _of_record(self, record_type: str, record_id: str) -> Iterator[tuple[str, Share]]:
        prefix = make_key("shares-of", record_type, record_id) + b"/"
        for _, entry in self.store.iter_json(prefix):
            digest = entry["share"]
            share = self._read(digest)
            if share is not None:
                yield digest, share

    def _read(self, digest: str) -> Share | None:
        blob = self.store.get_secret(make_key("share", digest))
        if blob is None:
            return None
        data = json.loads(blob)
        return Share(
            digest[:16],
            data["recordType"],
            data["recordId"],
            data["version"],
            None if data["fields"] is None else tuple(data["fields"]),
            data["createdAt"],
            data["actor"],
            data.get("withdrawnAt"),
            data.get("successor"),
        )

    def _write(self, wb: WriteBatch, digest: str, share: Share) -> None:
        data = {**share.to_json(), "actor": share.actor, "successor": share.successor}
        del data["shareId"]
        self.store.put_secret(wb, make_key("share", digest), json.dumps(data, separators=(",", ":")).encode())
