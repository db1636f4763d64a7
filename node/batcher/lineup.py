"""Lining the node's log up with the chain's, after a restart and whenever the chain surprises it.

On start, and for any batch not yet anchored, the chain is asked first (`batch(agency, root)`):
a batch the chain already has is finalised, never sent again; one it lacks is (re)sent with the
same seq and prev root. The contract refuses a root an agency anchored before and any break in
the seq/prev chain, so nothing is anchored twice even if a resend races the first send.

The chain may be behind the node (it lost blocks) or ahead of it (another process signed for the
agency, or the store is new); `line_up` handles both, batches and operations alike.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from web3.exceptions import BlockNotFound

from node.batcher.ops import LAST_EFFECT, Operations
from node.errors import ChainError
from node.proofs import unpack_level

log = logging.getLogger("sijill.batcher")


class ChainLineUp(Operations):
    """Recovers after a restart and lines the local log up with the chain's."""

    def recover(self) -> None:
        """After a restart: settle every batch that is not anchored against the chain, and line
        the local log up with the chain's (a fresh store for an agency with history starts at
        the chain's head)."""
        for _, root, batch in self._unanchored():
            if self._on_chain(root):
                self._finalise(root, batch, tx_hash=batch.get("tx"))
        self.line_up()

    def line_up(self) -> None:
        """Line the local log up with the chain's, whichever of them is ahead.

        The chain behind (it lost blocks: a dev chain killed before it saved its last ones, a
        network restored from a backup): batches the node holds as anchored are no longer on it,
        and every later anchor reverts, as its seq no longer follows the chain's head. They are
        sent again (`_resend_what_the_chain_lost`). The chain ahead (another process signed for
        the agency, or the store is new): the node's open batches are rebased after it
        (`_rebase_if_behind`). Each reads the chain's head afresh. Revocations and supersessions
        carry no seq: the block where the latest took effect is kept (`meta/last-effect`, number
        and hash), and when the chain no longer has that block, those it lost are redone."""
        self._checked_at = time.monotonic()
        self._resend_what_the_chain_lost()
        self._redo_ops_if_their_blocks_are_gone()
        self._rebase_if_behind()

    def _resend_what_the_chain_lost(self) -> None:
        """If the chain's head is below batches the node holds as anchored, and the chain's log
        is a prefix of the node's (the batch after its head names its head root as predecessor),
        set every batch above the chain's head back to built, with its proofs withdrawn, so they
        are sent again in log order with their own seq and prev root: the same roots, so every
        receipt's leaf and proof stays what it was once they are on the chain again. A batch
        the chain has is never sent again (each is asked first, and the contract refuses a root
        twice); revocations and supersessions the chain lost with them are queued again."""
        chain_root, chain_seq = self._chain_head()
        local = self.store.get_json(b"meta/head") or {"seq": 0, "root": "00" * 32}
        if local["seq"] <= chain_seq:
            return
        above = list(self.store.iter_json(b"log/", start=f"log/{chain_seq + 1:016x}".encode()))
        if not above:
            return  # the log begins later (a store started at the chain's head): nothing of ours lost
        lost: list[tuple[str, dict[str, Any]]] = []
        for position, (_, entry) in enumerate(above):
            batch = self.store.get_json(f"batch/{entry['root']}".encode())
            if batch is None:
                return
            if position == 0 and batch["prev"] != chain_root.hex():
                log.error(
                    "the chain's log of %s (seq %d, root %s) is not a prefix of the node's: batch %d "
                    "names %s; not resending anything",
                    self.agency,
                    chain_seq,
                    chain_root.hex(),
                    batch["seq"],
                    batch["prev"],
                )
                return
            if batch["status"] == "anchored" and not self._on_chain(entry["root"]):
                lost.append((entry["root"], batch))
            elif batch["status"] == "sent" and self._tx_lost(batch) and not self._on_chain(entry["root"]):
                lost.append((entry["root"], batch))  # its transaction went with the lost blocks
        if not lost:
            return
        for root, batch in lost:
            levels = self.store.get(f"tree/{root}".encode()) or b""
            with self.store.write_batch() as wb:
                for leaf in unpack_level(levels, 0, batch["count"]):
                    self.store.delete(wb, b"proof/" + leaf.hex().encode())
                kept = {k: v for k, v in batch.items() if k not in ("tx", "block")}
                self.store.put_json(wb, f"batch/{root}".encode(), {**kept, "status": "built"})
        self._log_from = None  # the leading anchored run is shorter now
        self.resent_batches += len(lost)
        log.warning(
            "the chain's log of %s went back to seq %d: %d batches the node held as anchored or "
            "sent (seq %d to %d) are not on it and are sent again",
            self.agency,
            chain_seq,
            len(lost),
            lost[0][1]["seq"],
            lost[-1][1]["seq"],
        )
        if any(batch["status"] == "anchored" for _, batch in lost):
            self._redo_lost_ops()

    def _tx_lost(self, batch: dict[str, Any]) -> bool:
        """Whether the chain neither mined nor holds the batch's transaction."""
        return self.tx.find_receipt(batch["tx"]) is None and not self._in_pool(batch)

    def _redo_ops_if_their_blocks_are_gone(self) -> None:
        """If the block of the latest revocation or supersession done is no longer the chain's
        (missing, or another block under its number), the chain lost blocks: redo what it lost."""
        mark = self.store.get_json(LAST_EFFECT)
        if mark is None:
            return
        try:
            block = self.tx.w3.eth.get_block(mark["block"])
            still = bytes(block["hash"]).hex() == mark["hash"]
        except BlockNotFound:
            still = False
        except Exception as exc:  # transport errors: the caller retries later
            what = f"cannot read block {mark['block']} from the chain"
            raise ChainError(f"{what}: {type(exc).__name__}") from None
        if not still:
            log.warning("block %d, where the last operation done took effect, is gone", mark["block"])
            self._redo_lost_ops()

    def _redo_lost_ops(self) -> None:
        """Queue again every revocation and supersession held as done that the chain no longer
        shows (lost with the blocks that held it): one chain question per operation done."""
        redone = 0
        for key, op in self.store.iter_json(b"op/"):
            if op["status"] == "done" and not self._op_done_on_chain(op):
                kept = {k: v for k, v in op.items() if k not in ("tx", "block")}
                self.store.put_json(None, key, {**kept, "status": "queued"})
                redone += 1
        self.store.delete(None, LAST_EFFECT)  # the ops still done are in blocks the chain has
        if redone:
            log.warning("%d revocations or supersessions lost by the chain are queued again", redone)

    def _rebase_if_behind(self) -> None:
        """If the chain's log has moved past a batch not yet anchored (another process signed
        for this agency, or the store is new), requeue those batches' leaves after the chain's head."""
        chain_root, chain_seq = self._chain_head()
        local = self.store.get_json(b"meta/head") or {"seq": 0, "root": "00" * 32}
        stale: list[tuple[bytes, str, dict[str, Any]]] = []
        for key, root, batch in self._unanchored():
            if stale:
                stale.append((key, root, batch))  # it names a stale batch as its predecessor
            elif batch["seq"] <= chain_seq:
                # The head was read first, so this batch is on the chain now or never will be. It
                # may be: a transaction sent before a restart, mined since recover() asked.
                # Dissolving it would anchor its leaves a second time.
                if self._on_chain(root):
                    self._finalise(root, batch, tx_hash=batch.get("tx"))
                else:
                    stale.append((key, root, batch))
        if not stale and local["seq"] >= chain_seq:
            return
        self._dissolve(stale, chain_root, chain_seq)
        if stale:
            log.warning(
                "the chain's log of %s is ahead: %d unanchored batches requeued", self.agency, len(stale)
            )

    def _dissolve(
        self, stale: list[tuple[bytes, str, dict[str, Any]]], chain_root: bytes, chain_seq: int
    ) -> None:
        """Delete batches that are not on chain, requeue their leaves, and set the local head to
        the chain's, in one write batch."""
        with self.store.write_batch() as wb:
            for key, root, batch in stale:
                packed = self.store.get(f"tree/{root}".encode()) or b""
                for leaf in unpack_level(packed, 0, batch["count"]):
                    self.store.enqueue(wb, batch["type"], leaf)
                self.store.delete(wb, key)
                self.store.delete(wb, f"batch/{root}".encode())
            self.store.put_json(wb, b"meta/head", {"seq": chain_seq, "root": chain_root.hex()})
