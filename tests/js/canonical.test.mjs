// Canonical form: normalizeText / isCanonicalText / canonicalJson against tests/vectors/canonical.json
// and, live, against ledger/canonical.py on the characters where JavaScript and Python differ.
//
// The whitespace fixture (tests/js/fixtures/python-whitespace.json) was made with
//   .venv/bin/python -c "import json; print(json.dumps([c for c in range(0x110000) if chr(c).isspace()]))"
// and is checked against the live interpreter too when the virtualenv is there.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  canonicalJson,
  isCanonicalText,
  NotCanonical,
  normalizeText,
  PYTHON_WHITESPACE,
  REFUSED_RANGES,
  showRefused,
  toHex,
  utf8,
} from "../../api/web/sijill-verify.js";
import { attempt, fixture, NEEDS_PYTHON, oracle, vector } from "./helpers.mjs";

const codepoints = (s) => [...s].map((c) => c.codePointAt(0));

test("canonical.json: every text and JCS vector, byte for byte", () => {
  const v = vector("canonical.json");
  for (const { input, output } of v.text) {
    assert.equal(normalizeText(input), output, JSON.stringify(input));
    assert.equal(isCanonicalText(output), true);
    assert.equal(isCanonicalText(input), input === output);
  }
  for (const { value, jcs } of v.jcs) assert.equal(toHex(canonicalJson(value)), jcs, JSON.stringify(value));
});

const fromLabel = (label) => parseInt(label.slice(2), 16);
const refusedCodePoints = () =>
  new Set(REFUSED_RANGES.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i)));
// A code point as a one-code-point string (a lone surrogate half for U+D800-U+DFFF).
const charOf = (c) => (c >= 0xd800 && c <= 0xdfff ? String.fromCharCode(c) : String.fromCodePoint(c));
// Format, default-ignorable, control, surrogate, private-use and noncharacter code points.
const SPECIAL = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cs}\p{Co}\p{Noncharacter_Code_Point}]/u;

test("characters.json: the refused table is the published one; refused text is never canonical", () => {
  const v = vector("characters.json");
  assert.deepEqual(
    REFUSED_RANGES.map(([a, b]) => [a, b]),
    v.refusedRanges.map((r) => [fromLabel(r.first), fromLabel(r.last)])
  );
  for (const { text, codePoint } of v.refused) {
    assert.equal(normalizeText(text), text, JSON.stringify(text));
    assert.equal(isCanonicalText(text), false, JSON.stringify(text));
    assert.ok(codepoints(text).includes(fromLabel(codePoint)), codePoint);
  }
  for (const text of v.accepted) assert.equal(isCanonicalText(text), true, JSON.stringify(text));
  // The example: a name with RIGHT-TO-LEFT OVERRIDE in it.
  assert.equal(isCanonicalText("محمد\u202eعبد الله"), false);
  assert.equal(isCanonicalText("محمد عبد الله"), true);
});

test("the refused table holds every special code point of this runtime's Unicode but normalised ones", () => {
  const refused = refusedCodePoints();
  const normalised = new Set([...PYTHON_WHITESPACE].map((c) => c.codePointAt(0)));
  for (const c of [0x0640, 0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0xfeff, 0x061c]) normalised.add(c);
  const missing = [];
  for (let c = 0; c < 0x110000; c++) {
    if (SPECIAL.test(charOf(c)) && !normalised.has(c) && !refused.has(c)) missing.push(c.toString(16));
  }
  // A newer Unicode than 17.0 may add some: review them, then add them here and in ledger/canonical.py.
  assert.deepEqual(missing, [], `Unicode ${process.versions.unicode}`);
  for (const c of normalised) assert.equal(refused.has(c), false, c.toString(16));
});

