"""Node-to-node requests between agencies, authenticated by the on-chain AgencyRegistry."""
