const hre = require("hardhat");
const { expect } = require("chai");
const { ethers } = hre;
const { loadFixture, time } = require("@nomicfoundation/hardhat-network-helpers");
const {
  b32,
  REPD,
  CSO,
  CRA,
  TITLE,
  MARRIAGE,
  COMMERCIAL,
  ZERO32,
  ZERO_ADDR,
  Status,
  Kind,
  LeafState,
  action,
  deployFixture,
  pass,
  leafHash,
  hashPair,
  buildTree,
  fakeLeaves,
} = require("./helpers");

const MAX = 1024n;
const R = (s) => ethers.keccak256(ethers.toUtf8Bytes(`root-${s}`)); // distinct fake batch roots
const nextBlock = async () => BigInt(await ethers.provider.getBlockNumber()) + 1n;
// IRecordLedger.Batch: the agency is the key a batch is stored under, not a field of it.
const BATCH_FIELDS = ["recordType", "seq", "blockNumber", "timestamp", "count"];

/** Asserts `b` is the all-zero Batch of a root an agency never anchored. */
function expectNoBatch(b) {
  expect(Object.keys(b.toObject())).to.deep.equal(BATCH_FIELDS);
  for (const k of BATCH_FIELDS) expect(b[k], k).to.equal(k === "recordType" ? ZERO32 : 0n);
}

/** Fixture with REPD's first batch (leaves L[0..3], tree root) anchored. */
async function anchoredFixture() {
  const f = await deployFixture();
  const leaves = fakeLeaves(4, "repd");
  const tree = buildTree(leaves);
  await f.ledger.connect(f.repd).anchor(TITLE, tree.root, leaves.length, 1, ZERO32);
  return { ...f, leaves, tree };
}