test(
  "isCanonicalText agrees with Python at both ends of every refused range, astral planes included",
  { skip: NEEDS_PYTHON },
  () => {
    const texts = [];
    for (const [first, last] of REFUSED_RANGES) {
      for (const c of [first - 1, first, last, last + 1]) {
        if (c < 0 || c > 0x10ffff) continue;
        texts.push(`a${charOf(c)}b`, `محمد${charOf(c)}`);
      }
    }
    const answers = oracle(texts.map((text) => ({ op: "normalize", text })));
    texts.forEach((text, i) => {
      assert.deepEqual([normalizeText(text), isCanonicalText(text)], answers[i].ok, JSON.stringify(text));
    });
  }
);

test("the whitespace class is Python's str.isspace() set (fixture)", () => {
  assert.deepEqual(codepoints(PYTHON_WHITESPACE), fixture("python-whitespace.json").codepoints);
  // ... and it is not JavaScript's \s, which is why it is spelled out.
  assert.notDeepEqual(
    codepoints(PYTHON_WHITESPACE),
    [...Array(0x10000).keys()].filter((c) => /\s/.test(String.fromCharCode(c)))
  );
});

test("the whitespace class is Python's str.isspace() set (live)", { skip: NEEDS_PYTHON }, () => {
  const [{ ok }] = oracle([{ op: "whitespace" }]);
  assert.deepEqual(codepoints(PYTHON_WHITESPACE), ok);
});

// Every character either side might treat specially: either language's white space, every
// format, separator and control character of the BMP, the removed and mapped Arabic letters and
// digits, and sequences NFC composes or reorders.
function candidates() {
  const chars = new Set();
  for (let c = 0; c < 0x10000; c++) {
    const ch = String.fromCharCode(c);
    if (c >= 0xd800 && c <= 0xdfff) continue;
    if (/\s/.test(ch) || /[\p{Cc}\p{Cf}\p{Z}]/u.test(ch)) chars.add(ch);
  }
  for (const c of [0x0640, 0x06a9, 0x06cc, 0x0643, 0x064a, 0x0649, 0x0629, 0x0647])
    chars.add(String.fromCharCode(c));
  for (let i = 0; i < 10; i++)
    chars.add(String.fromCharCode(0x0660 + i)).add(String.fromCharCode(0x06f0 + i));
  return [...chars];
}

test(
  "normalizeText and isCanonicalText agree with Python on every candidate character",
  { skip: NEEDS_PYTHON },
  () => {
    const texts = [];
    for (const ch of candidates()) {
      texts.push(ch, `a${ch}b`, `${ch}${ch}a${ch} ${ch}b${ch}`, ` ${ch}`, `${ch}\u0301`);
    }
    texts.push(
      "e\u0301",
      "\u0627\u0653", // alef + madda above -> alef with madda (composed by NFC)
      "\u0627\u0654",
      "\u0648\u0654",
      "\u1e0b\u0323", // canonical reordering of combining marks
      "\u1100\u1161\u11a8", // Hangul jamo -> one syllable
      "\u212b", // angstrom sign -> A with ring (a singleton decomposition)
      "\ufb01", // a compatibility ligature: NFC keeps it
      "a\u200d\u0301", // removing ZWJ after NFC leaves a combining mark unattached: not re-normalised
      "\ud83d\ude00 \ud83c\udde9\ud83c\uddea",
      "محمـــد\u00a0\u00a0علي\u3000",
      "",
      "   "
    );
    const answers = oracle(texts.map((text) => ({ op: "normalize", text })));
    texts.forEach((text, i) => {
      assert.deepEqual([normalizeText(text), isCanonicalText(text)], answers[i].ok, JSON.stringify(text));
    });
  }
);

test("normalizeText and canonicalJson agree with Python on random text", { skip: NEEDS_PYTHON }, () => {
  const pool = [
    ...candidates(),
    "a",
    "Z",
    "0",
    "م",
    "ح",
    "د",
    "é",
    "\u0301",
    "\u0654",
    "\ud83d\ude00",
    '"',
    "\\",
    "/",
  ];
  let seed = 20260101;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const texts = Array.from({ length: 1500 }, () =>
    Array.from({ length: 1 + random(12) }, () => pool[random(pool.length)]).join("")
  );
  const answers = oracle(
    texts.flatMap((text) => [
      { op: "normalize", text },
      { op: "canonical", value: text },
    ])
  );
  texts.forEach((text, i) => {
    assert.deepEqual([normalizeText(text), isCanonicalText(text)], answers[2 * i].ok, JSON.stringify(text));
    assert.deepEqual(
      attempt(() => canonicalJson(text)),
      answers[2 * i + 1],
      JSON.stringify(text)
    );
  });
});

