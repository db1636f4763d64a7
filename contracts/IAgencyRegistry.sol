// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Sijill agency registry
/// @notice Who may anchor what: agencies by short code, their status, the record types each may
/// anchor and the signer accounts (with the block range in which each was valid). A council of
/// agencies changes it by M-of-N approved proposals; there is no owner key after deployment.
/// It is also the source of truth for the Besu account allow-lists (see `currentSigners`).
interface IAgencyRegistry {
    /// @notice Lifecycle of an agency. `None` means the code was never registered.
    enum AgencyStatus {
        None,
        Active,
        Suspended
    }

    /// @notice What a council proposal does once approved. Fields of `Action` each kind reads:
    /// AddAgency: agency, name, account (first signer), recordType (first type, or zero for none);
    /// SuspendAgency / ReinstateAgency / AddCouncilMember / RemoveCouncilMember: agency;
    /// AllowRecordType / DisallowRecordType: agency, recordType;
    /// AddSigner / RemoveSigner: agency, account;
    /// SetThreshold: threshold.
    enum ActionKind {
        AddAgency,
        SuspendAgency,
        ReinstateAgency,
        AllowRecordType,
        DisallowRecordType,
        AddSigner,
        RemoveSigner,
        AddCouncilMember,
        RemoveCouncilMember,
        SetThreshold
    }

    /// @notice A change the council can make. Unused fields must be zero/empty.
    struct Action {
        ActionKind kind;
        bytes32 agency;
        address account;
        bytes32 recordType;
        uint32 threshold;
        string name;
    }

    /// @notice A registered agency.
    /// @param name display name (public, never personal data)
    /// @param status Active or Suspended (None when the code is unknown)
    /// @param council whether the agency votes on proposals
    /// @param registeredAt block in which the agency was added
    struct Agency {
        string name;
        AgencyStatus status;
        bool council;
        uint64 registeredAt;
    }

    /// @notice A signer account and the inclusive block range in which it was valid.
    /// @param validTo `type(uint64).max` while the signer is current.
    struct Signer {
        bytes32 agency;
        uint64 validFrom;
        uint64 validTo;
    }

    /// @notice A council proposal.
    /// @param proposer agency that proposed it
    /// @param expiresAt unix time after which it can no longer be approved
    /// @param councilEpoch council generation it was made in; a change to the voting body makes it stale
    struct Proposal {
        Action action;
        bytes32 proposer;
        uint64 expiresAt;
        uint32 approvals;
        uint32 councilEpoch;
        bool executed;
    }

    /// @notice One agency as set up by the constructor (the bootstrap, before the council governs).
    struct AgencyInit {
        bytes32 code;
        string name;
        bool council;
        address[] signers;
        bytes32[] recordTypes;
    }

    error InvalidAgencyCode();
    error InvalidAgencyName(bytes32 agency, uint256 length);
    error AgencyAlreadyRegistered(bytes32 agency);
    error UnknownAgency(bytes32 agency);
    error AgencyNotActive(bytes32 agency, AgencyStatus status);
    error AgencyAlreadyActive(bytes32 agency);
    error InvalidRecordType();
    error RecordTypeAlreadyAllowed(bytes32 agency, bytes32 recordType);
    error RecordTypeNotAllowed(bytes32 agency, bytes32 recordType);
    error InvalidSignerAccount(address account);
    error SignerAlreadyRegistered(address account, bytes32 agency);
    error NotASigner(address account);
    error SignerRetired(address account, uint64 validTo);
    error SignerOfOtherAgency(address account, bytes32 agency, bytes32 expectedAgency);
    error TooManySigners(bytes32 agency, uint256 max);
    error LastSignerOfActiveAgency(bytes32 agency, address account);
    error AgencyWithoutSigner(bytes32 agency);
    error AlreadyCouncilMember(bytes32 agency);
    error NotCouncilMember(bytes32 agency);
    error InvalidThreshold(uint32 threshold, uint32 councilSize);
    error InvalidProposalLifetime();
    error UnusedActionField(ActionKind kind);
    error UnknownProposal(uint256 id);
    error ProposalAlreadyExecuted(uint256 id);
    error ProposalExpired(uint256 id, uint64 expiresAt);
    error ProposalStale(uint256 id, uint32 councilEpoch, uint32 currentEpoch);
    error AlreadyApproved(uint256 id, bytes32 agency);

