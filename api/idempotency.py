"""`Idempotency-Key`: a retried create, amend or revoke returns the first answer, creates nothing.

The key is scoped to the officer's token. The first request's answer is stored in the SAME
LevelDB write batch as the change it made (through intake's `on_commit`), so after any crash
either both exist or neither does: a retry finds the answer, or does the work for the first
time. A retry whose body or route differs from the first request's is refused (422), since the
caller is confused about what it sent; a retry while the first is still running gets 409.
Refusals (4xx) are not stored: a retry after fixing nothing gets the same refusal anyway.

Several node processes may share the store (PostgreSQL): a retry may reach another process while
the first request still runs there. The answer is then stored only if no answer is there yet,
checked under the key's database lock in the change's own transaction (`Claim.remember`); the
later of the two commits nothing and gets 409, and its retry gets the first answer.

Bulk loads store their answer per chunk of lines, with a hash of the chunk's raw lines: a
retried upload replays the chunks already committed and carries on after them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from api.problems import ApiProblem
from api.security import Officer
from node.store import Store, WriteBatch

KEY_PATTERN = re.compile(r"[A-Za-z0-9._:~+/=-]{1,128}")


@dataclass(slots=True)
class Claim:
    """An idempotency key held by one request: `stored` is the first answer, if there was one."""

    store: Store
    key: bytes
    fingerprint: str
    stored: tuple[int, Any] | None

    def remember(self, wb: WriteBatch, status: int, body: Any) -> None:
        """Store the answer with the change `wb` makes, unless another request with the key got
        there first (another process: `in_use`, and `wb` commits nothing)."""
        self.remember_at(wb, self.key, {"fingerprint": self.fingerprint, "status": status, "body": body})

    def chunk_key(self, index: int) -> bytes:
        return self.key + f"/chunk/{index:08x}".encode()

    def remember_at(self, wb: WriteBatch, key: bytes, value: Any) -> None:
        """Store `value` at `key` (the answer, or a bulk chunk's) in `wb`, if none is there yet."""
        if self.store.locked_get(wb, key) is not None:
            raise in_use()
        self.store.put_json(wb, key, value)


def in_use() -> ApiProblem:
    return ApiProblem(
        409,
        "idempotency-key-in-use",
        "A request with this Idempotency-Key is still running; retry when it has answered",
        "طلب بنفس مفتاح عدم التكرار ما زال قيد التنفيذ؛ أعد المحاولة بعد انتهائه",
    )


class Idempotency:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._busy: set[bytes] = set()
        self._lock = threading.Lock()

    @staticmethod
    def check_key(key: str) -> None:
        if not KEY_PATTERN.fullmatch(key):
            raise ApiProblem(
                400,
                "bad-request",
                "Idempotency-Key must be 1 to 128 characters: letters, digits and ._:~+/=-",
                "مفتاح عدم التكرار يجب أن يكون من 1 إلى 128 حرفًا من الحروف والأرقام و ._:~+/=-",
            )

    @contextmanager
    def claim(
        self, officer: Officer, key: str | None, method: str, route: str, body: bytes
    ) -> Iterator[Claim | None]:
        """Hold `key` for this request (None: no key, nothing to hold)."""
        if key is None:
            yield None
            return
        self.check_key(key)
        scope = f"idem/{officer.token_id}/{hashlib.sha256(key.encode()).hexdigest()[:32]}".encode()
        fingerprint = hashlib.sha256(method.encode() + b" " + route.encode() + b"\n" + body).hexdigest()
        with self._lock:
            if scope in self._busy:
                raise in_use()
            self._busy.add(scope)
        try:
            entry = self.store.get_json(scope)
            stored = None
            if entry is not None:
                if not hmac.compare_digest(str(entry["fingerprint"]).encode(), fingerprint.encode()):
                    raise ApiProblem(
                        422,
                        "idempotency-key-reused",
                        "This Idempotency-Key was first used with a different request; use a new key",
                        "استُخدم مفتاح عدم التكرار هذا مع طلب مختلف؛ استخدم مفتاحًا جديدًا",
                    )
                stored = (int(entry["status"]), entry["body"])
            yield Claim(self.store, scope, fingerprint, stored)
        finally:
            with self._lock:
                self._busy.discard(scope)
