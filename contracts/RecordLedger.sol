// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IAgencyRegistry} from "./IAgencyRegistry.sol";
import {IRecordLedger} from "./IRecordLedger.sol";

/// @title Sijill record ledger
/// @notice See `IRecordLedger`.
contract RecordLedger is IRecordLedger, EIP712 {
    /// @notice Most leaves one revoke or supersede call takes.
    uint256 public constant MAX_LEAVES_PER_CALL = 1024;

    /// @notice EIP-712 type of `Receipt`.
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 agency,bytes32 recordType,bytes32 recordId,uint32 version,bytes32 leaf,"
        "uint64 intakeTime,uint64 anchorBy)"
    );

    IAgencyRegistry private immutable _registry;

    mapping(bytes32 agency => mapping(bytes32 root => Batch batch)) private _batches;
    mapping(bytes32 agency => Head head) private _heads;
    mapping(bytes32 agency => mapping(bytes32 leaf => LeafStatus status)) private _leaves;

    /// @param registry_ the agency registry (non-zero)
    constructor(IAgencyRegistry registry_) EIP712("Sijill RecordLedger", "1") {
        if (address(registry_) == address(0)) revert InvalidRegistry();
        _registry = registry_;
    }

    /// @inheritdoc IRecordLedger
    function anchor(bytes32 recordType, bytes32 root, uint32 count, uint64 seq, bytes32 prevRoot) external {
        bytes32 agency = _registry.authorizeAnchor(msg.sender, recordType);
        if (root == bytes32(0)) revert InvalidRoot();
        if (count == 0) revert EmptyBatch();
        mapping(bytes32 root => Batch batch) storage batches = _batches[agency];
        uint64 existing = batches[root].seq;
        if (existing != 0) revert RootAlreadyAnchored(agency, root, existing);
        Head storage h = _heads[agency];
        if (seq != h.seq + 1) revert SequenceMismatch(agency, h.seq + 1, seq);
        if (prevRoot != h.root) revert PreviousRootMismatch(agency, h.root, prevRoot);

        batches[root] = Batch({
            recordType: recordType,
            seq: seq,
            blockNumber: uint64(block.number),
            timestamp: uint64(block.timestamp),
            count: count
        });
        h.root = root;
        h.seq = seq;
        emit BatchAnchored(agency, recordType, root, seq, count, prevRoot, msg.sender);
    }

    /// @inheritdoc IRecordLedger
    function revoke(bytes32[] calldata leaves, uint16 reason) external {
        bytes32 agency = _checkLeafChange(leaves.length, reason);
        mapping(bytes32 leaf => LeafStatus status) storage statuses = _leaves[agency];
        for (uint256 i = 0; i < leaves.length; ++i) {
            bytes32 leaf = leaves[i];
            LeafStatus storage s = _currentLeaf(statuses, agency, leaf);
            s.state = LeafState.Revoked;
            s.reason = reason;
            s.blockNumber = uint64(block.number);
            emit LeafRevoked(agency, leaf, reason);
        }
    }

    /// @inheritdoc IRecordLedger
    function supersede(bytes32[] calldata oldLeaves, bytes32[] calldata newLeaves, uint16 reason) external {
        if (oldLeaves.length != newLeaves.length) revert LengthMismatch(oldLeaves.length, newLeaves.length);
        bytes32 agency = _checkLeafChange(oldLeaves.length, reason);
        mapping(bytes32 leaf => LeafStatus status) storage statuses = _leaves[agency];
        for (uint256 i = 0; i < oldLeaves.length; ++i) {
            bytes32 leaf = oldLeaves[i];
            bytes32 successor = newLeaves[i];
            LeafStatus storage s = _currentLeaf(statuses, agency, leaf);
            // A successor must itself be current: no cycles, no pointing at a dead version.
            if (successor == bytes32(0) || successor == leaf || statuses[successor].state != LeafState.Current) {
                revert InvalidSuccessor(leaf, successor);
            }
            s.state = LeafState.Superseded;
            s.reason = reason;
            s.blockNumber = uint64(block.number);
            s.successor = successor;
            emit LeafSuperseded(agency, leaf, successor, reason);
        }
    }

    /// @inheritdoc IRecordLedger
    function batch(bytes32 agency, bytes32 root) external view returns (Batch memory info) {
        return _batches[agency][root];
    }

    /// @inheritdoc IRecordLedger
    function leafStatus(bytes32 agency, bytes32 leaf) external view returns (LeafStatus memory info) {
        return _leaves[agency][leaf];
    }

    /// @inheritdoc IRecordLedger
    function head(bytes32 agency) external view returns (Head memory info) {
        return _heads[agency];
    }

    /// @inheritdoc IRecordLedger
    function verifyLeaf(bytes32 agency, bytes32 root, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool included, Batch memory info, LeafStatus memory status)
    {
        info = _batches[agency][root];
        included = info.seq != 0 && MerkleProof.verifyCalldata(proof, root, leaf);
        status = _leaves[agency][leaf];
    }

    /// @inheritdoc IRecordLedger
    function receiptDigest(Receipt calldata receipt) public view returns (bytes32 digest) {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, receipt)));
    }

    /// @inheritdoc IRecordLedger
    function receiptSigner(Receipt calldata receipt, bytes calldata signature) external view returns (address account) {
        return ECDSA.recover(receiptDigest(receipt), signature);
    }

    /// @inheritdoc IRecordLedger
    function registry() external view returns (IAgencyRegistry) {
        return _registry;
    }

    /// @inheritdoc IRecordLedger
    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    /// @dev The caller's agency, after checking a revoke/supersede call's size and reason.
    function _checkLeafChange(uint256 count, uint16 reason) private view returns (bytes32 agency) {
        agency = _registry.authorizeSigner(msg.sender);
        if (count == 0 || count > MAX_LEAVES_PER_CALL) revert InvalidLeafCount(count, MAX_LEAVES_PER_CALL);
        if (reason == 0) revert MissingReasonCode();
    }

    function _currentLeaf(mapping(bytes32 => LeafStatus) storage statuses, bytes32 agency, bytes32 leaf)
        private
        view
        returns (LeafStatus storage s)
    {
        s = statuses[leaf];
        if (s.state != LeafState.Current) revert LeafNotCurrent(agency, leaf, s.state);
    }
}
