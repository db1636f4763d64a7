"""Revocations and supersessions (`op/<seq>`): sent to the chain once their leaves are anchored.

They are sent as bulk `supersede` / `revoke` calls (up to 1,024 leaves each) once every leaf
they name is anchored, with persisted states (queued, sent, done). One that changes the successor
of an earlier, unfinished supersession waits for it (the contract takes only a current
successor), and one whose transaction was lost is sent again. The block where the latest took
effect is kept (`meta/last-effect`), so that lining up with the chain (node/batcher/lineup.py)
can tell when the chain lost it.
"""

from __future__ import annotations

import logging
from typing import Any

from node.batcher.log import BatchLog
from node.chain.limits import MAX_LEAVES_PER_CALL
from node.errors import ChainError

log = logging.getLogger("sijill.batcher")

LAST_EFFECT = b"meta/last-effect"  # {"block", "hash"}: where the latest operation done took effect


class Operations(BatchLog):
    """Sends, settles and records the agency's revocations and supersessions."""

    def send_ops(self) -> None:
        """Send queued revocations and supersessions whose leaves are all anchored, in bulk
        (none while the registry refuses the agency: they wait).

        An operation on a leaf that an earlier, unfinished supersession names as its successor
        waits until that supersession is on the chain: the contract takes only a current leaf
        as a successor, so a record amended (v1 by v2) and then revoked (v2), or amended twice,
        must reach the chain in that order, whatever the grouping by kind and reason and
        whichever transaction is mined first."""
        self._receipts = {}  # receipts read this round, by transaction
        ready: dict[tuple[str, int], list[tuple[bytes, dict[str, Any]]]] = {}
        successors: set[str] = set()  # of the supersessions not yet done, in queue order so far
        for key, op in self.store.iter_json(b"op/"):
            if op["status"] == "sent":
                op = self._settle_op(key, op)
            if op["status"] == "done":
                continue
            held = op["leaf"] in successors
            if op["kind"] == "supersede":
                successors.add(op["successor"])
            if op["status"] != "queued" or held:
                continue
            leaves = [op["leaf"]] + ([op["successor"]] if op["kind"] == "supersede" else [])
            if all(self.store.get(b"proof/" + leaf.encode()) is not None for leaf in leaves):
                ready.setdefault((op["kind"], op["reason"]), []).append((key, op))
        if self.authority.standing.agency_refusal is not None:
            return
        for (kind, reason), ops in ready.items():
            for start in range(0, len(ops), MAX_LEAVES_PER_CALL):
                group = ops[start : start + MAX_LEAVES_PER_CALL]
                pending: list[tuple[bytes, dict[str, Any]]] = []
                effective: list[tuple[bytes, dict[str, Any]]] = []
                for key, op in group:
                    (effective if self._op_done_on_chain(op) else pending).append((key, op))
                if effective:  # an earlier send took effect, its answer lost: record which one
                    self._record_effective(effective)
                if pending:
                    old = [bytes.fromhex(op["leaf"]) for _, op in pending]
                    if kind == "revoke":
                        call = self.ledger.functions.revoke(old, reason)
                    else:
                        call = self.ledger.functions.supersede(
                            old, [bytes.fromhex(op["successor"]) for _, op in pending], reason
                        )
                    self._may_send(f"{kind} of {len(old)} leaves")
                    sent = self.tx.send_call(call, label=f"{kind} {len(old)} leaves")
                    sent_at = self._clock()
                    with self.store.write_batch() as wb:
                        for key, op in pending:
                            self.store.put_json(
                                wb, key, {**op, "status": "sent", "tx": sent.tx_hash_hex, "sentAt": sent_at}
                            )

    def _settle_op(self, key: bytes, op: dict[str, Any]) -> dict[str, Any]:
        """A sent operation done on the chain is done; one whose transaction was mined without
        effect, or was lost (not mined, and the node no longer holds it, `receipt_timeout` after
        sending: a pool emptied by a restart, a process killed before it could resend), is
        queued again. The operation as it is now."""
        if self._op_done_on_chain(op):
            return self._record_effective([(key, op)])[0]
        elif op.get("tx") and self.tx.find_receipt(op["tx"]) is not None:
            settled = {**op, "status": "queued"}  # mined but not effective: retry
        elif self._clock() - op.get("sentAt", 0) > self.settings.receipt_timeout and not self._in_pool(op):
            log.warning(
                "the %s of leaf %s was lost before it was mined: sending it again", op["kind"], op["leaf"]
            )
            settled = {**op, "status": "queued"}
        else:
            return op
        self.store.put_json(None, key, settled)
        return settled

    def _record_effective(self, ops: list[tuple[bytes, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Mark operations the chain shows in effect as done, each with the transaction and block
        that made it so (read from its `LeafRevoked` / `LeafSuperseded` event: not necessarily the
        node's last send of it, whose answer may have been lost), with an audit entry naming
        them; the operations as stored."""
        done = []
        mark = self.store.get_json(LAST_EFFECT)
        for key, op in ops:  # the chain first, then one write batch
            tx_hash, block, block_hash = self._effect_on_chain(op)
            done.append((key, {**op, "status": "done", "tx": tx_hash, "block": block}))
            if block_hash is not None and (mark is None or block > mark["block"]):
                mark = {"block": block, "hash": block_hash}
        with self.store.write_batch() as wb:
            for key, settled in done:
                self.store.put_json(wb, key, settled)
            if mark is not None:
                self.store.put_json(wb, LAST_EFFECT, mark)
            for key, settled in done:
                record = self.store.get_json(b"leaf/" + settled["leaf"].encode()) or {}
                self.store.audit(
                    wb,
                    actor=f"node:{self.agency}",
                    action=f"record.{settled['kind']}.effective",
                    request_id=key.decode(),
                    subject=f"{record.get('type', '?')}/{record.get('id', '?')}",
                    at=int(self._clock()),
                    details={"leaf": settled["leaf"], "tx": settled["tx"], "block": settled["block"]},
                )
        return [settled for _, settled in done]

    def _effect_on_chain(self, op: dict[str, Any]) -> tuple[str | None, int, str | None]:
        """(transaction hash, block, block hash) of the event by which the chain put `op` in
        effect; (None, block, None) if that block holds no such event of this leaf (it cannot,
        unless the chain went back and forth since `leafStatus` was read)."""
        leaf = bytes.fromhex(op["leaf"])
        try:
            block = int(self.ledger.functions.leafStatus(self._agency_word, leaf).call()[2])
            own = self._receipts.get(op.get("tx"))
            if own is None and op.get("tx"):
                own = self._receipts[op["tx"]] = self.tx.find_receipt(op["tx"])
            if own is not None and own["status"] == 1 and own["blockNumber"] == block:
                return op["tx"], block, bytes(own["blockHash"]).hex()  # its own, mined in that block
            events = self.ledger.events
            event = events.LeafRevoked if op["kind"] == "revoke" else events.LeafSuperseded
            found = event().get_logs(
                argument_filters={"agency": self._agency_word, "leaf": leaf}, from_block=block, to_block=block
            )
        except Exception as exc:  # transport errors: the caller retries later
            raise ChainError(f"cannot read the event of leaf {op['leaf']}: {type(exc).__name__}") from None
        if not found:
            return None, block, None
        return "0x" + bytes(found[-1]["transactionHash"]).hex(), block, bytes(found[-1]["blockHash"]).hex()

    def _op_done_on_chain(self, op: dict[str, Any]) -> bool:
        try:
            state = self.ledger.functions.leafStatus(self._agency_word, bytes.fromhex(op["leaf"])).call()[0]
        except Exception as exc:  # transport errors: the caller retries later
            raise ChainError(f"cannot read leaf {op['leaf']} from the chain: {type(exc).__name__}") from None
        return bool(state == (2 if op["kind"] == "revoke" else 1))
