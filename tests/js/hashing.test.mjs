// keccak-256, field hashes, record digests, leaves and Merkle proofs: tests/vectors/fields.json and
// merkle.json byte for byte, plus the limits and refusals of ledger/fields.py asked of Python live.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  FieldError,
  fieldHash,
  fromHex,
  hashPair,
  InvalidCode,
  keccak256,
  leafOf,
  MAX_FIELDS,
  merkleRoot,
  recordDigest,
  toHex,
  utf8,
  verifyProof,
} from "../../api/web/sijill-verify.js";
import { attempt, NEEDS_PYTHON, oracle, vector } from "./helpers.mjs";

test("keccak256: known answers, every length around the 136-byte rate", { skip: NEEDS_PYTHON }, () => {
  assert.equal(
    toHex(keccak256(new Uint8Array())),
    "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
  );
  assert.equal(
    toHex(keccak256(utf8("abc"))),
    "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
  );
  // Preimages of every length from 37 to 636 bytes (field hashes of a growing string value),
  // across four multiples of the rate, checked against Python's keccak through its field hash.
  const lengths = Array.from({ length: 600 }, (_, n) => n);
  const salt = new Uint8Array(16);
  const answers = oracle(
    lengths.map((n) => ({ op: "field", path: "/x", salt: toHex(salt), value: "y".repeat(n) }))
  );
  lengths.forEach((n, i) =>
    assert.deepEqual(
      attempt(() => fieldHash("/x", salt, "y".repeat(n))),
      answers[i],
      `n=${n}`
    )
  );
});

test("fields.json: every field's JCS and hash, every record's digest and leaf", () => {
  for (const r of vector("fields.json").records) {
    const hashes = new Map();
    for (const f of r.fields) {
      const hash = fieldHash(f.path, fromHex(f.salt, 16), f.value);
      assert.equal(toHex(hash), f.hash, f.path);
      hashes.set(f.path, hash);
    }
    const key = { agency: r.agency, recordType: r.recordType, recordId: r.recordId, version: r.version };
    const digest = recordDigest(key, hashes);
    assert.equal(toHex(digest), r.digest);
    assert.equal(toHex(leafOf(digest)), r.leaf);
    // The order the hashes come in does not matter, and a plain object works as well as a Map.
    const reversed = Object.fromEntries([...hashes].reverse().map(([p, h]) => [p, h]));
    assert.equal(toHex(recordDigest(key, reversed)), r.digest);
  }
});

test("merkle.json: every proof verifies, every root rebuilds, a changed proof fails", () => {
  for (const tree of vector("merkle.json").trees) {
    const root = fromHex(tree.root, 32);
    assert.equal(toHex(merkleRoot(tree.leaves.map((l) => fromHex(l, 32)))), tree.root);
    for (const { leaf, proof } of tree.proofs) {
      const siblings = proof.map((p) => fromHex(p, 32));
      assert.equal(verifyProof(fromHex(leaf, 32), siblings, root), true);
      if (siblings.length) {
        siblings[0] = keccak256(siblings[0]);
        assert.equal(verifyProof(fromHex(leaf, 32), siblings, root), false);
      }
    }
  }
  const [a, b] = [keccak256(utf8("a")), keccak256(utf8("b"))];
  assert.deepEqual(hashPair(a, b), hashPair(b, a));
});

test("field and digest refusals: the same errors as ledger/fields.py", { skip: NEEDS_PYTHON }, () => {
  const salt = toHex(new Uint8Array(16).fill(1));
  const hash = toHex(new Uint8Array(32).fill(2));
  const key = { agency: "REPD", recordType: "title", recordId: "T-1", version: 1 };
  const fields = [
    { path: "/a", salt: toHex(new Uint8Array(15)), value: "x" },
    { path: "a", salt, value: "x" },
    { path: "", salt, value: "x" },
    { path: "/" + "p".repeat(255), salt, value: 1 },
    { path: "/" + "p".repeat(256), salt, value: 1 },
    { path: "/" + "م".repeat(128), salt, value: 1 },
    { path: "/big", salt, value: "v".repeat(8190) }, // 8,192 bytes with the quotes: allowed
    { path: "/big", salt, value: "v".repeat(8191) },
    { path: "/f", salt, value: 1.25 },
    { path: "/n", salt, value: 2 ** 53 },
    { path: "/s", salt, value: "\ud800" },
    { path: "/e", salt, value: [] },
    { path: "/o", salt, value: {} },
  ];
  const digests = [
    { ...key, hashes: { "/a": hash } },
    { ...key, version: 0, hashes: { "/a": hash } },
    { ...key, version: 2 ** 32, hashes: { "/a": hash } },
    { ...key, version: 2 ** 32 - 1, hashes: { "/a": hash } },
    { ...key, agency: "repd", hashes: { "/a": hash } },
    { ...key, agency: "R", hashes: { "/a": hash } },
    { ...key, recordType: "Title", hashes: { "/a": hash } },
    { ...key, recordId: "-x", hashes: { "/a": hash } },
    { ...key, recordId: "x".repeat(32), hashes: { "/a": hash } },
    { ...key, hashes: {} },
    { ...key, hashes: Object.fromEntries(Array.from({ length: MAX_FIELDS }, (_, i) => [`/f${i}`, hash])) },
    {
      ...key,
      hashes: Object.fromEntries(Array.from({ length: MAX_FIELDS + 1 }, (_, i) => [`/f${i}`, hash])),
    },
    {
      ...key,
      hashes: {
        "/b": hash,
        "/a": hash,
        "/a/b": hash,
        "/\u00e9": hash,
        "/\ud83d\ude00": hash,
        "/\uffff": hash,
      },
    },
    { ...key, hashes: { nope: hash } },
  ];
  const answers = oracle([
    ...fields.map((f) => ({ op: "field", ...f })),
    ...digests.map((d) => ({ op: "digest", ...d })),
  ]);
  fields.forEach((f, i) => {
    assert.deepEqual(
      attempt(() => fieldHash(f.path, fromHex(f.salt), f.value)),
      answers[i],
      f.path.slice(0, 20)
    );
  });
  digests.forEach((d, i) => {
    const hashes = Object.fromEntries(Object.entries(d.hashes).map(([p, h]) => [p, fromHex(h)]));
    assert.deepEqual(
      attempt(() => recordDigest(d, hashes)),
      answers[fields.length + i],
      JSON.stringify(d).slice(0, 80)
    );
  });
});

test("error classes", () => {
  assert.throws(() => fieldHash("/a", new Uint8Array(1), 1), FieldError);
  assert.throws(
    () =>
      recordDigest({ agency: "x", recordType: "t", recordId: "1", version: 1 }, { "/a": new Uint8Array(32) }),
    InvalidCode
  );
});
