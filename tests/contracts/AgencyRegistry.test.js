const { expect } = require("chai");
const { ethers } = require("hardhat");
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
  OPEN,
  PROPOSAL_LIFETIME,
  Status,
  Kind,
  action,
  actionTuple,
  agencyInit,
  deployRegistry,
  deployFixture,
  pass,
} = require("./helpers");

const LRA = b32("LRA"); // an agency the council adds (not a council member)
const BIRTH = b32("birth");
const UNKNOWN = b32("NOPE");

const nextBlock = async () => BigInt(await ethers.provider.getBlockNumber()) + 1n;
const randomAddress = () => ethers.Wallet.createRandom().address;

/** Fixture plus a fourth, non-council agency LRA (record type "title") with signer spare[0]. */
async function withLraFixture() {
  const f = await deployFixture();
  const lra = f.spare[0];
  await pass(
    f.registry,
    action(Kind.AddAgency, { agency: LRA, name: "Land Registry Annex", account: lra.address, recordType: TITLE }),
    f.repd,
    f.cso,
  );
  return { ...f, lra };
}

describe("AgencyRegistry", function () {
  // ------------------------------------------------------------------------------------------
  describe("bootstrap / constructor", function () {
    it("registers the founding agencies, signers, record types, council and threshold", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      const deployBlock = (await registry.deploymentTransaction().wait()).blockNumber;

      expect(await registry.agencyCodes()).to.deep.equal([REPD, CSO, CRA]);
      const info = await registry.agencyInfo(REPD);
      expect(info.name).to.equal("Real Estate Property Department");
      expect(info.status).to.equal(Status.Active);
      expect(info.council).to.equal(true);
      expect(info.registeredAt).to.equal(BigInt(deployBlock));

      expect(await registry.agencySigners(REPD)).to.deep.equal([repd.address]);
      expect(await registry.agencySigners(CSO)).to.deep.equal([cso.address]);
      expect(await registry.agencySigners(CRA)).to.deep.equal([cra.address]);
      expect([...(await registry.currentSigners())]).to.have.members([repd.address, cso.address, cra.address]);
      const s = await registry.signerInfo(cso.address);
      expect(s.agency).to.equal(CSO);
      expect(s.validFrom).to.equal(BigInt(deployBlock));
      expect(s.validTo).to.equal(OPEN);

      expect(await registry.recordTypes(REPD)).to.deep.equal([TITLE]);
      expect(await registry.recordTypes(CSO)).to.deep.equal([MARRIAGE]);
      expect(await registry.recordTypes(CRA)).to.deep.equal([COMMERCIAL]);

      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO, CRA]);
      expect(await registry.threshold()).to.equal(2n);
      expect(await registry.councilEpoch()).to.equal(3n); // one per council member added
      expect(await registry.proposalCount()).to.equal(0n);
      expect(await registry.proposalLifetime()).to.equal(PROPOSAL_LIFETIME);
      expect(await registry.version()).to.equal("1.0.0");
      expect(await registry.MAX_SIGNERS_PER_AGENCY()).to.equal(16n);
      expect(await registry.MAX_NAME_LENGTH()).to.equal(128n);
    });

    it("emits the bootstrap events", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      const tx = registry.deploymentTransaction();
      const block = BigInt((await tx.wait()).blockNumber);
      await expect(tx).to.emit(registry, "AgencyAdded").withArgs(REPD, "Real Estate Property Department");
      await expect(tx).to.emit(registry, "AgencyAdded").withArgs(CSO, "Civil Status Office");
      await expect(tx).to.emit(registry, "AgencyAdded").withArgs(CRA, "Commercial Registry Authority");
      await expect(tx).to.emit(registry, "SignerAdded").withArgs(REPD, repd.address, block);
      await expect(tx).to.emit(registry, "SignerAdded").withArgs(CSO, cso.address, block);
      await expect(tx).to.emit(registry, "SignerAdded").withArgs(CRA, cra.address, block);
      await expect(tx).to.emit(registry, "RecordTypeAllowed").withArgs(REPD, TITLE);
      await expect(tx).to.emit(registry, "RecordTypeAllowed").withArgs(CSO, MARRIAGE);
      await expect(tx).to.emit(registry, "RecordTypeAllowed").withArgs(CRA, COMMERCIAL);
      await expect(tx).to.emit(registry, "CouncilMemberAdded").withArgs(REPD);
      await expect(tx).to.emit(registry, "CouncilMemberAdded").withArgs(CSO);
      await expect(tx).to.emit(registry, "CouncilMemberAdded").withArgs(CRA);
      await expect(tx).to.emit(registry, "ThresholdChanged").withArgs(2n, 3n);
    });

    it("accepts non-council founders (not counted in the council) and agencies with no signers or types", async function () {
      const [, a, b] = await ethers.getSigners();
      const registry = await deployRegistry(
        [
          agencyInit(REPD, "R", true, [a.address], [TITLE, b32("lease")]),
          agencyInit(CSO, "C", false, [b.address], []),
          agencyInit(CRA, "x".repeat(128), false, [], []),
        ],
        1,
      );
      expect(await registry.councilMembers()).to.deep.equal([REPD]);
      expect(await registry.councilEpoch()).to.equal(1n);
      expect((await registry.agencyInfo(CSO)).council).to.equal(false);
      expect((await registry.agencyInfo(CRA)).name).to.equal("x".repeat(128));
      expect(await registry.agencySigners(CRA)).to.deep.equal([]);
      expect(await registry.recordTypes(REPD)).to.deep.equal([TITLE, b32("lease")]);
      expect([...(await registry.currentSigners())]).to.have.members([a.address, b.address]);
      await expect(registry.deploymentTransaction()).to.emit(registry, "ThresholdChanged").withArgs(1n, 1n);
    });

    it("reverts InvalidProposalLifetime on a zero lifetime", async function () {
      const [, a] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(F.deploy([agencyInit(REPD, "R", true, [a.address], [])], 1, 0))
        .to.be.revertedWithCustomError(F, "InvalidProposalLifetime")
        .withArgs();
    });

    it("reverts InvalidThreshold on 0, above the council size, or with no council", async function () {
      const [, a, b] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      const inits = [agencyInit(REPD, "R", true, [a.address], []), agencyInit(CSO, "C", false, [b.address], [])];
      await expect(F.deploy(inits, 0, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidThreshold")
        .withArgs(0n, 1n);
      await expect(F.deploy(inits, 2, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidThreshold")
        .withArgs(2n, 1n);
      await expect(F.deploy([], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidThreshold")
        .withArgs(1n, 0n);
    });

    it("reverts InvalidAgencyCode on a zero code", async function () {
      const [, a] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(F.deploy([agencyInit(ZERO32, "R", true, [a.address], [])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidAgencyCode")
        .withArgs();
    });

    it("reverts InvalidAgencyName on an empty or over-long name", async function () {
      const [, a] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(F.deploy([agencyInit(REPD, "", true, [a.address], [])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidAgencyName")
        .withArgs(REPD, 0n);
      await expect(F.deploy([agencyInit(REPD, "x".repeat(129), true, [a.address], [])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidAgencyName")
        .withArgs(REPD, 129n);
      // 65 two-byte characters: 130 bytes of UTF-8
      await expect(F.deploy([agencyInit(REPD, "é".repeat(65), true, [a.address], [])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidAgencyName")
        .withArgs(REPD, 130n);
    });

    it("reverts AgencyAlreadyRegistered on a duplicate code", async function () {
      const [, a, b] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      const inits = [agencyInit(REPD, "R", true, [a.address], []), agencyInit(REPD, "R2", true, [b.address], [])];
      await expect(F.deploy(inits, 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "AgencyAlreadyRegistered")
        .withArgs(REPD);
    });

    it("reverts InvalidSignerAccount on a zero signer", async function () {
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(F.deploy([agencyInit(REPD, "R", true, [ZERO_ADDR], [])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidSignerAccount")
        .withArgs(ZERO_ADDR);
    });

    it("reverts SignerAlreadyRegistered on a signer shared by two agencies or listed twice", async function () {
      const [, a] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(
        F.deploy(
          [agencyInit(REPD, "R", true, [a.address], []), agencyInit(CSO, "C", true, [a.address], [])],
          1,
          PROPOSAL_LIFETIME,
        ),
      )
        .to.be.revertedWithCustomError(F, "SignerAlreadyRegistered")
        .withArgs(a.address, REPD);
      await expect(F.deploy([agencyInit(CSO, "C", true, [a.address, a.address], [])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "SignerAlreadyRegistered")
        .withArgs(a.address, CSO);
    });

    it("accepts 16 signers and reverts TooManySigners on the 17th", async function () {
      const F = await ethers.getContractFactory("AgencyRegistry");
      const sixteen = Array.from({ length: 16 }, randomAddress);
      const ok = await deployRegistry([agencyInit(REPD, "R", true, sixteen, [])], 1);
      expect(await ok.agencySigners(REPD)).to.have.length(16);
      await expect(F.deploy([agencyInit(REPD, "R", true, [...sixteen, randomAddress()], [])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "TooManySigners")
        .withArgs(REPD, 16n);
    });

    it("reverts InvalidRecordType on a zero record type", async function () {
      const [, a] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(F.deploy([agencyInit(REPD, "R", true, [a.address], [ZERO32])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "InvalidRecordType")
        .withArgs();
    });

    it("reverts RecordTypeAlreadyAllowed on a duplicate record type", async function () {
      const [, a] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(F.deploy([agencyInit(REPD, "R", true, [a.address], [TITLE, TITLE])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "RecordTypeAlreadyAllowed")
        .withArgs(REPD, TITLE);
    });

    it("reverts AgencyWithoutSigner for a council founder with no signers", async function () {
      const [, a, b] = await ethers.getSigners();
      const F = await ethers.getContractFactory("AgencyRegistry");
      await expect(F.deploy([agencyInit(REPD, "R", true, [], [TITLE])], 1, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "AgencyWithoutSigner")
        .withArgs(REPD);
      // names the signer-less member, wherever it is in the list
      await expect(
        F.deploy(
          [
            agencyInit(REPD, "R", true, [a.address], []),
            agencyInit(CRA, "X", false, [], []), // a non-council founder may have none
            agencyInit(CSO, "C", true, [], [MARRIAGE]),
            agencyInit(LRA, "L", true, [b.address], []),
          ],
          2,
          PROPOSAL_LIFETIME,
        ),
      )
        .to.be.revertedWithCustomError(F, "AgencyWithoutSigner")
        .withArgs(CSO);
      // checked per agency, before the threshold
      await expect(F.deploy([agencyInit(REPD, "R", true, [], [])], 0, PROPOSAL_LIFETIME))
        .to.be.revertedWithCustomError(F, "AgencyWithoutSigner")
        .withArgs(REPD);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("proposals & council approval", function () {
    const addCso2 = (account) => action(Kind.AddSigner, { agency: CSO, account });

    it("propose records the proposal, emits ProposalCreated and the proposer's approval, and waits for M", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      const newSigner = randomAddress();
      const act = addCso2(newSigner);
      const expiresAt = BigInt(await time.latest()) + 1n + PROPOSAL_LIFETIME;
      await time.setNextBlockTimestamp(expiresAt - PROPOSAL_LIFETIME);
      await expect(registry.connect(repd).propose(act))
        .to.emit(registry, "ProposalCreated")
        .withArgs(1n, REPD, actionTuple(act), expiresAt)
        .and.to.emit(registry, "ProposalApproved")
        .withArgs(1n, REPD, 1n)
        .and.not.to.emit(registry, "ProposalExecuted");

      expect(await registry.proposalCount()).to.equal(1n);
      const p = await registry.proposal(1);
      expect(p.action.kind).to.equal(BigInt(Kind.AddSigner));
      expect(p.action.agency).to.equal(CSO);
      expect(p.action.account).to.equal(newSigner);
      expect(p.action.recordType).to.equal(ZERO32);
      expect(p.action.threshold).to.equal(0n);
      expect(p.action.name).to.equal("");
      expect(p.proposer).to.equal(REPD);
      expect(p.expiresAt).to.equal(expiresAt);
      expect(p.approvals).to.equal(1n);
      expect(p.councilEpoch).to.equal(3n);
      expect(p.executed).to.equal(false);
      expect(await registry.hasApproved(1, REPD)).to.equal(true);
      expect(await registry.hasApproved(1, CSO)).to.equal(false);
      expect((await registry.signerInfo(newSigner)).agency).to.equal(ZERO32);
    });

    it("propose returns the new id (staticCall)", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      expect(await registry.connect(repd).propose.staticCall(addCso2(randomAddress()))).to.equal(1n);
    });

    it("approve by a second council agency reaches the threshold and executes", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      const newSigner = randomAddress();
      await registry.connect(repd).propose(addCso2(newSigner));
      const block = await nextBlock();
      await expect(registry.connect(cso).approve(1))
        .to.emit(registry, "ProposalApproved")
        .withArgs(1n, CSO, 2n)
        .and.to.emit(registry, "ProposalExecuted")
        .withArgs(1n)
        .and.to.emit(registry, "SignerAdded")
        .withArgs(CSO, newSigner, block);
      const p = await registry.proposal(1);
      expect(p.executed).to.equal(true);
      expect(p.approvals).to.equal(2n);
      expect(await registry.hasApproved(1, CSO)).to.equal(true);
      expect(await registry.agencySigners(CSO)).to.include(newSigner);
    });

    it("executes at once when the threshold is 1", async function () {
      const [, a, b] = await ethers.getSigners();
      const registry = await deployRegistry(
        [agencyInit(REPD, "R", true, [a.address], []), agencyInit(CSO, "C", true, [b.address], [])],
        1,
      );
      await expect(registry.connect(a).propose(action(Kind.AllowRecordType, { agency: REPD, recordType: TITLE })))
        .to.emit(registry, "ProposalExecuted")
        .withArgs(1n)
        .and.to.emit(registry, "RecordTypeAllowed")
        .withArgs(REPD, TITLE);
      expect((await registry.proposal(1)).executed).to.equal(true);
    });

    it("needs three approvals with threshold 3", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      await pass(registry, action(Kind.SetThreshold, { threshold: 3 }), repd, cso);
      await registry.connect(repd).propose(action(Kind.AllowRecordType, { agency: CRA, recordType: BIRTH }));
      await expect(registry.connect(cso).approve(2)).not.to.emit(registry, "ProposalExecuted");
      await expect(registry.connect(cra).approve(2)).to.emit(registry, "ProposalExecuted").withArgs(2n);
      expect(await registry.isRecordTypeAllowed(CRA, BIRTH)).to.equal(true);
    });

    it("reverts UnknownProposal for id 0, an id never made, and in the proposal view", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).approve(0))
        .to.be.revertedWithCustomError(registry, "UnknownProposal")
        .withArgs(0n);
      await expect(registry.connect(repd).approve(1))
        .to.be.revertedWithCustomError(registry, "UnknownProposal")
        .withArgs(1n);
      await expect(registry.proposal(7)).to.be.revertedWithCustomError(registry, "UnknownProposal").withArgs(7n);
    });

    it("reverts ProposalAlreadyExecuted on approving an executed proposal", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      const id = await pass(registry, addCso2(randomAddress()), repd, cso);
      await expect(registry.connect(cra).approve(id))
        .to.be.revertedWithCustomError(registry, "ProposalAlreadyExecuted")
        .withArgs(id);
    });

    it("accepts approval up to expiresAt and reverts ProposalExpired after", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      await registry.connect(repd).propose(addCso2(randomAddress()));
      await registry.connect(cso).propose(addCso2(randomAddress()));
      const p1 = await registry.proposal(1);
      const p2 = await registry.proposal(2);
      await time.setNextBlockTimestamp(p1.expiresAt);
      await expect(registry.connect(cra).approve(1)).to.emit(registry, "ProposalExecuted").withArgs(1n);
      await time.setNextBlockTimestamp(p2.expiresAt + 1n);
      await expect(registry.connect(cra).approve(2))
        .to.be.revertedWithCustomError(registry, "ProposalExpired")
        .withArgs(2n, p2.expiresAt);
    });

    it("reverts ProposalStale once the council epoch changes", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      await registry.connect(repd).propose(addCso2(randomAddress())); // id 1, epoch 3
      await pass(registry, action(Kind.SetThreshold, { threshold: 3 }), cso, cra); // id 2, epoch -> 4
      await expect(registry.connect(cso).approve(1))
        .to.be.revertedWithCustomError(registry, "ProposalStale")
        .withArgs(1n, 3n, 4n);
    });

    it("reverts AlreadyApproved when the same agency approves twice, through any of its signers", async function () {
      const { registry, repd, cso, cra, spare } = await loadFixture(deployFixture);
      const repd2 = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: REPD, account: repd2.address }), repd, cso);
      await registry.connect(cra).propose(addCso2(randomAddress()));
      const id = await registry.proposalCount();
      await expect(registry.connect(cra).approve(id))
        .to.be.revertedWithCustomError(registry, "AlreadyApproved")
        .withArgs(id, CRA);
      await registry.connect(repd).propose(addCso2(randomAddress()));
      const id2 = await registry.proposalCount();
      await expect(registry.connect(repd2).approve(id2))
        .to.be.revertedWithCustomError(registry, "AlreadyApproved")
        .withArgs(id2, REPD);
    });

    it("an agency votes through any current signer", async function () {
      const { registry, repd, cso, cra, spare } = await loadFixture(deployFixture);
      const cra2 = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: CRA, account: cra2.address }), cra, repd);
      await registry.connect(cso).propose(action(Kind.AllowRecordType, { agency: CSO, recordType: BIRTH }));
      await expect(registry.connect(cra2).approve(2))
        .to.emit(registry, "ProposalApproved")
        .withArgs(2n, CRA, 2n)
        .and.to.emit(registry, "ProposalExecuted")
        .withArgs(2n);
    });

    it("re-validates the action at execution (a stale action fails the approving call)", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      const acct = randomAddress();
      await registry.connect(repd).propose(addCso2(acct)); // id 1
      await registry.connect(cso).propose(action(Kind.AddSigner, { agency: CRA, account: acct })); // id 2
      await registry.connect(cra).approve(1); // executes: acct becomes a CSO signer
      await expect(registry.connect(cra).approve(2))
        .to.be.revertedWithCustomError(registry, "SignerAlreadyRegistered")
        .withArgs(acct, CSO);
      const p = await registry.proposal(2);
      expect(p.executed).to.equal(false);
      expect(p.approvals).to.equal(1n);
      expect(await registry.hasApproved(2, CRA)).to.equal(false);
    });

    it("validates the action when proposing (nothing is recorded on failure)", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.SuspendAgency, { agency: UNKNOWN })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
      expect(await registry.proposalCount()).to.equal(0n);
    });

    describe("who may propose and approve", function () {
      it("reverts NotASigner for an account that never was a signer", async function () {
        const { registry, repd, outsider } = await loadFixture(deployFixture);
        const act = addCso2(randomAddress());
        await expect(registry.connect(outsider).propose(act))
          .to.be.revertedWithCustomError(registry, "NotASigner")
          .withArgs(outsider.address);
        await registry.connect(repd).propose(act);
        await expect(registry.connect(outsider).approve(1))
          .to.be.revertedWithCustomError(registry, "NotASigner")
          .withArgs(outsider.address);
      });

      it("reverts SignerRetired for a removed signer", async function () {
        const { registry, repd, cso, cra, spare } = await loadFixture(deployFixture);
        const repd2 = spare[1];
        await pass(registry, action(Kind.AddSigner, { agency: REPD, account: repd2.address }), repd, cso);
        await pass(registry, action(Kind.RemoveSigner, { agency: REPD, account: repd.address }), repd2, cso);
        const validTo = (await registry.signerInfo(repd.address)).validTo;
        await expect(registry.connect(repd).propose(addCso2(randomAddress())))
          .to.be.revertedWithCustomError(registry, "SignerRetired")
          .withArgs(repd.address, validTo);
        await registry.connect(cra).propose(addCso2(randomAddress()));
        const id = await registry.proposalCount();
        await expect(registry.connect(repd).approve(id))
          .to.be.revertedWithCustomError(registry, "SignerRetired")
          .withArgs(repd.address, validTo);
      });

      it("reverts AgencyNotActive for a signer of a suspended council agency", async function () {
        const { registry, repd, cso, cra } = await loadFixture(deployFixture);
        await registry.connect(repd).propose(addCso2(randomAddress())); // id 1
        await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso); // id 2
        await expect(registry.connect(cra).propose(addCso2(randomAddress())))
          .to.be.revertedWithCustomError(registry, "AgencyNotActive")
          .withArgs(CRA, Status.Suspended);
        await expect(registry.connect(cra).approve(1))
          .to.be.revertedWithCustomError(registry, "AgencyNotActive")
          .withArgs(CRA, Status.Suspended);
      });

      it("reverts NotCouncilMember for a signer of a non-council agency", async function () {
        const { registry, repd, lra } = await loadFixture(withLraFixture);
        await expect(registry.connect(lra).propose(addCso2(randomAddress())))
          .to.be.revertedWithCustomError(registry, "NotCouncilMember")
          .withArgs(LRA);
        await registry.connect(repd).propose(addCso2(randomAddress()));
        const id = await registry.proposalCount();
        await expect(registry.connect(lra).approve(id))
          .to.be.revertedWithCustomError(registry, "NotCouncilMember")
          .withArgs(LRA);
      });
    });

    describe("UnusedActionField", function () {
      const acct = "0x00000000000000000000000000000000000000aa";
      const cases = [
        ["AddAgency with threshold", action(Kind.AddAgency, { agency: LRA, name: "L", account: acct, threshold: 1 })],
        ["SuspendAgency with account", action(Kind.SuspendAgency, { agency: CRA, account: acct })],
        ["SuspendAgency with recordType", action(Kind.SuspendAgency, { agency: CRA, recordType: TITLE })],
        ["SuspendAgency with threshold", action(Kind.SuspendAgency, { agency: CRA, threshold: 1 })],
        ["SuspendAgency with name", action(Kind.SuspendAgency, { agency: CRA, name: "n" })],
        ["ReinstateAgency with name", action(Kind.ReinstateAgency, { agency: CRA, name: "n" })],
        ["AllowRecordType with account", action(Kind.AllowRecordType, { agency: CRA, recordType: BIRTH, account: acct })],
        ["DisallowRecordType with name", action(Kind.DisallowRecordType, { agency: CRA, recordType: COMMERCIAL, name: "n" })],
        ["AddSigner with recordType", action(Kind.AddSigner, { agency: CRA, account: acct, recordType: TITLE })],
        ["RemoveSigner with threshold", action(Kind.RemoveSigner, { agency: CRA, account: acct, threshold: 2 })],
        ["AddCouncilMember with account", action(Kind.AddCouncilMember, { agency: CRA, account: acct })],
        ["RemoveCouncilMember with recordType", action(Kind.RemoveCouncilMember, { agency: CRA, recordType: TITLE })],
        ["SetThreshold with agency", action(Kind.SetThreshold, { agency: CRA, threshold: 2 })],
        ["SetThreshold with name", action(Kind.SetThreshold, { threshold: 2, name: "n" })],
      ];
      for (const [label, act] of cases) {
        it(`reverts for ${label}`, async function () {
          const { registry, repd } = await loadFixture(deployFixture);
          await expect(registry.connect(repd).propose(act))
            .to.be.revertedWithCustomError(registry, "UnusedActionField")
            .withArgs(BigInt(act.kind));
        });
      }
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("ActionKind.AddAgency", function () {
    it("adds a non-council agency with its first signer and record type", async function () {
      const { registry, repd, cso, spare } = await loadFixture(deployFixture);
      const lra = spare[0];
      const act = action(Kind.AddAgency, { agency: LRA, name: "Land Registry Annex", account: lra.address, recordType: TITLE });
      await registry.connect(repd).propose(act);
      const block = await nextBlock();
      await expect(registry.connect(cso).approve(1))
        .to.emit(registry, "AgencyAdded")
        .withArgs(LRA, "Land Registry Annex")
        .and.to.emit(registry, "SignerAdded")
        .withArgs(LRA, lra.address, block)
        .and.to.emit(registry, "RecordTypeAllowed")
        .withArgs(LRA, TITLE);
      const info = await registry.agencyInfo(LRA);
      expect(info.status).to.equal(Status.Active);
      expect(info.council).to.equal(false);
      expect(info.registeredAt).to.equal(block);
      expect(await registry.agencyCodes()).to.deep.equal([REPD, CSO, CRA, LRA]);
      expect(await registry.currentSigners()).to.include(lra.address);
      expect(await registry.authorizeAnchor(lra.address, TITLE)).to.equal(LRA);
      expect(await registry.councilEpoch()).to.equal(3n);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO, CRA]);
    });

    it("adds an agency with no record type when recordType is zero", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await registry.connect(repd).propose(action(Kind.AddAgency, { agency: LRA, name: "L", account: randomAddress() }));
      await expect(registry.connect(cso).approve(1)).not.to.emit(registry, "RecordTypeAllowed");
      expect(await registry.recordTypes(LRA)).to.deep.equal([]);
    });

    it("reverts InvalidAgencyCode, InvalidAgencyName, AgencyAlreadyRegistered", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      const acct = randomAddress();
      await expect(registry.connect(repd).propose(action(Kind.AddAgency, { name: "L", account: acct })))
        .to.be.revertedWithCustomError(registry, "InvalidAgencyCode")
        .withArgs();
      await expect(registry.connect(repd).propose(action(Kind.AddAgency, { agency: LRA, account: acct })))
        .to.be.revertedWithCustomError(registry, "InvalidAgencyName")
        .withArgs(LRA, 0n);
      await expect(
        registry.connect(repd).propose(action(Kind.AddAgency, { agency: LRA, name: "y".repeat(129), account: acct })),
      )
        .to.be.revertedWithCustomError(registry, "InvalidAgencyName")
        .withArgs(LRA, 129n);
      await expect(registry.connect(repd).propose(action(Kind.AddAgency, { agency: CSO, name: "C", account: acct })))
        .to.be.revertedWithCustomError(registry, "AgencyAlreadyRegistered")
        .withArgs(CSO);
    });

    it("reverts InvalidSignerAccount and SignerAlreadyRegistered for the first signer", async function () {
      const { registry, repd, cra } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.AddAgency, { agency: LRA, name: "L" })))
        .to.be.revertedWithCustomError(registry, "InvalidSignerAccount")
        .withArgs(ZERO_ADDR);
      await expect(
        registry.connect(repd).propose(action(Kind.AddAgency, { agency: LRA, name: "L", account: cra.address })),
      )
        .to.be.revertedWithCustomError(registry, "SignerAlreadyRegistered")
        .withArgs(cra.address, CRA);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("ActionKind.SuspendAgency", function () {
    it("suspends a non-council agency: its signers leave currentSigners, the council is unchanged", async function () {
      const { registry, repd, cso, lra } = await loadFixture(withLraFixture);
      await registry.connect(repd).propose(action(Kind.SuspendAgency, { agency: LRA }));
      await expect(registry.connect(cso).approve(2))
        .to.emit(registry, "AgencyStatusChanged")
        .withArgs(LRA, Status.Suspended);
      expect((await registry.agencyInfo(LRA)).status).to.equal(Status.Suspended);
      expect(await registry.currentSigners()).not.to.include(lra.address);
      expect(await registry.agencySigners(LRA)).to.deep.equal([lra.address]);
      expect(await registry.councilEpoch()).to.equal(3n);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO, CRA]);
      await expect(registry.authorizeAnchor(lra.address, TITLE))
        .to.be.revertedWithCustomError(registry, "AgencyNotActive")
        .withArgs(LRA, Status.Suspended);
    });

    it("suspends a council agency: its vote leaves the council and the epoch advances", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO]);
      expect(await registry.councilEpoch()).to.equal(4n);
      expect([...(await registry.currentSigners())]).to.have.members([repd.address, cso.address]);
      expect((await registry.agencyInfo(CRA)).council).to.equal(true);
    });

    it("reverts UnknownAgency, AgencyNotActive (already suspended), InvalidThreshold (council too small)", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.SuspendAgency, { agency: UNKNOWN })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
      await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso);
      await expect(registry.connect(repd).propose(action(Kind.SuspendAgency, { agency: CRA })))
        .to.be.revertedWithCustomError(registry, "AgencyNotActive")
        .withArgs(CRA, Status.Suspended);
      // two voting members left, threshold 2: suspending one more would leave 1 < 2
      await expect(registry.connect(repd).propose(action(Kind.SuspendAgency, { agency: CSO })))
        .to.be.revertedWithCustomError(registry, "InvalidThreshold")
        .withArgs(2n, 1n);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("ActionKind.ReinstateAgency", function () {
    it("reinstates a council agency: signers (including ones added while suspended) and vote come back", async function () {
      const { registry, repd, cso, cra, spare } = await loadFixture(deployFixture);
      const cra2 = spare[1];
      await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso);
      await pass(registry, action(Kind.AddSigner, { agency: CRA, account: cra2.address }), repd, cso);
      expect(await registry.currentSigners()).not.to.include(cra2.address);
      await registry.connect(repd).propose(action(Kind.ReinstateAgency, { agency: CRA }));
      const id = await registry.proposalCount();
      await expect(registry.connect(cso).approve(id))
        .to.emit(registry, "AgencyStatusChanged")
        .withArgs(CRA, Status.Active);
      expect([...(await registry.currentSigners())]).to.have.members([repd.address, cso.address, cra.address, cra2.address]);
      expect([...(await registry.councilMembers())]).to.have.members([REPD, CSO, CRA]);
      expect(await registry.councilEpoch()).to.equal(5n);
      expect(await registry.authorizeSigner(cra2.address)).to.equal(CRA);
    });

    it("reinstates a non-council agency without touching the council epoch", async function () {
      const { registry, repd, cso, lra } = await loadFixture(withLraFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: LRA }), repd, cso);
      await pass(registry, action(Kind.ReinstateAgency, { agency: LRA }), repd, cso);
      expect(await registry.currentSigners()).to.include(lra.address);
      expect(await registry.councilEpoch()).to.equal(3n);
    });

    it("reverts AgencyAlreadyActive and UnknownAgency", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.ReinstateAgency, { agency: CSO })))
        .to.be.revertedWithCustomError(registry, "AgencyAlreadyActive")
        .withArgs(CSO);
      await expect(registry.connect(repd).propose(action(Kind.ReinstateAgency, { agency: UNKNOWN })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
    });

    it("reverts AgencyWithoutSigner for a suspended agency that lost its last signer, until it has one again", async function () {
      const { registry, repd, cso, lra, spare } = await loadFixture(withLraFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: LRA }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: LRA, account: lra.address }), repd, cso);
      expect(await registry.agencySigners(LRA)).to.deep.equal([]);
      const count = await registry.proposalCount();
      await expect(registry.connect(repd).propose(action(Kind.ReinstateAgency, { agency: LRA })))
        .to.be.revertedWithCustomError(registry, "AgencyWithoutSigner")
        .withArgs(LRA);
      expect(await registry.proposalCount()).to.equal(count);
      expect((await registry.agencyInfo(LRA)).status).to.equal(Status.Suspended);
      // a new signer added while suspended makes it reinstatable
      const lra2 = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: LRA, account: lra2.address }), repd, cso);
      await registry.connect(repd).propose(action(Kind.ReinstateAgency, { agency: LRA }));
      await expect(registry.connect(cso).approve(await registry.proposalCount()))
        .to.emit(registry, "AgencyStatusChanged")
        .withArgs(LRA, Status.Active);
      expect(await registry.authorizeAnchor(lra2.address, TITLE)).to.equal(LRA);
    });

    it("reverts AgencyWithoutSigner for a signer-less suspended council member; it can still be removed", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: CRA, account: cra.address }), repd, cso);
      await expect(registry.connect(repd).propose(action(Kind.ReinstateAgency, { agency: CRA })))
        .to.be.revertedWithCustomError(registry, "AgencyWithoutSigner")
        .withArgs(CRA);
      // it does not count towards N meanwhile
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO]);
      await expect(registry.connect(repd).propose(action(Kind.SetThreshold, { threshold: 3 })))
        .to.be.revertedWithCustomError(registry, "InvalidThreshold")
        .withArgs(3n, 2n);
      await registry.connect(repd).propose(action(Kind.RemoveCouncilMember, { agency: CRA }));
      await expect(registry.connect(cso).approve(await registry.proposalCount()))
        .to.emit(registry, "CouncilMemberRemoved")
        .withArgs(CRA);
    });

    it("re-checks the signers at execution: a reinstatement whose agency lost its last signer meanwhile fails", async function () {
      const { registry, repd, cso, lra } = await loadFixture(withLraFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: LRA }), repd, cso);
      await registry.connect(repd).propose(action(Kind.ReinstateAgency, { agency: LRA })); // valid now
      const reinstate = await registry.proposalCount();
      await pass(registry, action(Kind.RemoveSigner, { agency: LRA, account: lra.address }), repd, cso);
      await expect(registry.connect(cso).approve(reinstate))
        .to.be.revertedWithCustomError(registry, "AgencyWithoutSigner")
        .withArgs(LRA);
      const p = await registry.proposal(reinstate);
      expect(p.executed).to.equal(false);
      expect(p.approvals).to.equal(1n);
      expect((await registry.agencyInfo(LRA)).status).to.equal(Status.Suspended);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("ActionKind.AllowRecordType / DisallowRecordType", function () {
    it("allows a record type", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await registry.connect(repd).propose(action(Kind.AllowRecordType, { agency: CSO, recordType: BIRTH }));
      await expect(registry.connect(cso).approve(1)).to.emit(registry, "RecordTypeAllowed").withArgs(CSO, BIRTH);
      expect(await registry.recordTypes(CSO)).to.deep.equal([MARRIAGE, BIRTH]);
      expect(await registry.isRecordTypeAllowed(CSO, BIRTH)).to.equal(true);
      expect(await registry.authorizeAnchor(cso.address, BIRTH)).to.equal(CSO);
    });

    it("AllowRecordType reverts InvalidRecordType, RecordTypeAlreadyAllowed, UnknownAgency", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.AllowRecordType, { agency: CSO })))
        .to.be.revertedWithCustomError(registry, "InvalidRecordType")
        .withArgs();
      await expect(registry.connect(repd).propose(action(Kind.AllowRecordType, { agency: CSO, recordType: MARRIAGE })))
        .to.be.revertedWithCustomError(registry, "RecordTypeAlreadyAllowed")
        .withArgs(CSO, MARRIAGE);
      await expect(registry.connect(repd).propose(action(Kind.AllowRecordType, { agency: UNKNOWN, recordType: BIRTH })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
    });

    it("disallows a record type: anchoring it is no longer authorized", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await registry.connect(cso).propose(action(Kind.DisallowRecordType, { agency: REPD, recordType: TITLE }));
      await expect(registry.connect(repd).approve(1)).to.emit(registry, "RecordTypeDisallowed").withArgs(REPD, TITLE);
      expect(await registry.recordTypes(REPD)).to.deep.equal([]);
      expect(await registry.isRecordTypeAllowed(REPD, TITLE)).to.equal(false);
      await expect(registry.authorizeAnchor(repd.address, TITLE))
        .to.be.revertedWithCustomError(registry, "RecordTypeNotAllowed")
        .withArgs(REPD, TITLE);
    });

    it("DisallowRecordType reverts RecordTypeNotAllowed and UnknownAgency", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.DisallowRecordType, { agency: REPD, recordType: MARRIAGE })))
        .to.be.revertedWithCustomError(registry, "RecordTypeNotAllowed")
        .withArgs(REPD, MARRIAGE);
      await expect(registry.connect(repd).propose(action(Kind.DisallowRecordType, { agency: REPD })))
        .to.be.revertedWithCustomError(registry, "RecordTypeNotAllowed")
        .withArgs(REPD, ZERO32);
      await expect(registry.connect(repd).propose(action(Kind.DisallowRecordType, { agency: UNKNOWN, recordType: TITLE })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("ActionKind.AddSigner / RemoveSigner", function () {
    it("adds a signer to an active agency", async function () {
      const { registry, repd, cso, spare } = await loadFixture(deployFixture);
      const s = spare[1];
      await registry.connect(repd).propose(action(Kind.AddSigner, { agency: REPD, account: s.address }));
      const block = await nextBlock();
      await expect(registry.connect(cso).approve(1)).to.emit(registry, "SignerAdded").withArgs(REPD, s.address, block);
      expect(await registry.agencySigners(REPD)).to.deep.equal([repd.address, s.address]);
      expect(await registry.currentSigners()).to.include(s.address);
      const info = await registry.signerInfo(s.address);
      expect(info.agency).to.equal(REPD);
      expect(info.validFrom).to.equal(block);
      expect(info.validTo).to.equal(OPEN);
    });

    it("AddSigner reverts InvalidSignerAccount, SignerAlreadyRegistered, UnknownAgency", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.AddSigner, { agency: REPD })))
        .to.be.revertedWithCustomError(registry, "InvalidSignerAccount")
        .withArgs(ZERO_ADDR);
      await expect(registry.connect(repd).propose(action(Kind.AddSigner, { agency: REPD, account: cso.address })))
        .to.be.revertedWithCustomError(registry, "SignerAlreadyRegistered")
        .withArgs(cso.address, CSO);
      await expect(registry.connect(repd).propose(action(Kind.AddSigner, { agency: UNKNOWN, account: randomAddress() })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
    });

    it("AddSigner reverts TooManySigners beyond 16 current signers", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      for (let i = 0; i < 15; ++i) {
        await pass(registry, action(Kind.AddSigner, { agency: CRA, account: randomAddress() }), repd, cso);
      }
      expect(await registry.agencySigners(CRA)).to.have.length(16);
      await expect(registry.connect(repd).propose(action(Kind.AddSigner, { agency: CRA, account: randomAddress() })))
        .to.be.revertedWithCustomError(registry, "TooManySigners")
        .withArgs(CRA, 16n);
    });

    it("removes a signer: validTo is the removal block and it leaves both signer lists", async function () {
      const { registry, repd, cso, spare } = await loadFixture(deployFixture);
      const s = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: REPD, account: s.address }), repd, cso);
      await registry.connect(repd).propose(action(Kind.RemoveSigner, { agency: REPD, account: s.address }));
      const block = await nextBlock();
      await expect(registry.connect(cso).approve(2)).to.emit(registry, "SignerRemoved").withArgs(REPD, s.address, block);
      expect(await registry.agencySigners(REPD)).to.deep.equal([repd.address]);
      expect(await registry.currentSigners()).not.to.include(s.address);
      const info = await registry.signerInfo(s.address);
      expect(info.agency).to.equal(REPD);
      expect(info.validTo).to.equal(block);
    });

    it("RemoveSigner reverts NotASigner, SignerOfOtherAgency, SignerRetired, LastSignerOfActiveAgency, UnknownAgency", async function () {
      const { registry, repd, cso, outsider, spare } = await loadFixture(deployFixture);
      const rm = (agency, account) => registry.connect(repd).propose(action(Kind.RemoveSigner, { agency, account }));
      await expect(rm(REPD, outsider.address))
        .to.be.revertedWithCustomError(registry, "NotASigner")
        .withArgs(outsider.address);
      await expect(rm(REPD, ZERO_ADDR)).to.be.revertedWithCustomError(registry, "NotASigner").withArgs(ZERO_ADDR);
      await expect(rm(REPD, cso.address))
        .to.be.revertedWithCustomError(registry, "SignerOfOtherAgency")
        .withArgs(cso.address, CSO, REPD);
      await expect(rm(REPD, repd.address))
        .to.be.revertedWithCustomError(registry, "LastSignerOfActiveAgency")
        .withArgs(REPD, repd.address);
      await expect(rm(UNKNOWN, repd.address))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
      const s = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: REPD, account: s.address }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: REPD, account: s.address }), repd, cso);
      const validTo = (await registry.signerInfo(s.address)).validTo;
      await expect(rm(REPD, s.address))
        .to.be.revertedWithCustomError(registry, "SignerRetired")
        .withArgs(s.address, validTo);
    });

    it("a suspended agency may lose its last signer", async function () {
      const { registry, repd, cso, lra } = await loadFixture(withLraFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: LRA }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: LRA, account: lra.address }), repd, cso);
      expect(await registry.agencySigners(LRA)).to.deep.equal([]);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("ActionKind.AddCouncilMember / RemoveCouncilMember", function () {
    it("adds a council member: its signers can then propose", async function () {
      const { registry, repd, cso, lra } = await loadFixture(withLraFixture);
      await registry.connect(repd).propose(action(Kind.AddCouncilMember, { agency: LRA }));
      await expect(registry.connect(cso).approve(2)).to.emit(registry, "CouncilMemberAdded").withArgs(LRA);
      expect((await registry.agencyInfo(LRA)).council).to.equal(true);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO, CRA, LRA]);
      expect(await registry.councilEpoch()).to.equal(4n);
      await expect(registry.connect(lra).propose(action(Kind.AllowRecordType, { agency: LRA, recordType: BIRTH })))
        .to.emit(registry, "ProposalApproved")
        .withArgs(3n, LRA, 1n);
    });

    it("AddCouncilMember reverts AlreadyCouncilMember, AgencyNotActive, UnknownAgency", async function () {
      const { registry, repd, cso } = await loadFixture(withLraFixture);
      await expect(registry.connect(repd).propose(action(Kind.AddCouncilMember, { agency: CSO })))
        .to.be.revertedWithCustomError(registry, "AlreadyCouncilMember")
        .withArgs(CSO);
      await expect(registry.connect(repd).propose(action(Kind.AddCouncilMember, { agency: UNKNOWN })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
      await pass(registry, action(Kind.SuspendAgency, { agency: LRA }), repd, cso);
      await expect(registry.connect(repd).propose(action(Kind.AddCouncilMember, { agency: LRA })))
        .to.be.revertedWithCustomError(registry, "AgencyNotActive")
        .withArgs(LRA, Status.Suspended);
    });

    it("AddCouncilMember reverts AgencyWithoutSigner for an active agency with no signers, until it has one", async function () {
      const [, a, b, c] = await ethers.getSigners();
      // LRA: an active, non-council founder bootstrapped with zero signers
      const registry = await deployRegistry(
        [
          agencyInit(REPD, "R", true, [a.address], [TITLE]),
          agencyInit(CSO, "C", true, [b.address], [MARRIAGE]),
          agencyInit(LRA, "L", false, [], [TITLE]),
        ],
        1,
      );
      expect((await registry.agencyInfo(LRA)).status).to.equal(Status.Active);
      await expect(registry.connect(a).propose(action(Kind.AddCouncilMember, { agency: LRA })))
        .to.be.revertedWithCustomError(registry, "AgencyWithoutSigner")
        .withArgs(LRA);
      expect(await registry.proposalCount()).to.equal(0n);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO]);
      // once it has a signer it can join (threshold 1: proposing executes)
      await registry.connect(a).propose(action(Kind.AddSigner, { agency: LRA, account: c.address }));
      await expect(registry.connect(b).propose(action(Kind.AddCouncilMember, { agency: LRA })))
        .to.emit(registry, "CouncilMemberAdded")
        .withArgs(LRA);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO, LRA]);
      await expect(registry.connect(c).propose(action(Kind.SetThreshold, { threshold: 3 })))
        .to.emit(registry, "ThresholdChanged")
        .withArgs(3n, 3n);
    });

    it("AddCouncilMember checks AgencyNotActive before AgencyWithoutSigner", async function () {
      const { registry, repd, cso, lra } = await loadFixture(withLraFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: LRA }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: LRA, account: lra.address }), repd, cso);
      await expect(registry.connect(repd).propose(action(Kind.AddCouncilMember, { agency: LRA })))
        .to.be.revertedWithCustomError(registry, "AgencyNotActive")
        .withArgs(LRA, Status.Suspended);
    });

    it("removes an active council member: its signers can no longer vote", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      await registry.connect(repd).propose(action(Kind.RemoveCouncilMember, { agency: CRA }));
      await expect(registry.connect(cso).approve(1)).to.emit(registry, "CouncilMemberRemoved").withArgs(CRA);
      expect((await registry.agencyInfo(CRA)).council).to.equal(false);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO]);
      expect(await registry.councilEpoch()).to.equal(4n);
      await expect(registry.connect(cra).propose(action(Kind.AllowRecordType, { agency: CRA, recordType: BIRTH })))
        .to.be.revertedWithCustomError(registry, "NotCouncilMember")
        .withArgs(CRA);
      // CRA is still an active agency that can anchor
      expect(await registry.authorizeAnchor(cra.address, COMMERCIAL)).to.equal(CRA);
    });

    it("removes a suspended council member without changing the voting count", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso); // voting: 2
      await pass(registry, action(Kind.RemoveCouncilMember, { agency: CRA }), repd, cso); // still 2
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO]);
      expect(await registry.councilEpoch()).to.equal(5n);
      // Reinstating CRA (no longer council) leaves the council at 2
      await pass(registry, action(Kind.ReinstateAgency, { agency: CRA }), repd, cso);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO]);
      expect(await registry.councilEpoch()).to.equal(5n);
    });

    it("RemoveCouncilMember reverts NotCouncilMember, InvalidThreshold, UnknownAgency", async function () {
      const { registry, repd, cso } = await loadFixture(withLraFixture);
      await expect(registry.connect(repd).propose(action(Kind.RemoveCouncilMember, { agency: LRA })))
        .to.be.revertedWithCustomError(registry, "NotCouncilMember")
        .withArgs(LRA);
      await expect(registry.connect(repd).propose(action(Kind.RemoveCouncilMember, { agency: UNKNOWN })))
        .to.be.revertedWithCustomError(registry, "UnknownAgency")
        .withArgs(UNKNOWN);
      await pass(registry, action(Kind.RemoveCouncilMember, { agency: CRA }), repd, cso);
      await expect(registry.connect(repd).propose(action(Kind.RemoveCouncilMember, { agency: CSO })))
        .to.be.revertedWithCustomError(registry, "InvalidThreshold")
        .withArgs(2n, 1n);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("ActionKind.SetThreshold", function () {
    it("sets the threshold and advances the epoch", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await registry.connect(repd).propose(action(Kind.SetThreshold, { threshold: 3 }));
      await expect(registry.connect(cso).approve(1)).to.emit(registry, "ThresholdChanged").withArgs(3n, 3n);
      expect(await registry.threshold()).to.equal(3n);
      expect(await registry.councilEpoch()).to.equal(4n);
    });

    it("reverts InvalidThreshold on 0 or above the voting members", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      await expect(registry.connect(repd).propose(action(Kind.SetThreshold, {})))
        .to.be.revertedWithCustomError(registry, "InvalidThreshold")
        .withArgs(0n, 3n);
      await expect(registry.connect(repd).propose(action(Kind.SetThreshold, { threshold: 4 })))
        .to.be.revertedWithCustomError(registry, "InvalidThreshold")
        .withArgs(4n, 3n);
      // a suspended member does not count
      await pass(registry, action(Kind.SuspendAgency, { agency: CRA }), repd, cso);
      await expect(registry.connect(repd).propose(action(Kind.SetThreshold, { threshold: 3 })))
        .to.be.revertedWithCustomError(registry, "InvalidThreshold")
        .withArgs(3n, 2n);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("authority views", function () {
    it("authorizeAnchor returns the agency when the signer may anchor the record type", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      expect(await registry.authorizeAnchor(repd.address, TITLE)).to.equal(REPD);
      expect(await registry.authorizeAnchor(cso.address, MARRIAGE)).to.equal(CSO);
      expect(await registry.authorizeAnchor(cra.address, COMMERCIAL)).to.equal(CRA);
    });

    it("authorizeAnchor reverts RecordTypeNotAllowed for another agency's record type", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      await expect(registry.authorizeAnchor(repd.address, MARRIAGE))
        .to.be.revertedWithCustomError(registry, "RecordTypeNotAllowed")
        .withArgs(REPD, MARRIAGE);
      await expect(registry.authorizeAnchor(repd.address, ZERO32))
        .to.be.revertedWithCustomError(registry, "RecordTypeNotAllowed")
        .withArgs(REPD, ZERO32);
    });

    it("authorizeAnchor / authorizeSigner revert NotASigner for unknown accounts", async function () {
      const { registry, outsider } = await loadFixture(deployFixture);
      await expect(registry.authorizeAnchor(outsider.address, TITLE))
        .to.be.revertedWithCustomError(registry, "NotASigner")
        .withArgs(outsider.address);
      await expect(registry.authorizeSigner(ZERO_ADDR))
        .to.be.revertedWithCustomError(registry, "NotASigner")
        .withArgs(ZERO_ADDR);
    });

    it("authorizeSigner returns the agency of a current signer", async function () {
      const { registry, cra } = await loadFixture(deployFixture);
      expect(await registry.authorizeSigner(cra.address)).to.equal(CRA);
    });

    it("agencyInfo / signerInfo of unknowns are zero; isRecordTypeAllowed and recordTypes of unknowns are empty", async function () {
      const { registry, outsider } = await loadFixture(deployFixture);
      const a = await registry.agencyInfo(UNKNOWN);
      expect(a.status).to.equal(Status.None);
      expect(a.name).to.equal("");
      expect(a.council).to.equal(false);
      expect(a.registeredAt).to.equal(0n);
      const s = await registry.signerInfo(outsider.address);
      expect(s.agency).to.equal(ZERO32);
      expect(s.validFrom).to.equal(0n);
      expect(s.validTo).to.equal(0n);
      expect(await registry.isRecordTypeAllowed(UNKNOWN, TITLE)).to.equal(false);
      expect(await registry.recordTypes(UNKNOWN)).to.deep.equal([]);
      expect(await registry.agencySigners(UNKNOWN)).to.deep.equal([]);
      expect(await registry.hasApproved(1, REPD)).to.equal(false);
    });

    it("isSignerValidAt checks agency and the inclusive block range", async function () {
      const { registry, repd } = await loadFixture(deployFixture);
      const from = (await registry.signerInfo(repd.address)).validFrom;
      expect(await registry.isSignerValidAt(REPD, repd.address, from)).to.equal(true);
      expect(await registry.isSignerValidAt(REPD, repd.address, from - 1n)).to.equal(false);
      expect(await registry.isSignerValidAt(REPD, repd.address, 10n ** 12n)).to.equal(true);
      expect(await registry.isSignerValidAt(REPD, repd.address, OPEN)).to.equal(true);
      expect(await registry.isSignerValidAt(REPD, repd.address, 2n ** 64n)).to.equal(false);
      expect(await registry.isSignerValidAt(CSO, repd.address, from)).to.equal(false);
      expect(await registry.isSignerValidAt(ZERO32, repd.address, from)).to.equal(false);
      // an unknown account has agency zero: asking for agency zero must not say "valid"
      expect(await registry.isSignerValidAt(ZERO32, ZERO_ADDR, 0)).to.equal(false);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("signer validity ranges & rotation", function () {
    it("rotates a signer: the old range closes at the removal block, the new opens at its addition", async function () {
      const { registry, repd, cso, spare } = await loadFixture(deployFixture);
      const next = spare[1];
      const oldFrom = (await registry.signerInfo(repd.address)).validFrom;
      await pass(registry, action(Kind.AddSigner, { agency: REPD, account: next.address }), cso, repd);
      const newFrom = BigInt(await ethers.provider.getBlockNumber());
      await pass(registry, action(Kind.RemoveSigner, { agency: REPD, account: repd.address }), next, cso);
      const oldTo = BigInt(await ethers.provider.getBlockNumber());

      const oldInfo = await registry.signerInfo(repd.address);
      expect(oldInfo.validFrom).to.equal(oldFrom);
      expect(oldInfo.validTo).to.equal(oldTo);
      expect((await registry.signerInfo(next.address)).validFrom).to.equal(newFrom);

      expect(await registry.isSignerValidAt(REPD, repd.address, oldFrom)).to.equal(true);
      expect(await registry.isSignerValidAt(REPD, repd.address, oldTo)).to.equal(true);
      expect(await registry.isSignerValidAt(REPD, repd.address, oldTo + 1n)).to.equal(false);
      expect(await registry.isSignerValidAt(REPD, next.address, newFrom - 1n)).to.equal(false);
      expect(await registry.isSignerValidAt(REPD, next.address, newFrom)).to.equal(true);
      expect(await registry.isSignerValidAt(REPD, next.address, oldTo + 1000n)).to.equal(true);

      await expect(registry.authorizeAnchor(repd.address, TITLE))
        .to.be.revertedWithCustomError(registry, "SignerRetired")
        .withArgs(repd.address, oldTo);
      await expect(registry.authorizeSigner(repd.address))
        .to.be.revertedWithCustomError(registry, "SignerRetired")
        .withArgs(repd.address, oldTo);
      expect(await registry.authorizeAnchor(next.address, TITLE)).to.equal(REPD);
      expect(await registry.agencySigners(REPD)).to.deep.equal([next.address]);
      expect([...(await registry.currentSigners())]).to.have.members([next.address, cso.address, (await ethers.getSigners())[3].address]);
    });

    it("a retired account can never be registered again (its history stays)", async function () {
      const { registry, repd, cso, spare } = await loadFixture(deployFixture);
      const s = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: REPD, account: s.address }), repd, cso);
      await pass(registry, action(Kind.RemoveSigner, { agency: REPD, account: s.address }), repd, cso);
      await expect(registry.connect(repd).propose(action(Kind.AddSigner, { agency: REPD, account: s.address })))
        .to.be.revertedWithCustomError(registry, "SignerAlreadyRegistered")
        .withArgs(s.address, REPD);
      await expect(registry.connect(repd).propose(action(Kind.AddSigner, { agency: CSO, account: s.address })))
        .to.be.revertedWithCustomError(registry, "SignerAlreadyRegistered")
        .withArgs(s.address, REPD);
    });

    it("a retired signer frees a slot under the 16-signer cap", async function () {
      const { registry, repd, cso } = await loadFixture(deployFixture);
      const added = [];
      for (let i = 0; i < 15; ++i) {
        const a = randomAddress();
        added.push(a);
        await pass(registry, action(Kind.AddSigner, { agency: CRA, account: a }), repd, cso);
      }
      await pass(registry, action(Kind.RemoveSigner, { agency: CRA, account: added[0] }), repd, cso);
      await pass(registry, action(Kind.AddSigner, { agency: CRA, account: randomAddress() }), repd, cso);
      expect(await registry.agencySigners(CRA)).to.have.length(16);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe("suspension effects on currentSigners / council", function () {
    it("currentSigners tracks suspension and reinstatement; agencySigners keeps the accounts", async function () {
      const { registry, repd, cso, cra, spare } = await loadFixture(deployFixture);
      const cso2 = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: CSO, account: cso2.address }), repd, cra);
      expect([...(await registry.currentSigners())]).to.have.members([repd.address, cso.address, cra.address, cso2.address]);
      await pass(registry, action(Kind.SuspendAgency, { agency: CSO }), repd, cra);
      expect([...(await registry.currentSigners())]).to.have.members([repd.address, cra.address]);
      expect([...(await registry.agencySigners(CSO))]).to.have.members([cso.address, cso2.address]);
      // signer ranges are not cut by suspension
      expect((await registry.signerInfo(cso.address)).validTo).to.equal(OPEN);
      await expect(registry.authorizeSigner(cso2.address))
        .to.be.revertedWithCustomError(registry, "AgencyNotActive")
        .withArgs(CSO, Status.Suspended);
      await pass(registry, action(Kind.ReinstateAgency, { agency: CSO }), repd, cra);
      expect([...(await registry.currentSigners())]).to.have.members([repd.address, cso.address, cra.address, cso2.address]);
    });

    it("a signer removed while suspended does not come back on reinstatement", async function () {
      const { registry, repd, cso, cra, spare } = await loadFixture(deployFixture);
      const cso2 = spare[1];
      await pass(registry, action(Kind.AddSigner, { agency: CSO, account: cso2.address }), repd, cra);
      await pass(registry, action(Kind.SuspendAgency, { agency: CSO }), repd, cra);
      await pass(registry, action(Kind.RemoveSigner, { agency: CSO, account: cso.address }), repd, cra);
      await pass(registry, action(Kind.ReinstateAgency, { agency: CSO }), repd, cra);
      expect([...(await registry.currentSigners())]).to.have.members([repd.address, cra.address, cso2.address]);
    });

    it("councilMembers lists only active members; suspension makes open proposals stale", async function () {
      const { registry, repd, cso, cra } = await loadFixture(deployFixture);
      await registry.connect(cso).propose(action(Kind.AllowRecordType, { agency: CSO, recordType: BIRTH })); // id 1
      await pass(registry, action(Kind.SuspendAgency, { agency: REPD }), cra, cso); // id 2
      expect(await registry.councilMembers()).to.deep.equal([CSO, CRA]);
      await expect(registry.connect(cra).approve(1))
        .to.be.revertedWithCustomError(registry, "ProposalStale")
        .withArgs(1n, 3n, 4n);
      // with REPD suspended the remaining two still make the threshold
      await pass(registry, action(Kind.ReinstateAgency, { agency: REPD }), cra, cso);
      expect(await registry.councilMembers()).to.deep.equal([REPD, CSO, CRA]);
      expect(await registry.authorizeSigner(repd.address)).to.equal(REPD);
    });
  });
});
