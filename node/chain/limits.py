"""What one call to RecordLedger may carry and cost: figures the batcher, the Besu genesis
(`node.network.options`, its block gas limit) and the capacity model (scripts/capacity.py) share."""

#: leaves in one revoke or supersede call; a longer list is sent as several calls
MAX_LEAVES_PER_CALL = 1024
#: gas a node allows one anchor; measured: 128,753 for an agency's first anchor, 94,937 after
ANCHOR_GAS = 250_000
