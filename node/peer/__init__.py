"""Node-to-node requests between agencies, authenticated by the on-chain AgencyRegistry.

The chain is the PKI: there are no shared secrets between agencies. A calling node signs each
HTTP request with its agency's signer key (the key it anchors with); the called node recovers
the signing address, asks the AgencyRegistry whether that address is a current signer of the
agency the request claims, and refuses any request it has seen before.

- `node.peer.signing`: the wire format (`sijill-peer/1`) and signing a request (`sign_request`);
- `node.peer.auth`: checking a signed request against the registry (`PeerAuthenticator`);
- `node.peer.policy`: what each other agency may see of this agency's records (`PeerPolicy`);
- `node.peer.client`: signing and sending requests to another agency's node (`PeerClient`).

Imports `ledger`, `node.chain`, `node.store` and `node.errors`; nothing of `api` or `cli`.
"""