    event AgencyAdded(bytes32 indexed agency, string name);
    event AgencyStatusChanged(bytes32 indexed agency, AgencyStatus status);
    event RecordTypeAllowed(bytes32 indexed agency, bytes32 indexed recordType);
    event RecordTypeDisallowed(bytes32 indexed agency, bytes32 indexed recordType);
    event SignerAdded(bytes32 indexed agency, address indexed account, uint64 validFrom);
    event SignerRemoved(bytes32 indexed agency, address indexed account, uint64 validTo);
    event CouncilMemberAdded(bytes32 indexed agency);
    event CouncilMemberRemoved(bytes32 indexed agency);
    event ThresholdChanged(uint32 threshold, uint32 councilSize);
    event ProposalCreated(uint256 indexed id, bytes32 indexed proposer, Action action, uint64 expiresAt);
    event ProposalApproved(uint256 indexed id, bytes32 indexed agency, uint32 approvals);
    event ProposalExecuted(uint256 indexed id);

    /// @notice Proposes a change on behalf of the caller's agency, which approves it at once.
    /// Executes immediately when that approval reaches the threshold.
    /// @dev The action is validated now and again at execution.
    /// @param action the change; see `ActionKind` for the fields each kind reads
    /// @return id the proposal's id (from 1)
    function propose(Action calldata action) external returns (uint256 id);

    /// @notice Approves a proposal on behalf of the caller's agency; executes it when the
    /// approvals reach the threshold.
    /// @param id the proposal's id
    function approve(uint256 id) external;

    /// @notice The agency allowed to anchor `recordType` through `account`, or a revert naming
    /// why not (unknown or retired signer, inactive agency, record type not allowed).
    /// @param account the transaction sender
    /// @param recordType the record type, e.g. "title"
    /// @return agency the signer's agency code
    function authorizeAnchor(address account, bytes32 recordType) external view returns (bytes32 agency);

    /// @notice The agency of `account` if it is a current signer of an active agency, else a revert.
    /// @param account the transaction sender
    /// @return agency the signer's agency code
    function authorizeSigner(address account) external view returns (bytes32 agency);

    /// @notice Whether `account` was a signer of `agency` at block `blockNumber`.
    /// @param agency agency code
    /// @param account signer account
    /// @param blockNumber the block to ask about
    /// @return valid true when the block lies in the signer's validity range
    function isSignerValidAt(bytes32 agency, address account, uint256 blockNumber) external view returns (bool valid);

    /// @notice Every current signer of every active agency: the Besu account allow-list.
    /// @return accounts the accounts, in no particular order
    function currentSigners() external view returns (address[] memory accounts);

    /// @notice The current signers of one agency (active or suspended).
    /// @param agency agency code
    /// @return accounts the accounts, in no particular order
    function agencySigners(bytes32 agency) external view returns (address[] memory accounts);

    /// @notice A signer account's agency and validity range (agency zero when unknown).
    /// @param account signer account
    /// @return info the signer
    function signerInfo(address account) external view returns (Signer memory info);

    /// @notice An agency (status None when the code is unknown).
    /// @param code agency code
    /// @return info the agency
    function agencyInfo(bytes32 code) external view returns (Agency memory info);

    /// @notice Every agency code ever registered, in registration order.
    /// @return codes the codes
    function agencyCodes() external view returns (bytes32[] memory codes);

    /// @notice The record types `agency` may anchor.
    /// @param agency agency code
    /// @return types the record types
    function recordTypes(bytes32 agency) external view returns (bytes32[] memory types);

    /// @notice Whether `agency` may anchor `recordType`.
    /// @param agency agency code
    /// @param recordType record type
    /// @return allowed true when allowed
    function isRecordTypeAllowed(bytes32 agency, bytes32 recordType) external view returns (bool allowed);

    /// @notice The council agencies that can vote now (members that are active).
    /// @return members agency codes
    function councilMembers() external view returns (bytes32[] memory members);

    /// @notice Approvals a proposal needs.
    /// @return the threshold M of M-of-N
    function threshold() external view returns (uint32);

    /// @notice Current council generation; proposals from an older one are stale.
    /// @return the epoch
    function councilEpoch() external view returns (uint32);

    /// @notice Number of proposals made so far (the last id).
    /// @return the count
    function proposalCount() external view returns (uint256);

    /// @notice A proposal.
    /// @param id the proposal's id
    /// @return info the proposal
    function proposal(uint256 id) external view returns (Proposal memory info);

    /// @notice Whether `agency` approved proposal `id`.
    /// @param id the proposal's id
    /// @param agency agency code
    /// @return true when approved
    function hasApproved(uint256 id, bytes32 agency) external view returns (bool);

    /// @notice Seconds a proposal stays open.
    /// @return the lifetime
    function proposalLifetime() external view returns (uint64);

    /// @notice Contract version; a new version is a new deployment.
    /// @return the semantic version
    function version() external pure returns (string memory);
}
