"""What waits, and why: the receipts' promises not yet kept, and what the registry holds back.

`unanchored()` says what the node accepted and has not anchored yet (`Unanchored`, for
`/readyz` and `/metrics`). What the registry would refuse is not sent (node/authority.py):
leaves of a record type the agency may no longer anchor stay in their queue, and while the
agency is suspended (or the node's signer retired) nothing is sent at all. Nothing is dropped:
it all goes once the council allows it again, and meanwhile `holds` says what waits and why (in
`/readyz`, `/metrics` and the log). A batch built just before its type was disallowed would
block the agency's whole log (every later batch names it as its predecessor); once no
transaction of it or after it is in flight, those batches are dissolved and their leaves
requeued, so other types anchor on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from node.batcher.lineup import ChainLineUp

log = logging.getLogger("sijill.batcher")

COUNT_LIMIT = 1_000_000  # leaves counted per queue when reporting what waits


@dataclass(frozen=True, slots=True)
class Unanchored:
    """What the node accepted and has not anchored yet: the receipts' promises still to keep.

    `queued` leaves wait in the intake queues, `in_batches` in batches built or sent (or held
    back because the registry refuses them). `earliest_anchor_by` is the soonest `anchorBy`
    promised to any of them, `oldest_intake` the intake time of the one waiting longest (unix
    seconds; None when nothing waits). `stalled_for` is how long anchoring has made no progress
    (no batch anchored) although leaves wait: since the later of the last batch anchored and the
    oldest waiting leaf's intake (seconds; 0 when nothing waits)."""

    queued: int
    in_batches: int
    batches: int
    earliest_anchor_by: float | None
    oldest_intake: float | None
    stalled_for: float

    @property
    def leaves(self) -> int:
        return self.queued + self.in_batches


class WhatWaits(ChainLineUp):
    """Reports what waits to be anchored, holds back what the registry refuses, and dissolves
    refused batches that block the log."""

    def unanchored(self) -> Unanchored:
        """What is accepted and not anchored yet (see `Unanchored`); cheap: the queues' count is
        the store's, the open batches are those of the batcher's last round, and only the head
        of each queue is read (a queue is in intake order, so its head waited longest)."""
        batches = self._open_batches
        by = [b for _, b, _, _ in batches if b is not None]
        intake = [t for _, _, t, _ in batches if t is not None]
        for kind in self._queued_types():
            head = next(iter(self.store.iter_prefix(f"queue/{kind}/".encode(), limit=1)), None)
            info = self.store.get_json(b"leaf/" + bytes(head[1]).hex().encode()) if head else None
            if info is not None:
                by.append(info["anchorBy"])
                intake.append(info["intakeTime"])
        now = self._clock()
        stalled = 0.0
        if intake:  # something waits: since when has anchoring made no progress?
            stalled = max(0.0, now - max(self._progress_at, min(intake)))
        return Unanchored(
            queued=self.store.queued_leaves,
            in_batches=sum(count for count, _, _, _ in batches),
            batches=len(batches),
            earliest_anchor_by=min(by, default=None),
            oldest_intake=min(intake, default=None),
            stalled_for=stalled,
        )

    def report_holds(self) -> None:
        """Set `holds` (and `held_leaves`) to what waits because the registry refuses it now,
        and log each hold when it starts and when it ends."""
        holds: dict[str, tuple[int, str]] = {}  # record type, or "*" for everything -> (leaves, text)
        ops = 0
        refusal = self.authority.standing.agency_refusal
        if refusal is not None:
            leaves = sum(1 for _ in self.store.iter_prefix(b"queue/", limit=COUNT_LIMIT))
            leaves += sum(batch["count"] for _, _, batch in self._unanchored())
            ops = sum(1 for _, op in self.store.iter_json(b"op/") if op["status"] == "queued")
            holds["*"] = (
                leaves,
                f"{_leaves(leaves)} and {ops} revocation{'' if ops == 1 else 's'} or "
                f"supersession{'' if ops == 1 else 's'} wait: {refusal.message_en}",
            )
        else:
            waiting: dict[str, int] = {}
            for kind in self._queued_types():
                if self._refusal(kind) is not None:
                    prefix = f"queue/{kind}/".encode()
                    waiting[kind] = sum(1 for _ in self.store.iter_prefix(prefix, limit=COUNT_LIMIT))
            for _, _, batch in self._unanchored():
                if self._refusal(batch["type"]) is not None:
                    waiting[batch["type"]] = waiting.get(batch["type"], 0) + batch["count"]
            for kind, count in sorted(waiting.items()):
                why = self._refusal(kind)
                message = why.message_en if why is not None else ""
                holds[kind] = (count, f"{_leaves(count)} of {kind} wait, kept until allowed again: {message}")
        for what in sorted(holds.keys() - self._held):
            log.warning("holding %s: %s", "everything" if what == "*" else what, holds[what][1])
        for what in sorted(self._held - holds.keys()):
            log.warning(
                "no longer holding %s: the registry allows it again", "anything" if what == "*" else what
            )
        self._held = set(holds)
        self.holds = [text for _, text in holds.values()]
        self.held_leaves = sum(count for count, _ in holds.values())
        self.held_operations = ops

    def requeue_refused(self) -> None:
        """Dissolve the open batches when the first of them has a record type the registry no
        longer allows this agency and none of them has a transaction in flight (a transaction
        sent may still be mined; one mined and reverted never will). Their leaves go back to
        their queues: the allowed types' are batched anew after the chain's head, the refused
        type's wait. While the whole agency is refused nothing could go ahead: nothing is done."""
        if self.authority.standing.agency_refusal is not None:
            return
        open_batches = list(self._unanchored())
        refusal = self._refusal(open_batches[0][2]["type"]) if open_batches else None
        if refusal is None:
            return
        if any(batch["status"] == "sent" for _, _, batch in open_batches):
            return  # wait for their receipts
        chain_root, chain_seq = self._chain_head()
        if chain_seq != open_batches[0][2]["seq"] - 1:
            return  # the chain's log moved: recover() and _rebase_if_behind() settle that
        self._dissolve(open_batches, chain_root, chain_seq)
        log.warning(
            "%d batches of %s dissolved, their leaves requeued: %s",
            len(open_batches),
            self.agency,
            refusal.message_en,
        )


def _leaves(count: int) -> str:
    return f"{count} leaf" if count == 1 else f"{count} leaves"
