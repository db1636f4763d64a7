// Shared fixtures and helpers for the Sijill contract tests.
const { ethers } = require("hardhat");

const b32 = (s) => ethers.encodeBytes32String(s);

const REPD = b32("REPD");
const CSO = b32("CSO");
const CRA = b32("CRA");
const TITLE = b32("title");
const MARRIAGE = b32("marriage");
const COMMERCIAL = b32("commercial");
const ZERO32 = ethers.ZeroHash;
const ZERO_ADDR = ethers.ZeroAddress;
const OPEN = 2n ** 64n - 1n; // validTo of a current signer
const PROPOSAL_LIFETIME = 7n * 24n * 3600n;

// IAgencyRegistry.AgencyStatus / ActionKind and IRecordLedger.LeafState, as numbers.
const Status = { None: 0n, Active: 1n, Suspended: 2n };
const Kind = {
  AddAgency: 0,
  SuspendAgency: 1,
  ReinstateAgency: 2,
  AllowRecordType: 3,
  DisallowRecordType: 4,
  AddSigner: 5,
  RemoveSigner: 6,
  AddCouncilMember: 7,
  RemoveCouncilMember: 8,
  SetThreshold: 9,
};
const LeafState = { Current: 0n, Superseded: 1n, Revoked: 2n };

/** An `Action` with every unused field zero/empty. */
function action(kind, { agency = ZERO32, account = ZERO_ADDR, recordType = ZERO32, threshold = 0, name = "" } = {}) {
  return { kind, agency, account, recordType, threshold, name };
}

/** The `Action` as the tuple a decoded event/struct compares equal to. */
function actionTuple(a) {
  return [BigInt(a.kind), a.agency, a.account, a.recordType, BigInt(a.threshold), a.name];
}

/** An `AgencyInit` for the constructor. */
function agencyInit(code, name, council, signers, recordTypes) {
  return { code, name, council, signers, recordTypes };
}

async function deployRegistry(inits, threshold, lifetime = PROPOSAL_LIFETIME) {
  const Registry = await ethers.getContractFactory("AgencyRegistry");
  const registry = await Registry.deploy(inits, threshold, lifetime);
  await registry.waitForDeployment();
  return registry;
}

/**
 * Registry with three council agencies REPD(title), CSO(marriage), CRA(commercial), threshold 2,
 * one signer each, plus a RecordLedger bound to it. Use with `loadFixture`.
 */
async function deployFixture() {
  const [deployer, repd, cso, cra, outsider, ...spare] = await ethers.getSigners();
  const inits = [
    agencyInit(REPD, "Real Estate Property Department", true, [repd.address], [TITLE]),
    agencyInit(CSO, "Civil Status Office", true, [cso.address], [MARRIAGE]),
    agencyInit(CRA, "Commercial Registry Authority", true, [cra.address], [COMMERCIAL]),
  ];
  const registry = await deployRegistry(inits, 2);
  const Ledger = await ethers.getContractFactory("RecordLedger");
  const ledger = await Ledger.deploy(await registry.getAddress());
  await ledger.waitForDeployment();
  return { registry, ledger, deployer, repd, cso, cra, outsider, spare, inits };
}

/**
 * Proposes `act` as `proposer` and has each of `approvers` approve it; returns the proposal id.
 * With the fixture's threshold 2, one approver executes it.
 */
async function pass(registry, act, proposer, ...approvers) {
  await registry.connect(proposer).propose(act);
  const id = await registry.proposalCount();
  for (const a of approvers) await registry.connect(a).approve(id);
  return id;
}

// ------------------------------------------------------------------ Merkle tree

/** Double-keccak leaf as in OpenZeppelin's StandardMerkleTree: keccak256(keccak256(abi.encode(values))). */
function leafHash(types, values) {
  const coder = ethers.AbiCoder.defaultAbiCoder();
  return ethers.keccak256(ethers.keccak256(coder.encode(types, values)));
}

/** keccak256 of the pair in sorted order (OpenZeppelin MerkleProof's commutative hash). */
function hashPair(a, b) {
  const [x, y] = BigInt(a) < BigInt(b) ? [a, b] : [b, a];
  return ethers.keccak256(ethers.concat([x, y]));
}

/**
 * A sorted-pair keccak Merkle tree over `leaves` (already hashed). An odd node at the end of a
 * level moves up unchanged. Returns { root, proof(i) }.
 */
function buildTree(leaves) {
  if (leaves.length === 0) throw new Error("empty tree");
  const levels = [leaves.slice()];
  while (levels[levels.length - 1].length > 1) {
    const cur = levels[levels.length - 1];
    const next = [];
    for (let i = 0; i < cur.length; i += 2) next.push(i + 1 < cur.length ? hashPair(cur[i], cur[i + 1]) : cur[i]);
    levels.push(next);
  }
  return {
    root: levels[levels.length - 1][0],
    leaves,
    proof(index) {
      const proof = [];
      let i = index;
      for (let l = 0; l < levels.length - 1; ++l) {
        const sibling = i ^ 1;
        if (sibling < levels[l].length) proof.push(levels[l][sibling]);
        i >>= 1;
      }
      return proof;
    },
  };
}

/** `n` distinct pseudo-random 32-byte values derived from `tag`. */
function fakeLeaves(n, tag = "leaf") {
  return Array.from({ length: n }, (_, i) => ethers.keccak256(ethers.toUtf8Bytes(`${tag}-${i}`)));
}

module.exports = {
  b32,
  REPD,
  CSO,
  CRA,
  TITLE,
  MARRIAGE,
  COMMERCIAL,
  ZERO32,
  ZERO_ADDR,
  OPEN,
  PROPOSAL_LIFETIME,
  Status,
  Kind,
  LeafState,
  action,
  actionTuple,
  agencyInit,
  deployRegistry,
  deployFixture,
  pass,
  leafHash,
  hashPair,
  buildTree,
  fakeLeaves,
};
