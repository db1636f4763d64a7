"""The batcher: pending leaves become anchored batches (node/batcher/loop.py)."""

from node.batcher.loop import Batcher, BatcherSettings, Unanchored

__all__ = ["Batcher", "BatcherSettings", "Unanchored"]
