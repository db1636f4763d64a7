// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IAgencyRegistry} from "./IAgencyRegistry.sol";

/// @title Sijill agency registry
/// @notice See `IAgencyRegistry`. Set up once by the constructor, then changed only by the
/// council: a proposal executes when M of the N voting council agencies (members that are
/// active) have approved it. An agency votes through any of its current signer accounts.
/// @dev Any change to the voting body (membership, suspension of a member, threshold) starts a
/// new council epoch, which makes every open proposal stale, so an approval is never counted
/// against a council it was not given to.
contract AgencyRegistry is IAgencyRegistry {
    using EnumerableSet for EnumerableSet.AddressSet;
    using EnumerableSet for EnumerableSet.Bytes32Set;

    /// @notice Signers one agency may hold at once (bounds the loops on suspension).
    uint256 public constant MAX_SIGNERS_PER_AGENCY = 16;
    /// @notice Longest agency display name, in bytes of UTF-8.
    uint256 public constant MAX_NAME_LENGTH = 128;

    uint64 private constant _OPEN = type(uint64).max;

    // Bits of `Action` fields, to reject fields an action kind does not read.
    uint8 private constant _F_AGENCY = 1;
    uint8 private constant _F_ACCOUNT = 2;
    uint8 private constant _F_RECORD_TYPE = 4;
    uint8 private constant _F_THRESHOLD = 8;
    uint8 private constant _F_NAME = 16;

    uint64 private immutable _proposalLifetime;

    mapping(bytes32 code => Agency agency) private _agencies;
    bytes32[] private _agencyCodes;
    mapping(bytes32 agency => EnumerableSet.Bytes32Set types) private _recordTypes;
    mapping(address account => Signer signer) private _signers;
    mapping(bytes32 agency => EnumerableSet.AddressSet accounts) private _agencySigners;
    EnumerableSet.AddressSet private _currentSigners;
    EnumerableSet.Bytes32Set private _council;
    uint32 private _votingMembers;
    uint32 private _threshold;
    uint32 private _councilEpoch;
    uint256 private _proposalCount;
    mapping(uint256 id => Proposal proposal) private _proposals;
    mapping(uint256 id => mapping(bytes32 agency => bool approved)) private _approvals;

    /// @notice Registers the founding agencies and the council; no key keeps any power afterwards.
    /// @param agencies the founding agencies with their signers, record types and council seats
    /// @param threshold_ approvals a proposal needs (1 to the number of council agencies)
    /// @param proposalLifetime_ seconds a proposal stays open
    constructor(AgencyInit[] memory agencies, uint32 threshold_, uint64 proposalLifetime_) {
        if (proposalLifetime_ == 0) revert InvalidProposalLifetime();
        _proposalLifetime = proposalLifetime_;
        for (uint256 i = 0; i < agencies.length; ++i) {
            AgencyInit memory init = agencies[i];
            _checkNewAgency(init.code, init.name);
            _addAgency(init.code, init.name);
            for (uint256 j = 0; j < init.signers.length; ++j) {
                _checkNewSigner(init.code, init.signers[j]);
                _addSigner(init.code, init.signers[j]);
            }
            for (uint256 j = 0; j < init.recordTypes.length; ++j) {
                _checkAllowRecordType(init.code, init.recordTypes[j]);
                _allowRecordType(init.code, init.recordTypes[j]);
            }
            if (init.council) {
                _checkHasSigner(init.code);
                _addCouncilMember(init.code);
            }
        }
        _checkThreshold(threshold_, _votingMembers);
        _threshold = threshold_;
        emit ThresholdChanged(threshold_, _votingMembers);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IAgencyRegistry
    function propose(Action calldata action) external returns (uint256 id) {
        bytes32 voter = _councilVoter(msg.sender);
        _validate(action);
        id = ++_proposalCount;
        Proposal storage p = _proposals[id];
        p.action = action;
        p.proposer = voter;
        p.expiresAt = uint64(block.timestamp) + _proposalLifetime;
        p.councilEpoch = _councilEpoch;
        emit ProposalCreated(id, voter, action, p.expiresAt);
        _approve(id, p, voter);
    }

    /// @inheritdoc IAgencyRegistry
    function approve(uint256 id) external {
        bytes32 voter = _councilVoter(msg.sender);
        Proposal storage p = _proposals[id];
        if (p.expiresAt == 0) revert UnknownProposal(id);
        if (p.executed) revert ProposalAlreadyExecuted(id);
        if (block.timestamp > p.expiresAt) revert ProposalExpired(id, p.expiresAt);
        if (p.councilEpoch != _councilEpoch) revert ProposalStale(id, p.councilEpoch, _councilEpoch);
        if (_approvals[id][voter]) revert AlreadyApproved(id, voter);
        _approve(id, p, voter);
    }

    // ---------------------------------------------------------------- authority views

    /// @inheritdoc IAgencyRegistry
    function authorizeAnchor(address account, bytes32 recordType) external view returns (bytes32 agency) {
        agency = authorizeSigner(account);
        if (!_recordTypes[agency].contains(recordType)) revert RecordTypeNotAllowed(agency, recordType);
    }

    /// @inheritdoc IAgencyRegistry
    function authorizeSigner(address account) public view returns (bytes32 agency) {
        Signer storage s = _signers[account];
        agency = s.agency;
        if (agency == bytes32(0)) revert NotASigner(account);
        if (s.validTo != _OPEN) revert SignerRetired(account, s.validTo);
        AgencyStatus status = _agencies[agency].status;
        if (status != AgencyStatus.Active) revert AgencyNotActive(agency, status);
    }

    /// @inheritdoc IAgencyRegistry
    function isSignerValidAt(bytes32 agency, address account, uint256 blockNumber) external view returns (bool valid) {
        Signer storage s = _signers[account];
        return agency != bytes32(0) && s.agency == agency && s.validFrom <= blockNumber && blockNumber <= s.validTo;
    }

    /// @inheritdoc IAgencyRegistry
    function currentSigners() external view returns (address[] memory accounts) {
        return _currentSigners.values();
    }

    /// @inheritdoc IAgencyRegistry
    function agencySigners(bytes32 agency) external view returns (address[] memory accounts) {
        return _agencySigners[agency].values();
    }

    /// @inheritdoc IAgencyRegistry
    function signerInfo(address account) external view returns (Signer memory info) {
        return _signers[account];
    }

    /// @inheritdoc IAgencyRegistry
    function agencyInfo(bytes32 code) external view returns (Agency memory info) {
        return _agencies[code];
    }

    /// @inheritdoc IAgencyRegistry
    function agencyCodes() external view returns (bytes32[] memory codes) {
        return _agencyCodes;
    }

    /// @inheritdoc IAgencyRegistry
    function recordTypes(bytes32 agency) external view returns (bytes32[] memory types) {
        return _recordTypes[agency].values();
    }

    /// @inheritdoc IAgencyRegistry
    function isRecordTypeAllowed(bytes32 agency, bytes32 recordType) external view returns (bool allowed) {
        return _recordTypes[agency].contains(recordType);
    }

    /// @inheritdoc IAgencyRegistry
    function councilMembers() external view returns (bytes32[] memory members) {
        members = new bytes32[](_votingMembers);
        uint256 n = 0;
        uint256 size = _council.length();
        for (uint256 i = 0; i < size; ++i) {
            bytes32 code = _council.at(i);
            if (_agencies[code].status == AgencyStatus.Active) members[n++] = code;
        }
    }

    /// @inheritdoc IAgencyRegistry
    function threshold() external view returns (uint32) {
        return _threshold;
    }

    /// @inheritdoc IAgencyRegistry
    function councilEpoch() external view returns (uint32) {
        return _councilEpoch;
    }

    /// @inheritdoc IAgencyRegistry
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc IAgencyRegistry
    function proposal(uint256 id) external view returns (Proposal memory info) {
        info = _proposals[id];
        if (info.expiresAt == 0) revert UnknownProposal(id);
    }

    /// @inheritdoc IAgencyRegistry
    function hasApproved(uint256 id, bytes32 agency) external view returns (bool) {
        return _approvals[id][agency];
    }

    /// @inheritdoc IAgencyRegistry
    function proposalLifetime() external view returns (uint64) {
        return _proposalLifetime;
    }

    /// @inheritdoc IAgencyRegistry
    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    // ---------------------------------------------------------------- proposals

    /// @dev The agency `account` votes for: a current signer of an active council agency.
    function _councilVoter(address account) private view returns (bytes32 voter) {
        voter = authorizeSigner(account);
        if (!_agencies[voter].council) revert NotCouncilMember(voter);
    }

    function _approve(uint256 id, Proposal storage p, bytes32 voter) private {
        _approvals[id][voter] = true;
        uint32 approvals = ++p.approvals;
        emit ProposalApproved(id, voter, approvals);
        if (approvals >= _threshold) {
            p.executed = true;
            Action memory action = p.action;
            _validate(action);
            _apply(action);
            emit ProposalExecuted(id);
        }
    }

    /// @dev Reverts, naming the reason, unless `action` can be applied to the current state.
    function _validate(Action memory action) private view {
        ActionKind kind = action.kind;
        uint8 present = (action.agency != bytes32(0) ? _F_AGENCY : 0) | (action.account != address(0) ? _F_ACCOUNT : 0)
            | (action.recordType != bytes32(0) ? _F_RECORD_TYPE : 0) | (action.threshold != 0 ? _F_THRESHOLD : 0)
            | (bytes(action.name).length != 0 ? _F_NAME : 0);
        if (present & ~_fieldsRead(kind) != 0) revert UnusedActionField(kind);

        bytes32 code = action.agency;
        if (kind == ActionKind.AddAgency) {
            _checkNewAgency(code, action.name);
            _checkNewSigner(code, action.account);
        } else if (kind == ActionKind.SetThreshold) {
            _checkThreshold(action.threshold, _votingMembers);
        } else {
            AgencyStatus status = _agencies[code].status;
            if (status == AgencyStatus.None) revert UnknownAgency(code);
            if (kind == ActionKind.SuspendAgency) {
                if (status != AgencyStatus.Active) revert AgencyNotActive(code, status);
                if (_agencies[code].council) _checkThreshold(_threshold, _votingMembers - 1);
            } else if (kind == ActionKind.ReinstateAgency) {
                if (status == AgencyStatus.Active) revert AgencyAlreadyActive(code);
                _checkHasSigner(code);
            } else if (kind == ActionKind.AllowRecordType) {
                _checkAllowRecordType(code, action.recordType);
            } else if (kind == ActionKind.DisallowRecordType) {
                if (!_recordTypes[code].contains(action.recordType)) {
                    revert RecordTypeNotAllowed(code, action.recordType);
                }
            } else if (kind == ActionKind.AddSigner) {
                _checkNewSigner(code, action.account);
            } else if (kind == ActionKind.RemoveSigner) {
                _checkRemoveSigner(code, action.account, status);
            } else if (kind == ActionKind.AddCouncilMember) {
                if (_agencies[code].council) revert AlreadyCouncilMember(code);
                if (status != AgencyStatus.Active) revert AgencyNotActive(code, status);
                _checkHasSigner(code);
            } else {
                // RemoveCouncilMember
                if (!_agencies[code].council) revert NotCouncilMember(code);
                _checkThreshold(_threshold, status == AgencyStatus.Active ? _votingMembers - 1 : _votingMembers);
            }
        }
    }

    /// @dev Applies a validated action.
    function _apply(Action memory action) private {
        ActionKind kind = action.kind;
        bytes32 code = action.agency;
        if (kind == ActionKind.AddAgency) {
            _addAgency(code, action.name);
            _addSigner(code, action.account);
            if (action.recordType != bytes32(0)) _allowRecordType(code, action.recordType);
        } else if (kind == ActionKind.SuspendAgency) {
            _setStatus(code, AgencyStatus.Suspended);
        } else if (kind == ActionKind.ReinstateAgency) {
            _setStatus(code, AgencyStatus.Active);
        } else if (kind == ActionKind.AllowRecordType) {
            _allowRecordType(code, action.recordType);
        } else if (kind == ActionKind.DisallowRecordType) {
            _recordTypes[code].remove(action.recordType);
            emit RecordTypeDisallowed(code, action.recordType);
        } else if (kind == ActionKind.AddSigner) {
            _addSigner(code, action.account);
        } else if (kind == ActionKind.RemoveSigner) {
            uint64 validTo = uint64(block.number);
            _signers[action.account].validTo = validTo;
            _agencySigners[code].remove(action.account);
            _currentSigners.remove(action.account);
            emit SignerRemoved(code, action.account, validTo);
        } else if (kind == ActionKind.AddCouncilMember) {
            _addCouncilMember(code);
        } else if (kind == ActionKind.RemoveCouncilMember) {
            _council.remove(code);
            _agencies[code].council = false;
            if (_agencies[code].status == AgencyStatus.Active) --_votingMembers;
            ++_councilEpoch;
            emit CouncilMemberRemoved(code);
        } else {
            // SetThreshold
            _threshold = action.threshold;
            ++_councilEpoch;
            emit ThresholdChanged(action.threshold, _votingMembers);
        }
    }

    function _fieldsRead(ActionKind kind) private pure returns (uint8) {
        if (kind == ActionKind.AddAgency) return _F_AGENCY | _F_NAME | _F_ACCOUNT | _F_RECORD_TYPE;
        if (kind == ActionKind.AllowRecordType || kind == ActionKind.DisallowRecordType) {
            return _F_AGENCY | _F_RECORD_TYPE;
        }
        if (kind == ActionKind.AddSigner || kind == ActionKind.RemoveSigner) return _F_AGENCY | _F_ACCOUNT;
        if (kind == ActionKind.SetThreshold) return _F_THRESHOLD;
        return _F_AGENCY;
    }

    // ---------------------------------------------------------------- checks and state changes

    function _checkNewAgency(bytes32 code, string memory name) private view {
        if (code == bytes32(0)) revert InvalidAgencyCode();
        uint256 length = bytes(name).length;
        if (length == 0 || length > MAX_NAME_LENGTH) revert InvalidAgencyName(code, length);
        if (_agencies[code].status != AgencyStatus.None) revert AgencyAlreadyRegistered(code);
    }

    function _checkNewSigner(bytes32 code, address account) private view {
        if (account == address(0)) revert InvalidSignerAccount(account);
        bytes32 holder = _signers[account].agency;
        if (holder != bytes32(0)) revert SignerAlreadyRegistered(account, holder);
        if (_agencySigners[code].length() >= MAX_SIGNERS_PER_AGENCY) revert TooManySigners(code, MAX_SIGNERS_PER_AGENCY);
    }

    function _checkRemoveSigner(bytes32 code, address account, AgencyStatus status) private view {
        Signer storage s = _signers[account];
        if (s.agency == bytes32(0)) revert NotASigner(account);
        if (s.agency != code) revert SignerOfOtherAgency(account, s.agency, code);
        if (s.validTo != _OPEN) revert SignerRetired(account, s.validTo);
        if (status == AgencyStatus.Active && _agencySigners[code].length() == 1) {
            revert LastSignerOfActiveAgency(code, account);
        }
    }

    /// @dev An active agency without a signer cannot act; on the council it would count
    /// towards N without being able to vote, and could deadlock the council.
    function _checkHasSigner(bytes32 code) private view {
        if (_agencySigners[code].length() == 0) revert AgencyWithoutSigner(code);
    }

    function _checkAllowRecordType(bytes32 code, bytes32 recordType) private view {
        if (recordType == bytes32(0)) revert InvalidRecordType();
        if (_recordTypes[code].contains(recordType)) revert RecordTypeAlreadyAllowed(code, recordType);
    }

    function _checkThreshold(uint32 m, uint32 n) private pure {
        if (m == 0 || m > n) revert InvalidThreshold(m, n);
    }

    function _addAgency(bytes32 code, string memory name) private {
        _agencies[code] =
            Agency({name: name, status: AgencyStatus.Active, council: false, registeredAt: uint64(block.number)});
        _agencyCodes.push(code);
        emit AgencyAdded(code, name);
    }

    function _addSigner(bytes32 code, address account) private {
        uint64 validFrom = uint64(block.number);
        _signers[account] = Signer({agency: code, validFrom: validFrom, validTo: _OPEN});
        _agencySigners[code].add(account);
        if (_agencies[code].status == AgencyStatus.Active) _currentSigners.add(account);
        emit SignerAdded(code, account, validFrom);
    }

    function _addCouncilMember(bytes32 code) private {
        _council.add(code);
        _agencies[code].council = true;
        ++_votingMembers;
        ++_councilEpoch;
        emit CouncilMemberAdded(code);
    }

    function _allowRecordType(bytes32 code, bytes32 recordType) private {
        _recordTypes[code].add(recordType);
        emit RecordTypeAllowed(code, recordType);
    }

    /// @dev Suspension takes the agency's signers off the allow-list (and its vote off the
    /// council); reinstatement puts them back.
    function _setStatus(bytes32 code, AgencyStatus status) private {
        Agency storage a = _agencies[code];
        a.status = status;
        EnumerableSet.AddressSet storage accounts = _agencySigners[code];
        uint256 n = accounts.length();
        bool active = status == AgencyStatus.Active;
        for (uint256 i = 0; i < n; ++i) {
            if (active) _currentSigners.add(accounts.at(i));
            else _currentSigners.remove(accounts.at(i));
        }
        if (a.council) {
            if (active) ++_votingMembers;
            else --_votingMembers;
            ++_councilEpoch;
        }
        emit AgencyStatusChanged(code, status);
    }
}