describe("RecordLedger", function () {
  // ------------------------------------------------------------------------------------------
  describe("constructor", function () {
    it("binds the registry and exposes constants", async function () {
      const { registry, ledger } = await loadFixture(deployFixture);
      expect(await ledger.registry()).to.equal(await registry.getAddress());
      expect(await ledger.version()).to.equal("1.0.0");
      expect(await ledger.MAX_LEAVES_PER_CALL()).to.equal(MAX);
      expect(await ledger.RECEIPT_TYPEHASH()).to.equal(
        ethers.id(
          "Receipt(bytes32 agency,bytes32 recordType,bytes32 recordId,uint32 version,bytes32 leaf,uint64 intakeTime,uint64 anchorBy)",
        ),
      );
    });

    it("reverts InvalidRegistry on the zero address", async function () {
      const F = await ethers.getContractFactory("RecordLedger");
      await expect(F.deploy(ZERO_ADDR)).to.be.revertedWithCustomError(F, "InvalidRegistry").withArgs();
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("anchoring", function () {
    it("anchors a first batch: event, batch record and head", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      const root = R(1);
      const block = await nextBlock();
      const ts = BigInt(await time.latest()) + 10n;
      await time.setNextBlockTimestamp(ts);
      await expect(ledger.connect(repd).anchor(TITLE, root, 42, 1, ZERO32))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(REPD, TITLE, root, 1n, 42n, ZERO32, repd.address);
      const b = await ledger.batch(REPD, root);
      expect(Object.keys(b.toObject())).to.deep.equal(BATCH_FIELDS);
      expect(b.recordType).to.equal(TITLE);
      expect(b.seq).to.equal(1n);
      expect(b.blockNumber).to.equal(block);
      expect(b.timestamp).to.equal(ts);
      expect(b.count).to.equal(42n);
      const h = await ledger.head(REPD);
      expect(h.root).to.equal(root);
      expect(h.seq).to.equal(1n);
      // stored under REPD only
      for (const other of [CSO, CRA, ZERO32]) expectNoBatch(await ledger.batch(other, root));
    });

    it("accepts the maximum uint32 count", async function () {
      const { ledger, cra } = await loadFixture(deployFixture);
      await expect(ledger.connect(cra).anchor(COMMERCIAL, R(1), 2n ** 32n - 1n, 1, ZERO32))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(CRA, COMMERCIAL, R(1), 1n, 2n ** 32n - 1n, ZERO32, cra.address);
    });

    it("reverts InvalidRoot on a zero root", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      await expect(ledger.connect(repd).anchor(TITLE, ZERO32, 1, 1, ZERO32))
        .to.be.revertedWithCustomError(ledger, "InvalidRoot")
        .withArgs();
    });

    it("reverts EmptyBatch on a zero count", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      await expect(ledger.connect(repd).anchor(TITLE, R(1), 0, 1, ZERO32))
        .to.be.revertedWithCustomError(ledger, "EmptyBatch")
        .withArgs();
    });

    describe("permissions", function () {
      it("reverts NotASigner for a non-signer (checked before anything else)", async function () {
        const { registry, ledger, outsider } = await loadFixture(deployFixture);
        await expect(ledger.connect(outsider).anchor(TITLE, R(1), 1, 1, ZERO32))
          .to.be.revertedWithCustomError(registry, "NotASigner")
          .withArgs(outsider.address);
        await expect(ledger.connect(outsider).anchor(TITLE, ZERO32, 0, 9, R(9)))
          .to.be.revertedWithCustomError(registry, "NotASigner")
          .withArgs(outsider.address);
      });

      it("reverts SignerRetired for a retired signer; the new signer continues the agency log", async function () {
        const { registry, ledger, repd, cso, spare } = await loadFixture(deployFixture);
        const next = spare[1];
        await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
        await pass(registry, action(Kind.AddSigner, { agency: REPD, account: next.address }), repd, cso);
        await pass(registry, action(Kind.RemoveSigner, { agency: REPD, account: repd.address }), next, cso);
        const validTo = (await registry.signerInfo(repd.address)).validTo;
        await expect(ledger.connect(repd).anchor(TITLE, R(2), 1, 2, R(1)))
          .to.be.revertedWithCustomError(registry, "SignerRetired")
          .withArgs(repd.address, validTo);
        await expect(ledger.connect(next).anchor(TITLE, R(2), 1, 2, R(1)))
          .to.emit(ledger, "BatchAnchored")
          .withArgs(REPD, TITLE, R(2), 2n, 1n, R(1), next.address);
        // the first batch's signer was valid at its block, the retired one is not after validTo
        const b1 = await ledger.batch(REPD, R(1));
        expect(await registry.isSignerValidAt(REPD, repd.address, b1.blockNumber)).to.equal(true);
        const b2 = await ledger.batch(REPD, R(2));
        expect(await registry.isSignerValidAt(REPD, repd.address, b2.blockNumber)).to.equal(false);
        expect(await registry.isSignerValidAt(REPD, next.address, b2.blockNumber)).to.equal(true);
      });

      it("reverts AgencyNotActive for a suspended agency, and works again after reinstatement", async function () {
        const { registry, ledger, repd, cso, cra } = await loadFixture(deployFixture);
        await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso);
        await expect(ledger.connect(cra).anchor(COMMERCIAL, R(1), 1, 1, ZERO32))
          .to.be.revertedWithCustomError(registry, "AgencyNotActive")
          .withArgs(CRA, Status.Suspended);
        await pass(registry, action(Kind.ReinstateAgency, { agency: CRA }), repd, cso);
        await expect(ledger.connect(cra).anchor(COMMERCIAL, R(1), 1, 1, ZERO32)).to.emit(ledger, "BatchAnchored");
      });

      it("reverts RecordTypeNotAllowed for a record type the agency may not anchor", async function () {
        const { registry, ledger, repd, cso } = await loadFixture(deployFixture);
        await expect(ledger.connect(repd).anchor(MARRIAGE, R(1), 1, 1, ZERO32))
          .to.be.revertedWithCustomError(registry, "RecordTypeNotAllowed")
          .withArgs(REPD, MARRIAGE);
        await pass(registry, action(Kind.DisallowRecordType, { agency: CSO, recordType: MARRIAGE }), repd, cso);
        await expect(ledger.connect(cso).anchor(MARRIAGE, R(1), 1, 1, ZERO32))
          .to.be.revertedWithCustomError(registry, "RecordTypeNotAllowed")
          .withArgs(CSO, MARRIAGE);
      });

      it("a non-council agency may anchor its record types", async function () {
        const { registry, ledger, repd, cso, spare } = await loadFixture(deployFixture);
        const LRA = b32("LRA");
        const lra = spare[0];
        await pass(
          registry,
          action(Kind.AddAgency, { agency: LRA, name: "L", account: lra.address, recordType: TITLE }),
          repd,
          cso,
        );
        await expect(ledger.connect(lra).anchor(TITLE, R(1), 3, 1, ZERO32))
          .to.emit(ledger, "BatchAnchored")
          .withArgs(LRA, TITLE, R(1), 1n, 3n, ZERO32, lra.address);
      });
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("sequence / prev-root links", function () {
    it("links each batch to the previous head", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
      await expect(ledger.connect(repd).anchor(TITLE, R(2), 5, 2, R(1)))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(REPD, TITLE, R(2), 2n, 5n, R(1), repd.address);
      await expect(ledger.connect(repd).anchor(TITLE, R(3), 7, 3, R(2)))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(REPD, TITLE, R(3), 3n, 7n, R(2), repd.address);
      const h = await ledger.head(REPD);
      expect(h.root).to.equal(R(3));
      expect(h.seq).to.equal(3n);
      expect((await ledger.batch(REPD, R(2))).seq).to.equal(2n);
    });

    it("reverts SequenceMismatch on a wrong seq (first batch and later)", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      await expect(ledger.connect(repd).anchor(TITLE, R(1), 1, 0, ZERO32))
        .to.be.revertedWithCustomError(ledger, "SequenceMismatch")
        .withArgs(REPD, 1n, 0n);
      await expect(ledger.connect(repd).anchor(TITLE, R(1), 1, 2, ZERO32))
        .to.be.revertedWithCustomError(ledger, "SequenceMismatch")
        .withArgs(REPD, 1n, 2n);
      await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
      await expect(ledger.connect(repd).anchor(TITLE, R(2), 1, 1, R(1)))
        .to.be.revertedWithCustomError(ledger, "SequenceMismatch")
        .withArgs(REPD, 2n, 1n);
      await expect(ledger.connect(repd).anchor(TITLE, R(2), 1, 3, R(1)))
        .to.be.revertedWithCustomError(ledger, "SequenceMismatch")
        .withArgs(REPD, 2n, 3n);
    });

    it("reverts PreviousRootMismatch on a wrong prevRoot (first batch and later)", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      await expect(ledger.connect(repd).anchor(TITLE, R(1), 1, 1, R(0)))
        .to.be.revertedWithCustomError(ledger, "PreviousRootMismatch")
        .withArgs(REPD, ZERO32, R(0));
      await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
      await expect(ledger.connect(repd).anchor(TITLE, R(2), 1, 2, ZERO32))
        .to.be.revertedWithCustomError(ledger, "PreviousRootMismatch")
        .withArgs(REPD, R(1), ZERO32);
      await expect(ledger.connect(repd).anchor(TITLE, R(2), 1, 2, R(7)))
        .to.be.revertedWithCustomError(ledger, "PreviousRootMismatch")
        .withArgs(REPD, R(1), R(7));
      const h = await ledger.head(REPD);
      expect(h.seq).to.equal(1n);
      expect(h.root).to.equal(R(1));
    });

    it("keeps one independent log per agency", async function () {
      const { ledger, repd, cso } = await loadFixture(deployFixture);
      await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
      await ledger.connect(repd).anchor(TITLE, R(2), 1, 2, R(1));
      await expect(ledger.connect(cso).anchor(MARRIAGE, R(3), 1, 3, R(2)))
        .to.be.revertedWithCustomError(ledger, "SequenceMismatch")
        .withArgs(CSO, 1n, 3n);
      await expect(ledger.connect(cso).anchor(MARRIAGE, R(3), 1, 1, ZERO32))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(CSO, MARRIAGE, R(3), 1n, 1n, ZERO32, cso.address);
      expect((await ledger.head(REPD)).seq).to.equal(2n);
      expect((await ledger.head(CSO)).root).to.equal(R(3));
      expect((await ledger.head(CRA)).seq).to.equal(0n);
    });

    it("an agency with several record types keeps one log across them", async function () {
      const { registry, ledger, repd, cso } = await loadFixture(deployFixture);
      const LEASE = b32("lease");
      await pass(registry, action(Kind.AllowRecordType, { agency: REPD, recordType: LEASE }), repd, cso);
      await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
      await expect(ledger.connect(repd).anchor(LEASE, R(2), 1, 2, R(1)))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(REPD, LEASE, R(2), 2n, 1n, R(1), repd.address);
      expect((await ledger.batch(REPD, R(1))).recordType).to.equal(TITLE);
      expect((await ledger.batch(REPD, R(2))).recordType).to.equal(LEASE);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("duplicates", function () {
    it("reverts RootAlreadyAnchored(agency, root, seq) when the same agency anchors a root again", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
      await expect(ledger.connect(repd).anchor(TITLE, R(1), 1, 2, R(1)))
        .to.be.revertedWithCustomError(ledger, "RootAlreadyAnchored")
        .withArgs(REPD, R(1), 1n);
      expect((await ledger.head(REPD)).seq).to.equal(1n);
      // an older root (not the head) is refused too, naming the seq it was anchored at
      await ledger.connect(repd).anchor(TITLE, R(2), 1, 2, R(1));
      await expect(ledger.connect(repd).anchor(TITLE, R(1), 1, 3, R(2)))
        .to.be.revertedWithCustomError(ledger, "RootAlreadyAnchored")
        .withArgs(REPD, R(1), 1n);
      const h = await ledger.head(REPD);
      expect(h.seq).to.equal(2n);
      expect(h.root).to.equal(R(2));
    });

    it("another agency anchoring A's root succeeds in its own namespace and leaves A's batch alone", async function () {
      const { ledger, repd, cso } = await loadFixture(deployFixture);
      await ledger.connect(repd).anchor(TITLE, R(1), 1, 1, ZERO32);
      await ledger.connect(repd).anchor(TITLE, R(2), 4, 2, R(1));
      const before = await ledger.batch(REPD, R(2));
      await expect(ledger.connect(cso).anchor(MARRIAGE, R(2), 9, 1, ZERO32))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(CSO, MARRIAGE, R(2), 1n, 9n, ZERO32, cso.address);

      // A's batch and head are untouched
      const a = await ledger.batch(REPD, R(2));
      expect(a.toObject()).to.deep.equal(before.toObject());
      expect(a.recordType).to.equal(TITLE);
      expect(a.seq).to.equal(2n);
      expect(a.count).to.equal(4n);
      const ha = await ledger.head(REPD);
      expect(ha.root).to.equal(R(2));
      expect(ha.seq).to.equal(2n);
      // B's own batch and head
      const b = await ledger.batch(CSO, R(2));
      expect(b.recordType).to.equal(MARRIAGE);
      expect(b.seq).to.equal(1n);
      expect(b.count).to.equal(9n);
      expect(b.blockNumber).to.be.greaterThan(a.blockNumber);
      const hb = await ledger.head(CSO);
      expect(hb.root).to.equal(R(2));
      expect(hb.seq).to.equal(1n);

      // each agency already has the root, each under its own seq
      await expect(ledger.connect(repd).anchor(TITLE, R(2), 1, 3, R(2)))
        .to.be.revertedWithCustomError(ledger, "RootAlreadyAnchored")
        .withArgs(REPD, R(2), 2n);
      await expect(ledger.connect(cso).anchor(MARRIAGE, R(2), 1, 2, R(2)))
        .to.be.revertedWithCustomError(ledger, "RootAlreadyAnchored")
        .withArgs(CSO, R(2), 1n);
      // A's log goes on
      await expect(ledger.connect(repd).anchor(TITLE, R(3), 1, 3, R(2)))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(REPD, TITLE, R(3), 3n, 1n, R(2), repd.address);
    });

    it("anchoring a root first cannot block the agency it belongs to (no front-running)", async function () {
      const { ledger, repd, cso, cra } = await loadFixture(deployFixture);
      // CSO and CRA anchor the root REPD is about to anchor
      await ledger.connect(cso).anchor(MARRIAGE, R(1), 1, 1, ZERO32);
      await ledger.connect(cra).anchor(COMMERCIAL, R(1), 2, 1, ZERO32);
      expectNoBatch(await ledger.batch(REPD, R(1)));
      await expect(ledger.connect(repd).anchor(TITLE, R(1), 3, 1, ZERO32))
        .to.emit(ledger, "BatchAnchored")
        .withArgs(REPD, TITLE, R(1), 1n, 3n, ZERO32, repd.address);
      const a = await ledger.batch(REPD, R(1));
      expect(a.recordType).to.equal(TITLE);
      expect(a.seq).to.equal(1n);
      expect(a.count).to.equal(3n);
      expect((await ledger.batch(CSO, R(1))).recordType).to.equal(MARRIAGE);
      expect((await ledger.batch(CRA, R(1))).count).to.equal(2n);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("revoke", function () {
    it("revokes current leaves with a reason", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      const block = await nextBlock();
      const tx = ledger.connect(repd).revoke([leaves[0], leaves[2]], 3);
      await expect(tx).to.emit(ledger, "LeafRevoked").withArgs(REPD, leaves[0], 3n);
      await expect(tx).to.emit(ledger, "LeafRevoked").withArgs(REPD, leaves[2], 3n);
      const s = await ledger.leafStatus(REPD, leaves[0]);
      expect(s.state).to.equal(LeafState.Revoked);
      expect(s.reason).to.equal(3n);
      expect(s.blockNumber).to.equal(block);
      expect(s.successor).to.equal(ZERO32);
      expect((await ledger.leafStatus(REPD, leaves[1])).state).to.equal(LeafState.Current);
      expect((await ledger.leafStatus(REPD, leaves[2])).state).to.equal(LeafState.Revoked);
    });

    it("accepts the maximum uint16 reason", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      await expect(ledger.connect(repd).revoke([leaves[0]], 65535))
        .to.emit(ledger, "LeafRevoked")
        .withArgs(REPD, leaves[0], 65535n);
    });

    it("reverts InvalidLeafCount on 0 or more than 1024 leaves", async function () {
      const { ledger, repd } = await loadFixture(anchoredFixture);
      await expect(ledger.connect(repd).revoke([], 1))
        .to.be.revertedWithCustomError(ledger, "InvalidLeafCount")
        .withArgs(0n, MAX);
      await expect(ledger.connect(repd).revoke(fakeLeaves(1025, "many"), 1))
        .to.be.revertedWithCustomError(ledger, "InvalidLeafCount")
        .withArgs(1025n, MAX);
    });

    it("reverts MissingReasonCode on reason 0", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      await expect(ledger.connect(repd).revoke([leaves[0]], 0))
        .to.be.revertedWithCustomError(ledger, "MissingReasonCode")
        .withArgs();
    });

    it("reverts LeafNotCurrent on a revoked or superseded leaf, or a repeat within the call (atomically)", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      await ledger.connect(repd).revoke([leaves[0]], 1);
      await ledger.connect(repd).supersede([leaves[1]], [leaves[3]], 2);
      await expect(ledger.connect(repd).revoke([leaves[0]], 1))
        .to.be.revertedWithCustomError(ledger, "LeafNotCurrent")
        .withArgs(REPD, leaves[0], LeafState.Revoked);
      await expect(ledger.connect(repd).revoke([leaves[2], leaves[1]], 1))
        .to.be.revertedWithCustomError(ledger, "LeafNotCurrent")
        .withArgs(REPD, leaves[1], LeafState.Superseded);
      await expect(ledger.connect(repd).revoke([leaves[2], leaves[2]], 1))
        .to.be.revertedWithCustomError(ledger, "LeafNotCurrent")
        .withArgs(REPD, leaves[2], LeafState.Revoked);
      // the whole call reverted: leaves[2] is still current
      expect((await ledger.leafStatus(REPD, leaves[2])).state).to.equal(LeafState.Current);
    });

    it("is refused to non-signers, retired signers and suspended agencies", async function () {
      const { registry, ledger, repd, cso, cra, outsider, spare, leaves } = await loadFixture(anchoredFixture);
      await expect(ledger.connect(outsider).revoke([leaves[0]], 1))
        .to.be.revertedWithCustomError(registry, "NotASigner")
        .withArgs(outsider.address);
      // authority is checked before the arguments
      await expect(ledger.connect(outsider).revoke([], 0))
        .to.be.revertedWithCustomError(registry, "NotASigner")
        .withArgs(outsider.address);
      const next = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: REPD, account: next.address }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: REPD, account: repd.address }), next, cso);
      const validTo = (await registry.signerInfo(repd.address)).validTo;
      await expect(ledger.connect(repd).revoke([leaves[0]], 1))
        .to.be.revertedWithCustomError(registry, "SignerRetired")
        .withArgs(repd.address, validTo);
      await expect(ledger.connect(next).revoke([leaves[0]], 1))
        .to.emit(ledger, "LeafRevoked")
        .withArgs(REPD, leaves[0], 1n);
      await pass(registry, action(Kind.SuspendAgency, { agency: REPD }), cso, cra);
      await expect(ledger.connect(next).revoke([leaves[1]], 1))
        .to.be.revertedWithCustomError(registry, "AgencyNotActive")
        .withArgs(REPD, Status.Suspended);
    });

    it("needs no record type permission (an agency can still revoke after a type is disallowed)", async function () {
      const { registry, ledger, repd, cso, leaves } = await loadFixture(anchoredFixture);
      await pass(registry, action(Kind.DisallowRecordType, { agency: REPD, recordType: TITLE }), repd, cso);
      await expect(ledger.connect(repd).revoke([leaves[0]], 9))
        .to.emit(ledger, "LeafRevoked")
        .withArgs(REPD, leaves[0], 9n);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("supersede", function () {
    it("marks leaves superseded by their successors", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      const [n0, n1] = fakeLeaves(2, "new");
      const block = await nextBlock();
      const tx = ledger.connect(repd).supersede([leaves[0], leaves[1]], [n0, n1], 4);
      await expect(tx).to.emit(ledger, "LeafSuperseded").withArgs(REPD, leaves[0], n0, 4n);
      await expect(tx).to.emit(ledger, "LeafSuperseded").withArgs(REPD, leaves[1], n1, 4n);
      const s = await ledger.leafStatus(REPD, leaves[0]);
      expect(s.state).to.equal(LeafState.Superseded);
      expect(s.reason).to.equal(4n);
      expect(s.blockNumber).to.equal(block);
      expect(s.successor).to.equal(n0);
      expect((await ledger.leafStatus(REPD, n0)).state).to.equal(LeafState.Current);
    });

    it("allows a chain within one call (a -> b, b -> c)", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      const [a, b, c] = leaves;
      await ledger.connect(repd).supersede([a, b], [b, c], 5);
      expect((await ledger.leafStatus(REPD, a)).successor).to.equal(b);
      expect((await ledger.leafStatus(REPD, b)).successor).to.equal(c);
      expect((await ledger.leafStatus(REPD, c)).state).to.equal(LeafState.Current);
    });

    it("reverts LengthMismatch (before any authority check)", async function () {
      const { ledger, repd, outsider, leaves } = await loadFixture(anchoredFixture);
      await expect(ledger.connect(repd).supersede([leaves[0], leaves[1]], [leaves[2]], 1))
        .to.be.revertedWithCustomError(ledger, "LengthMismatch")
        .withArgs(2n, 1n);
      await expect(ledger.connect(outsider).supersede([], [leaves[2]], 1))
        .to.be.revertedWithCustomError(ledger, "LengthMismatch")
        .withArgs(0n, 1n);
    });

    it("reverts InvalidLeafCount on 0 or more than 1024 leaves", async function () {
      const { ledger, repd } = await loadFixture(anchoredFixture);
      await expect(ledger.connect(repd).supersede([], [], 1))
        .to.be.revertedWithCustomError(ledger, "InvalidLeafCount")
        .withArgs(0n, MAX);
      await expect(ledger.connect(repd).supersede(fakeLeaves(1025, "o"), fakeLeaves(1025, "n"), 1))
        .to.be.revertedWithCustomError(ledger, "InvalidLeafCount")
        .withArgs(1025n, MAX);
    });

    it("reverts MissingReasonCode on reason 0", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      await expect(ledger.connect(repd).supersede([leaves[0]], [leaves[1]], 0))
        .to.be.revertedWithCustomError(ledger, "MissingReasonCode")
        .withArgs();
    });

    it("reverts LeafNotCurrent when the old leaf is revoked or superseded", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      const [n0, n1] = fakeLeaves(2, "new");
      await ledger.connect(repd).revoke([leaves[0]], 1);
      await ledger.connect(repd).supersede([leaves[1]], [n0], 1);
      await expect(ledger.connect(repd).supersede([leaves[0]], [n1], 1))
        .to.be.revertedWithCustomError(ledger, "LeafNotCurrent")
        .withArgs(REPD, leaves[0], LeafState.Revoked);
      await expect(ledger.connect(repd).supersede([leaves[1]], [n1], 1))
        .to.be.revertedWithCustomError(ledger, "LeafNotCurrent")
        .withArgs(REPD, leaves[1], LeafState.Superseded);
    });

    it("reverts InvalidSuccessor on a zero, identical, revoked or superseded successor, and on cycles", async function () {
      const { ledger, repd, leaves } = await loadFixture(anchoredFixture);
      const [a, b, c, d] = leaves;
      const [n0] = fakeLeaves(1, "new");
      await expect(ledger.connect(repd).supersede([a], [ZERO32], 1))
        .to.be.revertedWithCustomError(ledger, "InvalidSuccessor")
        .withArgs(a, ZERO32);
      await expect(ledger.connect(repd).supersede([a], [a], 1))
        .to.be.revertedWithCustomError(ledger, "InvalidSuccessor")
        .withArgs(a, a);
      await ledger.connect(repd).revoke([c], 1);
      await expect(ledger.connect(repd).supersede([a], [c], 1))
        .to.be.revertedWithCustomError(ledger, "InvalidSuccessor")
        .withArgs(a, c);
      await ledger.connect(repd).supersede([d], [n0], 1);
      await expect(ledger.connect(repd).supersede([a], [d], 1))
        .to.be.revertedWithCustomError(ledger, "InvalidSuccessor")
        .withArgs(a, d);
      // a -> b then b -> a: b is current when a moves, but a is no longer current for b
      await expect(ledger.connect(repd).supersede([a, b], [b, a], 1))
        .to.be.revertedWithCustomError(ledger, "InvalidSuccessor")
        .withArgs(b, a);
      expect((await ledger.leafStatus(REPD, a)).state).to.equal(LeafState.Current);
    });

    it("is refused to non-signers, retired signers and suspended agencies", async function () {
      const { registry, ledger, repd, cso, cra, outsider, spare, leaves } = await loadFixture(anchoredFixture);
      const [n0] = fakeLeaves(1, "new");
      await expect(ledger.connect(outsider).supersede([leaves[0]], [n0], 1))
        .to.be.revertedWithCustomError(registry, "NotASigner")
        .withArgs(outsider.address);
      const next = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: REPD, account: next.address }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: REPD, account: repd.address }), next, cso);
      const validTo = (await registry.signerInfo(repd.address)).validTo;
      await expect(ledger.connect(repd).supersede([leaves[0]], [n0], 1))
        .to.be.revertedWithCustomError(registry, "SignerRetired")
        .withArgs(repd.address, validTo);
      await pass(registry, action(Kind.SuspendAgency, { agency: REPD }), cso, cra);
      await expect(ledger.connect(next).supersede([leaves[0]], [n0], 1))
        .to.be.revertedWithCustomError(registry, "AgencyNotActive")
        .withArgs(REPD, Status.Suspended);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("cross-agency isolation", function () {
    it("agency B's revoke or supersede never changes agency A's leaf status as read under A", async function () {
      const { ledger, repd, cso, cra, leaves, tree } = await loadFixture(anchoredFixture);
      const [x] = fakeLeaves(1, "cso-new");
      await expect(ledger.connect(cso).revoke([leaves[0]], 7))
        .to.emit(ledger, "LeafRevoked")
        .withArgs(CSO, leaves[0], 7n);
      await expect(ledger.connect(cra).supersede([leaves[1]], [x], 8))
        .to.emit(ledger, "LeafSuperseded")
        .withArgs(CRA, leaves[1], x, 8n);

      // written only under B's own namespace
      expect((await ledger.leafStatus(CSO, leaves[0])).state).to.equal(LeafState.Revoked);
      expect((await ledger.leafStatus(CRA, leaves[1])).state).to.equal(LeafState.Superseded);
      // A's view is untouched
      for (const i of [0, 1]) {
        const s = await ledger.leafStatus(REPD, leaves[i]);
        expect(s.state).to.equal(LeafState.Current);
        expect(s.reason).to.equal(0n);
        expect(s.blockNumber).to.equal(0n);
        expect(s.successor).to.equal(ZERO32);
        const [included, info, status] = await ledger.verifyLeaf(REPD, tree.root, leaves[i], tree.proof(i));
        expect(included).to.equal(true);
        expect(info.seq).to.equal(1n);
        expect(info.recordType).to.equal(TITLE);
        expect(status.state).to.equal(LeafState.Current);
      }
      // read under B, whose namespace holds B's status, REPD's root is not B's batch
      const [incB, infoB, stB] = await ledger.verifyLeaf(CSO, tree.root, leaves[0], tree.proof(0));
      expect(incB).to.equal(false);
      expectNoBatch(infoB);
      expect(stB.state).to.equal(LeafState.Revoked);
      expect(stB.reason).to.equal(7n);
      // and A can still change its own leaf, independently of B's namespace
      await expect(ledger.connect(repd).revoke([leaves[0]], 1))
        .to.emit(ledger, "LeafRevoked")
        .withArgs(REPD, leaves[0], 1n);
      await expect(ledger.connect(repd).supersede([leaves[1]], [x], 2))
        .to.emit(ledger, "LeafSuperseded")
        .withArgs(REPD, leaves[1], x, 2n);
      expect((await ledger.leafStatus(CSO, leaves[0])).reason).to.equal(7n);
      expect((await ledger.leafStatus(CRA, leaves[1])).successor).to.equal(x);
    });

    it("the same leaf in two agencies' batches reads each agency's own status", async function () {
      const { ledger, cso, leaves, tree } = await loadFixture(anchoredFixture);
      // CSO anchors a tree containing REPD's leaf 2 and revokes it in its namespace
      const csoTree = buildTree([leaves[2], ...fakeLeaves(2, "cso")]);
      await ledger.connect(cso).anchor(MARRIAGE, csoTree.root, 3, 1, ZERO32);
      await ledger.connect(cso).revoke([leaves[2]], 6);
      const [incB, infoB, stB] = await ledger.verifyLeaf(CSO, csoTree.root, leaves[2], csoTree.proof(0));
      expect(incB).to.equal(true);
      expect(infoB.recordType).to.equal(MARRIAGE);
      expect(infoB.seq).to.equal(1n);
      expect(infoB.count).to.equal(3n);
      expect(stB.state).to.equal(LeafState.Revoked);
      const [incA, infoA, stA] = await ledger.verifyLeaf(REPD, tree.root, leaves[2], tree.proof(2));
      expect(incA).to.equal(true);
      expect(infoA.recordType).to.equal(TITLE);
      expect(infoA.seq).to.equal(1n);
      expect(infoA.count).to.equal(4n);
      expect(stA.state).to.equal(LeafState.Current);
      // naming the wrong agency for a root: valid proof, but not included, and that agency's status
      const [incX, infoX, stX] = await ledger.verifyLeaf(REPD, csoTree.root, leaves[2], csoTree.proof(0));
      expect(incX).to.equal(false);
      expectNoBatch(infoX);
      expect(stX.state).to.equal(LeafState.Current);
      const [incY, infoY, stY] = await ledger.verifyLeaf(CSO, tree.root, leaves[2], tree.proof(2));
      expect(incY).to.equal(false);
      expectNoBatch(infoY);
      expect(stY.state).to.equal(LeafState.Revoked);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("views", function () {
    it("batch, head and leafStatus of unknown keys are zero", async function () {
      const { ledger } = await loadFixture(deployFixture);
      const b = await ledger.batch(REPD, R(404));
      expect(Object.keys(b.toObject())).to.deep.equal(BATCH_FIELDS);
      expect(b.recordType).to.equal(ZERO32);
      expect(b.seq).to.equal(0n);
      expect(b.blockNumber).to.equal(0n);
      expect(b.timestamp).to.equal(0n);
      expect(b.count).to.equal(0n);
      const h = await ledger.head(REPD);
      expect(h.root).to.equal(ZERO32);
      expect(h.seq).to.equal(0n);
      const s = await ledger.leafStatus(REPD, R(404));
      expect(s.state).to.equal(LeafState.Current);
      expect(s.reason).to.equal(0n);
      expect(s.blockNumber).to.equal(0n);
      expect(s.successor).to.equal(ZERO32);
      // an unknown or zero agency code has no batches and no head
      expectNoBatch(await ledger.batch(b32("NOPE"), R(404)));
      expectNoBatch(await ledger.batch(ZERO32, ZERO32));
      const hz = await ledger.head(ZERO32);
      expect(hz.root).to.equal(ZERO32);
      expect(hz.seq).to.equal(0n);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("receipts (EIP-712)", function () {
    const types = {
      Receipt: [
        { name: "agency", type: "bytes32" },
        { name: "recordType", type: "bytes32" },
        { name: "recordId", type: "bytes32" },
        { name: "version", type: "uint32" },
        { name: "leaf", type: "bytes32" },
        { name: "intakeTime", type: "uint64" },
        { name: "anchorBy", type: "uint64" },
      ],
    };
    const receipt = {
      agency: REPD,
      recordType: TITLE,
      recordId: ethers.id("parcel 12/345"),
      version: 2,
      leaf: leafHash(["bytes32", "uint32", "bytes32"], [ethers.id("parcel 12/345"), 2, ethers.id("content")]),
      intakeTime: 1_700_000_000n,
      anchorBy: 1_700_086_400n,
    };

    async function domainOf(ledger) {
      const d = await ledger.eip712Domain();
      expect(d.fields).to.equal("0x0f"); // name, version, chainId, verifyingContract
      expect(d.salt).to.equal(ZERO32);
      expect([...d.extensions]).to.deep.equal([]);
      return { name: d.name, version: d.version, chainId: d.chainId, verifyingContract: d.verifyingContract };
    }

    it("exposes the EIP-712 domain", async function () {
      const { ledger } = await loadFixture(deployFixture);
      const domain = await domainOf(ledger);
      expect(domain.name).to.equal("Sijill RecordLedger");
      expect(domain.version).to.equal("1");
      expect(domain.chainId).to.equal((await ethers.provider.getNetwork()).chainId);
      expect(domain.verifyingContract).to.equal(await ledger.getAddress());
    });

    it("receiptDigest matches ethers' TypedDataEncoder and receiptSigner recovers the signer", async function () {
      const { ledger, repd, cso } = await loadFixture(deployFixture);
      const domain = await domainOf(ledger);
      const digest = ethers.TypedDataEncoder.hash(domain, types, receipt);
      expect(await ledger.receiptDigest(receipt)).to.equal(digest);
      const sig = await repd.signTypedData(domain, types, receipt);
      expect(ethers.verifyTypedData(domain, types, receipt, sig)).to.equal(repd.address);
      expect(await ledger.receiptSigner(receipt, sig)).to.equal(repd.address);
      const sig2 = await cso.signTypedData(domain, types, receipt);
      expect(await ledger.receiptSigner(receipt, sig2)).to.equal(cso.address);
    });

    it("binds every field: a changed receipt recovers a different account", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      const domain = await domainOf(ledger);
      const sig = await repd.signTypedData(domain, types, receipt);
      const changes = {
        agency: CSO,
        recordType: MARRIAGE,
        recordId: ethers.id("other"),
        version: 3,
        leaf: ethers.id("other leaf"),
        intakeTime: receipt.intakeTime + 1n,
        anchorBy: receipt.anchorBy + 1n,
      };
      for (const [k, v] of Object.entries(changes)) {
        const r = { ...receipt, [k]: v };
        expect(await ledger.receiptDigest(r)).to.equal(ethers.TypedDataEncoder.hash(domain, types, r));
        expect(await ledger.receiptSigner(r, sig)).not.to.equal(repd.address);
      }
    });

    it("is bound to the deployment (verifyingContract)", async function () {
      const { registry, ledger, repd } = await loadFixture(deployFixture);
      const F = await ethers.getContractFactory("RecordLedger");
      const other = await F.deploy(await registry.getAddress());
      expect(await other.receiptDigest(receipt)).not.to.equal(await ledger.receiptDigest(receipt));
      const sig = await repd.signTypedData(await domainOf(ledger), types, receipt);
      expect(await other.receiptSigner(receipt, sig)).not.to.equal(repd.address);
    });

    it("receiptSigner reverts on malformed signatures (OpenZeppelin ECDSA errors)", async function () {
      const { ledger } = await loadFixture(deployFixture);
      await expect(ledger.receiptSigner(receipt, "0x" + "11".repeat(64)))
        .to.be.revertedWithCustomError(ledger, "ECDSAInvalidSignatureLength")
        .withArgs(64n);
      await expect(ledger.receiptSigner(receipt, "0x"))
        .to.be.revertedWithCustomError(ledger, "ECDSAInvalidSignatureLength")
        .withArgs(0n);
      const highS = "0x" + "ff".repeat(32);
      await expect(ledger.receiptSigner(receipt, ethers.concat([ethers.id("r"), highS, "0x1b"])))
        .to.be.revertedWithCustomError(ledger, "ECDSAInvalidSignatureS")
        .withArgs(highS);
      // v = 29 is not a valid recovery id: ecrecover yields address(0)
      const one = ethers.toBeHex(1, 32);
      await expect(ledger.receiptSigner(receipt, ethers.concat([one, one, "0x1d"])))
        .to.be.revertedWithCustomError(ledger, "ECDSAInvalidSignature")
        .withArgs();
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("verifyLeaf", function () {
    // Leaves as in OZ StandardMerkleTree: keccak256(keccak256(abi.encode(recordId, version, contentHash)))
    const records = Array.from({ length: 7 }, (_, i) => [ethers.id(`deed-${i}`), i + 1, ethers.id(`content-${i}`)]);
    const leafTypes = ["bytes32", "uint32", "bytes32"];

    async function treeFixture() {
      const f = await deployFixture();
      const leaves = records.map((r) => leafHash(leafTypes, r));
      const tree = buildTree(leaves);
      await f.ledger.connect(f.repd).anchor(TITLE, tree.root, leaves.length, 1, ZERO32);
      return { ...f, leaves, tree };
    }

    it("the test tree is a sorted-pair keccak tree (sanity check of the helper)", function () {
      const leaves = records.slice(0, 3).map((r) => leafHash(leafTypes, r));
      const expected = hashPair(hashPair(leaves[0], leaves[1]), leaves[2]);
      expect(buildTree(leaves).root).to.equal(expected);
      expect(leaves[0]).to.equal(
        ethers.keccak256(ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(leafTypes, records[0]))),
      );
    });

    it("proves every leaf of an anchored batch and returns the batch and status", async function () {
      const { ledger, leaves, tree } = await loadFixture(treeFixture);
      const batch = await ledger.batch(REPD, tree.root);
      for (let i = 0; i < leaves.length; ++i) {
        const [included, info, status] = await ledger.verifyLeaf(REPD, tree.root, leaves[i], tree.proof(i));
        expect(included, `leaf ${i}`).to.equal(true);
        expect(Object.keys(info.toObject())).to.deep.equal(BATCH_FIELDS);
        expect(info.recordType).to.equal(TITLE);
        expect(info.seq).to.equal(1n);
        expect(info.count).to.equal(7n);
        expect(info.blockNumber).to.equal(batch.blockNumber);
        expect(info.timestamp).to.equal(batch.timestamp);
        expect(status.state).to.equal(LeafState.Current);
      }
    });

    it("reports revoked and superseded status under the anchoring agency", async function () {
      const { ledger, repd, leaves, tree } = await loadFixture(treeFixture);
      await ledger.connect(repd).revoke([leaves[3]], 11);
      await ledger.connect(repd).supersede([leaves[4]], [leaves[5]], 12);
      const [inc3, , st3] = await ledger.verifyLeaf(REPD, tree.root, leaves[3], tree.proof(3));
      expect(inc3).to.equal(true);
      expect(st3.state).to.equal(LeafState.Revoked);
      expect(st3.reason).to.equal(11n);
      const [inc4, , st4] = await ledger.verifyLeaf(REPD, tree.root, leaves[4], tree.proof(4));
      expect(inc4).to.equal(true);
      expect(st4.state).to.equal(LeafState.Superseded);
      expect(st4.successor).to.equal(leaves[5]);
    });

    it("rejects a wrong proof, a wrong leaf and a raw (single-hashed) leaf", async function () {
      const { ledger, leaves, tree } = await loadFixture(treeFixture);
      const [incA] = await ledger.verifyLeaf(REPD, tree.root, leaves[0], tree.proof(1));
      expect(incA).to.equal(false);
      const [incB] = await ledger.verifyLeaf(REPD, tree.root, ethers.id("not in tree"), tree.proof(0));
      expect(incB).to.equal(false);
      const single = ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(leafTypes, records[0]));
      const [incC] = await ledger.verifyLeaf(REPD, tree.root, single, tree.proof(0));
      expect(incC).to.equal(false);
      const [incD] = await ledger.verifyLeaf(REPD, tree.root, leaves[0], []);
      expect(incD).to.equal(false);
      // the batch is still returned: only the proof failed
      const [incE, infoE] = await ledger.verifyLeaf(REPD, tree.root, leaves[0], tree.proof(1));
      expect(incE).to.equal(false);
      expect(infoE.seq).to.equal(1n);
      expect(infoE.count).to.equal(7n);
    });

    it("a one-leaf batch: the root is the leaf and the proof is empty", async function () {
      const { ledger, cso } = await loadFixture(deployFixture);
      const leaf = leafHash(leafTypes, records[0]);
      const tree = buildTree([leaf]);
      expect(tree.root).to.equal(leaf);
      await ledger.connect(cso).anchor(MARRIAGE, tree.root, 1, 1, ZERO32);
      const [included, info, status] = await ledger.verifyLeaf(CSO, tree.root, leaf, tree.proof(0));
      expect(included).to.equal(true);
      expect(info.recordType).to.equal(MARRIAGE);
      expect(info.seq).to.equal(1n);
      expect(info.count).to.equal(1n);
      expect(status.state).to.equal(LeafState.Current);
      const [incR, infoR] = await ledger.verifyLeaf(REPD, tree.root, leaf, tree.proof(0));
      expect(incR).to.equal(false);
      expectNoBatch(infoR);
    });

    it("a never-anchored root: a valid proof is not included, and seq is 0", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      const leaves = records.map((r) => leafHash(leafTypes, r));
      const tree = buildTree(leaves);
      for (const agency of [REPD, CSO, ZERO32]) {
        const [included, info, status] = await ledger.verifyLeaf(agency, tree.root, leaves[2], tree.proof(2));
        expect(included).to.equal(false);
        expectNoBatch(info);
        expect(status.state).to.equal(LeafState.Current);
      }
      // the same proof is included once REPD anchors the root (so it was only the anchor missing)
      await ledger.connect(repd).anchor(TITLE, tree.root, leaves.length, 1, ZERO32);
      const [included, info] = await ledger.verifyLeaf(REPD, tree.root, leaves[2], tree.proof(2));
      expect(included).to.equal(true);
      expect(info.seq).to.equal(1n);
      // a never-anchored root with a wrong proof is not included either
      const [incW, infoW] = await ledger.verifyLeaf(CSO, tree.root, leaves[2], tree.proof(3));
      expect(incW).to.equal(false);
      expectNoBatch(infoW);
    });

    it("a root anchored by another agency is not included for this agency (its own status is returned)", async function () {
      const { ledger, repd, cso, leaves, tree } = await loadFixture(treeFixture);
      await ledger.connect(repd).revoke([leaves[1]], 3);
      await ledger.connect(cso).supersede([leaves[2]], [leaves[3]], 4);
      for (let i = 0; i < leaves.length; ++i) {
        const [incA] = await ledger.verifyLeaf(REPD, tree.root, leaves[i], tree.proof(i));
        expect(incA, `REPD leaf ${i}`).to.equal(true);
        for (const other of [CSO, CRA]) {
          const [included, info] = await ledger.verifyLeaf(other, tree.root, leaves[i], tree.proof(i));
          expect(included, `leaf ${i} under ${ethers.decodeBytes32String(other)}`).to.equal(false);
          expectNoBatch(info);
        }
      }
      // status is always read under the agency named, never under the one that anchored
      const [, , st1] = await ledger.verifyLeaf(CSO, tree.root, leaves[1], tree.proof(1));
      expect(st1.state).to.equal(LeafState.Current);
      const [, , st1a] = await ledger.verifyLeaf(REPD, tree.root, leaves[1], tree.proof(1));
      expect(st1a.state).to.equal(LeafState.Revoked);
      expect(st1a.reason).to.equal(3n);
      const [, , st2] = await ledger.verifyLeaf(CSO, tree.root, leaves[2], tree.proof(2));
      expect(st2.state).to.equal(LeafState.Superseded);
      expect(st2.successor).to.equal(leaves[3]);
      const [, , st2a] = await ledger.verifyLeaf(REPD, tree.root, leaves[2], tree.proof(2));
      expect(st2a.state).to.equal(LeafState.Current);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("gas", function () {
    it("anchor, 100-leaf revoke and 100-leaf supersede stay within loose bounds", async function () {
      const { ledger, repd } = await loadFixture(deployFixture);
      const gasOf = async (txp) => (await (await txp).wait()).gasUsed;
      const first = await gasOf(ledger.connect(repd).anchor(TITLE, R(1), 100, 1, ZERO32));
      const second = await gasOf(ledger.connect(repd).anchor(TITLE, R(2), 100, 2, R(1)));
      const revoke100 = await gasOf(ledger.connect(repd).revoke(fakeLeaves(100, "rv"), 1));
      const supersede100 = await gasOf(ledger.connect(repd).supersede(fakeLeaves(100, "old"), fakeLeaves(100, "new"), 2));
      console.log(
        `      gasUsed: first anchor ${first}, subsequent anchor ${second}, ` +
          `revoke(100) ${revoke100}, supersede(100) ${supersede100}`,
      );
      if (hre.__SOLIDITY_COVERAGE_RUNNING) return; // instrumented bytecode costs more
      // A Batch is two storage slots (recordType; seq, blockNumber, timestamp, count): about
      // 128.8k for a first anchor and 94.9k after, ~22k (one fresh slot) less than when the
      // batch also stored its agency (150.8k / 117.0k). A third slot would break these bounds.
      expect(first).to.be.lessThan(140_000n);
      expect(second).to.be.lessThan(105_000n);
      expect(second).to.be.lessThan(first);
      expect(revoke100).to.be.lessThan(3_500_000n);
      expect(supersede100).to.be.lessThan(6_000_000n);
    });
  });
});
