// EIP-712 receipts and secp256k1 recovery: tests/vectors/receipts.json byte for byte, and every
// kind of bad signature refused with ledger/receipts.py's words (asked of Python live).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  fromHex,
  keccak256,
  receiptDigest,
  ReceiptError,
  recoverSigner,
  toHex,
  utf8,
} from "../../api/web/sijill-verify.js";
import { attempt, NEEDS_PYTHON, oracle, vector } from "./helpers.mjs";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const word = (n) => fromHex("0x" + n.toString(16).padStart(64, "0"), 32);
const signature = (r, s, v) => toHex(new Uint8Array([...word(r), ...word(s), v]));

test("receipts.json: every digest and every signer", () => {
  for (const r of vector("receipts.json").receipts) {
    const digest = receiptDigest(r.message, r.domain);
    assert.equal(toHex(digest), r.digest);
    assert.equal(recoverSigner(digest, fromHex(r.signature, 65)), r.signer);
    assert.equal(recoverSigner(r.digest, r.signature), r.signer); // hex works too
  }
});

test("receipt message refusals: the same errors as ledger/receipts.py", { skip: NEEDS_PYTHON }, () => {
  const base = vector("receipts.json").receipts[0];
  const cases = [
    {},
    { version: 0 },
    { version: 2 ** 32 },
    { intakeTime: base.message.anchorBy + 1 },
    { intakeTime: -1 },
    { anchorBy: "18446744073709551616" },
    { agency: "repd" },
    { recordType: "x y" },
    { recordId: "" },
  ].map((change) => ({ ...base.message, ...change }));
  const bigAnchor = cases[5];
  bigAnchor.anchorBy = 2 ** 64; // JSON.stringify writes 18446744073709552000: beyond 2^64 for Python too
  const answers = oracle(cases.map((message) => ({ op: "receipt", message, domain: base.domain })));
  cases.forEach((message, i) => {
    assert.deepEqual(
      attempt(() => receiptDigest(message, base.domain)),
      answers[i],
      JSON.stringify(message)
    );
  });
});

test(
  "bad signatures are refused like ledger/receipts.py: v, high s, r and s out of range, garbage",
  { skip: NEEDS_PYTHON },
  () => {
    const good = vector("receipts.json").receipts[0];
    const bytes = fromHex(good.signature, 65);
    const r = BigInt(toHex(bytes.subarray(0, 32)));
    const s = BigInt(toHex(bytes.subarray(32, 64)));
    const v = bytes[64];
    const cases = [
      good.signature,
      signature(r, s, v ^ 1), // the other parity: another key, not an error
      signature(r, N - s, v ^ 1), // the malleable twin: refused
      signature(r, N / 2n, v),
      signature(r, N / 2n + 1n, v),
      signature(r, s, 0),
      signature(r, s, 1),
      signature(r, s, 29),
      signature(r, s, 255),
      signature(0n, s, v),
      signature(r, 0n, v),
      signature(N, s, v),
      signature(N - 1n, s, v),
      signature(2n ** 256n - 1n, s, v),
      signature(5n, 1n, 27), // x = 5: not on the curve
      good.signature.slice(0, -2), // 64 bytes
      good.signature + "00", // 66 bytes
      "0x",
    ];
    // Garbage: pseudo-random r and s (s folded into the lower half), either v.
    for (let i = 0; i < 40; i++) {
      const rr = BigInt(toHex(keccak256(utf8(`r${i}`))));
      const ss = BigInt(toHex(keccak256(utf8(`s${i}`)))) % (N / 2n);
      cases.push(signature(rr, ss, 27 + (i % 2)));
    }
    const answers = oracle(cases.map((sig) => ({ op: "recover", digest: good.digest, signature: sig })));
    cases.forEach((sig, i) => {
      assert.deepEqual(
        attempt(() => recoverSigner(fromHex(good.digest), fromHex(sig))),
        answers[i],
        sig
      );
    });
    // About half of all x are on the curve: the garbage must have exercised both outcomes.
    const garbage = answers.slice(-40);
    assert.ok(garbage.filter((a) => a.ok).length >= 10, "some garbage recovers a key");
    assert.ok(
      garbage.filter((a) => a.error?.[1].includes("failed to recover")).length >= 10,
      "some garbage is off the curve"
    );
  }
);

test("signature refusals throw ReceiptError", () => {
  const digest = new Uint8Array(32);
  for (const sig of [
    signature(1n, 1n, 26),
    signature(1n, N - 1n, 27),
    signature(N, 1n, 27),
    signature(0n, 1n, 27),
    "0x00",
  ]) {
    assert.throws(() => recoverSigner(digest, sig), ReceiptError, sig);
  }
});
