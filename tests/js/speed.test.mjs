// How fast the verifier is, printed rather than asserted tightly (machines differ; a phone is a
// few times slower than a CI runner): keccak throughput, hashing a 2,000-field record, secp256k1
// recovery, verifying the biggest vector bundle and a bundle at the format's limits.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  fieldHash,
  keccak256,
  leafOf,
  MAX_FIELDS,
  MemoryChain,
  recordDigest,
  recoverSigner,
  receiptDigest,
  toHex,
  utf8,
  verify,
} from "../../api/web/sijill-verify.js";
import { vector } from "./helpers.mjs";

function timed(fn, runs = 1) {
  fn(); // warm up: the first call includes compiling
  const start = performance.now();
  for (let i = 0; i < runs; i++) fn();
  return (performance.now() - start) / runs;
}

async function timedAsync(fn, runs = 1) {
  await fn();
  const start = performance.now();
  for (let i = 0; i < runs; i++) await fn();
  return (performance.now() - start) / runs;
}

test("speed", async (t) => {
  const megabyte = new Uint8Array(1 << 20).fill(0x5a);
  const keccakMs = timed(() => keccak256(megabyte), 5);
  t.diagnostic(`keccak256: ${(1000 / keccakMs).toFixed(1)} MB/s (${keccakMs.toFixed(1)} ms per MiB)`);

  const salt = new Uint8Array(16).fill(7);
  const paths = Array.from(
    { length: 2000 },
    (_, i) => `/owners/${i >> 2}/${["name", "national_id", "share", "note"][i & 3]}`
  );
  const fieldsMs = timed(() => paths.map((p, i) => fieldHash(p, salt, i & 1 ? `قيمة رقم ${i}` : i)), 3);
  t.diagnostic(`2,000 field hashes: ${fieldsMs.toFixed(1)} ms`);

  const receipts = vector("receipts.json").receipts;
  const digest = receiptDigest(receipts[0].message, receipts[0].domain);
  const recoverMs = timed(() => recoverSigner(digest, receipts[0].signature), 20);
  t.diagnostic(`secp256k1 recovery: ${recoverMs.toFixed(1)} ms`);

  const bundles = vector("bundles.json");
  const chain = MemoryChain.fromJson(bundles.chain);
  const biggest = bundles.cases.reduce((a, b) =>
    JSON.stringify(b.bundle).length > JSON.stringify(a.bundle).length ? b : a
  );
  const biggestText = JSON.stringify(biggest.bundle);
  const verifyMs = await timedAsync(() => verify(biggestText, chain, { now: biggest.now }), 20);
  t.diagnostic(
    `verify the biggest vector bundle (${biggestText.length} bytes, "${biggest.name}"): ${verifyMs.toFixed(
      1
    )} ms`
  );

  // A bundle at the limits: 1,024 disclosed fields, long paths, a few values of 8 KB, just under
  // 256 KiB in all, a 32-step proof (the receipt is not valid: all the work is still done).
  const limitFields = Array.from({ length: MAX_FIELDS }, (_, i) => ({
    path: `/f${String(i).padStart(4, "0")}/${"p".repeat(90)}`,
    salt,
    value: i % 128 === 0 ? "ق".repeat(4000) : `value ${i}`,
  }));
  const hashes = new Map(limitFields.map((f) => [f.path, fieldHash(f.path, f.salt, f.value)]));
  const key = { agency: "REPD", recordType: "title", recordId: "LIMITS", version: 1 };
  const leaf = leafOf(recordDigest(key, hashes));
  const limitDoc = {
    format: "sijill-bundle/1",
    chainId: bundles.chain.chainId,
    ledger: bundles.chain.ledger,
    registry: bundles.chain.registry,
    ...key,
    leaf: toHex(leaf),
    disclosed: limitFields.map((f) => ({ path: f.path, salt: toHex(f.salt), value: f.value })),
    hidden: [],
    anchor: {
      root: toHex(keccak256(leaf)),
      proof: Array.from({ length: 32 }, (_, i) => toHex(keccak256(utf8(String(i))))),
    },
    receipt: {
      intakeTime: 1,
      anchorBy: 2,
      signer: "0x" + "11".repeat(20),
      signature: "0x" + "22".repeat(64) + "1b",
    },
  };
  const limitText = JSON.stringify(limitDoc);
  assert.ok(limitText.length > 200 * 1024 && limitText.length < 256 * 1024, `${limitText.length} characters`);
  let report;
  const limitMs = await timedAsync(async () => {
    report = await verify(limitText, chain, { now: 3 });
  });
  assert.equal(report.checks[0].outcome, "pass", report.checks[0].reason.en);
  t.diagnostic(
    `verify a bundle at the limits (${MAX_FIELDS} fields, ${(limitText.length / 1024).toFixed(
      0
    )} KiB): ${limitMs.toFixed(1)} ms`
  );

  // Loose bounds only: an order of magnitude above what a slow CI machine takes.
  assert.ok(keccakMs < 2000 && fieldsMs < 2000 && recoverMs < 500 && verifyMs < 1000 && limitMs < 5000);
});