test(
  "canonicalJson agrees with Python (rfc8785) on tricky values, refusals included",
  { skip: NEEDS_PYTHON },
  () => {
    const values = [
      ...Array.from({ length: 0x20 }, (_, c) => `<${String.fromCharCode(c)}>`),
      "\u007f",
      "\u0080\u009f",
      "\u2028\u2029",
      "\ufeff",
      '"\\/',
      "\ud83d\ude00\u{10ffff}",
      "\ud800", // lone surrogates: refused by both
      "a\udc00b",
      "\udbff\ud800",
      0,
      -1,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      2 ** 53, // refused: not exact in every JSON implementation
      -(2 ** 53),
      1.5, // floats: refused by both, with the float in Python's notation
      0.1,
      1e-7,
      -2.5e-5,
      123456789.125,
      true,
      false,
      null,
      [],
      {},
      [1, "a", null, [true, {}]],
      // RFC 8785 sorts keys by UTF-16 units: U+1F600 (D83D DE00) before U+FFFF, unlike code point order
      { b: 1, a: [true, null, {}], é: "x", "\ud83d\ude00": 1, "\uffff": 2, "": 0, A: { z: 1, y: [] } },
      { key: "\u0000" },
      [1.5],
      { nested: { deeper: 2 ** 53 + 2 } }, // exact as a double, so JSON.stringify writes its digits
    ];
    const answers = oracle(values.map((value) => ({ op: "canonical", value })));
    values.forEach((value, i) => {
      assert.deepEqual(
        attempt(() => canonicalJson(value)),
        answers[i],
        JSON.stringify(value)
      );
    });
  }
);

test("canonicalJson refuses what is not canonical JSON", () => {
  for (const value of [
    1.5,
    NaN,
    Infinity,
    2 ** 53,
    2n ** 64n,
    "\ud800",
    undefined,
    () => 1,
    new Uint8Array(1),
    { a: 0.5 },
  ]) {
    assert.throws(() => canonicalJson(value), NotCanonical, String(value));
  }
  assert.equal(toHex(canonicalJson(9007199254740991n)), toHex(utf8("9007199254740991")));
  assert.equal(toHex(canonicalJson(-0)), "0x30");
  // An integral Number beyond 2^53 is an integer to JavaScript (JSON.stringify would write 1e+21,
  // which Python reads as a float, so this one is not asked of the oracle).
  assert.throws(() => canonicalJson(1e21), /integer 1000000000000000000000 is outside the exact JSON range/);
  assert.throws(() => utf8("\udfff"), NotCanonical);
});

test("showRefused writes out every refused character as Python's show_refused does", { skip: NEEDS_PYTHON }, () => {
  // An agency name from the chain holding the first or the last code point of each range, and one
  // holding none (which comes back unchanged).
  const texts = [
    "وزارة العدل / Ministry of Justice",
    ...REFUSED_RANGES.flatMap(([a, b]) => [a, b].map((c) => `Ministry ${charOf(c)}of Justice`)),
  ];
  const answers = oracle(texts.map((text) => ({ op: "show_refused", text })));
  texts.forEach((text, i) => {
    const shown = showRefused(text);
    assert.equal(shown, answers[i].ok, JSON.stringify(text));
    assert.equal(isCanonicalText(shown), true, JSON.stringify(shown));
  });
  assert.equal(showRefused(texts[0]), texts[0]);
  assert.equal(showRefused("\u202eecitsuj"), "⟨U+202E⟩ecitsuj");
});
