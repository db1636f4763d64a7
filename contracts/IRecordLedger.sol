// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAgencyRegistry} from "./IAgencyRegistry.sol";

/// @title Sijill record ledger
/// @notice Batch roots of registry records, one hash-linked, gap-free log per agency, and the
/// status of individual leaves (current, superseded, revoked). Holds hashes only: never a name,
/// a national ID or any other field value.
/// @dev Everything is kept per agency: batches by (agency, root) and leaf status by (agency, leaf).
/// An agency's anchor, revoke or supersede writes only into its own namespace, and a verifier
/// reads under the agency a proof bundle names. So no agency can change the status of another's
/// records, nor block another's anchor by anchoring the same root first, and the contract needs
/// no Merkle proof per leaf to know whose leaf it is.
interface IRecordLedger {
    /// @notice An anchored batch (the agency is the key it is stored under).
    /// @param recordType record type of every leaf in it
    /// @param seq its place in the agency's log (from 1)
    /// @param blockNumber block it was anchored in
    /// @param timestamp that block's time
    /// @param count number of leaves in the tree
    struct Batch {
        bytes32 recordType;
        uint64 seq;
        uint64 blockNumber;
        uint64 timestamp;
        uint32 count;
    }

    /// @notice Last batch of an agency's log (zero root and seq 0 before the first).
    struct Head {
        bytes32 root;
        uint64 seq;
    }

    /// @notice A leaf's state in its agency's namespace. Current is the default of every leaf.
    enum LeafState {
        Current,
        Superseded,
        Revoked
    }

    /// @notice A leaf's status.
    /// @param reason reason code (see docs/contracts.md), zero while current
    /// @param blockNumber block of the change, zero while current
    /// @param successor leaf of the new version when superseded
    struct LeafStatus {
        LeafState state;
        uint16 reason;
        uint64 blockNumber;
        bytes32 successor;
    }

    /// @notice What an agency signs (EIP-712) when it accepts a record, before anchoring it.
    /// @param recordId the record's id as 32 bytes (see docs/)
    /// @param intakeTime unix time of intake
    /// @param anchorBy unix time by which the agency promises to anchor the leaf
    struct Receipt {
        bytes32 agency;
        bytes32 recordType;
        bytes32 recordId;
        uint32 version;
        bytes32 leaf;
        uint64 intakeTime;
        uint64 anchorBy;
    }

    error InvalidRegistry();
    error InvalidRoot();
    error EmptyBatch();
    error RootAlreadyAnchored(bytes32 agency, bytes32 root, uint64 seq);
    error SequenceMismatch(bytes32 agency, uint64 expected, uint64 given);
    error PreviousRootMismatch(bytes32 agency, bytes32 expected, bytes32 given);
    error InvalidLeafCount(uint256 count, uint256 max);
    error LengthMismatch(uint256 oldLeaves, uint256 newLeaves);
    error MissingReasonCode();
    error LeafNotCurrent(bytes32 agency, bytes32 leaf, LeafState state);
    error InvalidSuccessor(bytes32 leaf, bytes32 successor);

    event BatchAnchored(
        bytes32 indexed agency,
        bytes32 indexed recordType,
        bytes32 indexed root,
        uint64 seq,
        uint32 count,
        bytes32 prevRoot,
        address signer
    );
    event LeafRevoked(bytes32 indexed agency, bytes32 indexed leaf, uint16 reason);
    event LeafSuperseded(bytes32 indexed agency, bytes32 indexed leaf, bytes32 indexed successor, uint16 reason);

    /// @notice Anchors a batch root as the next entry of the caller's agency log.
    /// @dev The caller must be a current signer of an active agency allowed `recordType`.
    /// @param recordType record type of every leaf, e.g. "title"
    /// @param root Merkle root (OpenZeppelin sorted-pair keccak tree)
    /// @param count number of leaves (at least 1)
    /// @param seq the agency head's seq + 1
    /// @param prevRoot the agency head's root (zero for the first batch)
    function anchor(bytes32 recordType, bytes32 root, uint32 count, uint64 seq, bytes32 prevRoot) external;

    /// @notice Revokes leaves of the caller's agency, each of which must be current.
    /// @param leaves the leaves (1 to MAX_LEAVES_PER_CALL)
    /// @param reason reason code, non-zero
    function revoke(bytes32[] calldata leaves, uint16 reason) external;

    /// @notice Marks leaves of the caller's agency as superseded by new versions.
    /// @param oldLeaves the leaves replaced, each current (1 to MAX_LEAVES_PER_CALL)
    /// @param newLeaves their successors, index for index, each current and different from the old
    /// @param reason reason code, non-zero
    function supersede(bytes32[] calldata oldLeaves, bytes32[] calldata newLeaves, uint16 reason) external;

    /// @notice The batch in which `agency` anchored `root` (seq 0 when it never did).
    /// @param agency agency code
    /// @param root batch root
    /// @return info the batch
    function batch(bytes32 agency, bytes32 root) external view returns (Batch memory info);

    /// @notice A leaf's status in an agency's namespace.
    /// @param agency the agency that anchored the leaf
    /// @param leaf the leaf
    /// @return info its status
    function leafStatus(bytes32 agency, bytes32 leaf) external view returns (LeafStatus memory info);

    /// @notice An agency's last batch.
    /// @param agency agency code
    /// @return info root and seq of the head
    function head(bytes32 agency) external view returns (Head memory info);

    /// @notice Checks a leaf against an agency's anchored batch and returns its status, in one call.
    /// @param agency the agency the proof bundle names
    /// @param root batch root
    /// @param leaf the leaf
    /// @param proof Merkle path (sorted pairs)
    /// @return included true only when `agency` anchored `root` and the proof leads from `leaf` to it
    /// @return info the batch (seq 0 when `agency` never anchored `root`)
    /// @return status the leaf's status under `agency`
    function verifyLeaf(bytes32 agency, bytes32 root, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool included, Batch memory info, LeafStatus memory status);

    /// @notice EIP-712 digest of a receipt under this contract's domain.
    /// @param receipt the receipt
    /// @return digest the typed-data hash the agency signer signs
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32 digest);

    /// @notice Recovers the signer of a receipt (reverts on a malformed signature).
    /// @param receipt the receipt
    /// @param signature 65-byte ECDSA signature
    /// @return account the signing account
    function receiptSigner(Receipt calldata receipt, bytes calldata signature) external view returns (address account);

    /// @notice The agency registry consulted for authority.
    /// @return the registry
    function registry() external view returns (IAgencyRegistry);

    /// @notice Contract version; a new version is a new deployment.
    /// @return the semantic version
    function version() external pure returns (string memory);
}
