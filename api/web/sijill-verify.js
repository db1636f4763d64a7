// Sijill browser verifier: checks a proof bundle (docs/proof-bundle.md) against the chain, alone.
//
// A citizen's phone must not take any node's word for a record, so this module recomputes
// everything itself (field hashes, the leaf, the Merkle path, the EIP-712 receipt and its signer)
// and asks a read-only JSON-RPC endpoint only what the chain alone can say. It is a port of the
// Python reference (ledger/canonical.py, codes.py, fields.py, merkle.py, receipts.py, bundle.py,
// chainview.py, verify.py) and must agree with it byte for byte: the test vectors in
// tests/vectors/ and tests/js/ hold it to that, and tests/python/test_js_verifier.py compares
// whole reports against the Python verifier on a real chain.
//
// One ES module, no Node APIs, no crypto.subtle (pages are served over plain http on a LAN, where
// browsers withhold it). Its cryptography is not its own: keccak-256 comes from @noble/hashes and
// secp256k1 public-key recovery from @noble/curves, audited ES modules that many have reviewed,
// with no dependencies beyond each other, at the versions package-lock.json pins, copied into
// ./vendor/ by scripts/vendor-web.mjs and served by the node beside this file. Byte strings are
// Uint8Array; addresses are "0x" + lower-case hex strings, as in Python.
// Integers a JSON document may hold beyond 2^53 (chain id, receipt times) are BigInt when read
// from JSON text, so nothing is silently rounded; every other integer is a Number.

import { secp256k1 } from "./vendor/@noble/curves/secp256k1.js";
import { keccak_256 } from "./vendor/@noble/hashes/sha3.js";

// ------------------------------------------------------------------------------------ errors

/** Base of every refusal; the message names what is wrong (like Python's LedgerError). */
export class LedgerError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}
/** A value that has no canonical form (a float, an integer beyond 2^53, a lone surrogate). */
export class NotCanonical extends LedgerError {}
/** An agency code, record type or record id that cannot be a short on-chain code. */
export class InvalidCode extends LedgerError {}
/** A path, salt, value or key that cannot be hashed as a field. */
export class FieldError extends LedgerError {}
/** A Merkle tree that cannot be built. */
export class MerkleError extends LedgerError {}
/** A receipt or signature that is malformed or recovers no key. */
export class ReceiptError extends LedgerError {}
/** A document that is not a valid proof bundle; the message names where. */
export class BundleError extends LedgerError {}
/** The chain could not be asked (unreachable, timed out, an error, or an answer that makes no sense). */
export class ChainUnavailable extends LedgerError {}
/**
 * No RecordLedger at the ledger address a bundle names: no contract there at all (an empty address,
 * or an account's), or a contract without a RecordLedger's registry(). The chain answered; it has
 * nothing to check the bundle against, so the chain's checks are unknown with `reason` (English and
 * Arabic, as ledger/chainview.py NoDeployment words them).
 */
export class NoDeployment extends ChainUnavailable {
  constructor(chainId, ledger, contract) {
    const [en, ar] = contract
      ? [
          `The contract at ${ledger} (chain ID ${chainId}) is not a RecordLedger, ` +
            "so whether this record was anchored cannot be checked",
          `العقد على العنوان ${ledger} ليس دفتر القيود المشترك (RecordLedger)، ` +
            "فلا يمكن التحقق من تثبيت هذا القيد",
        ]
      : [
          `There is no contract at ledger ${ledger} (chain ID ${chainId}), ` +
            "so whether this record was anchored cannot be checked",
          `لا يوجد عقد على العنوان ${ledger}، فلا يمكن التحقق من تثبيت هذا القيد`,
        ];
    super(en);
    this.chainId = chainId;
    this.ledger = ledger;
    this.contract = contract; // code is there, but not a RecordLedger's
    this.reason = { en, ar };
  }
}
/** The node answered one call with a JSON-RPC error (a revert, an unknown method): it was reached. */
class CallFailed extends ChainUnavailable {}

// ------------------------------------------------------------------------------ keccak-256

/** keccak-256 (Ethereum's: Keccak's padding 0x01, not NIST SHA3's 0x06) of a byte string: 32 bytes. */
export function keccak256(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("keccak256 takes a Uint8Array");
  return keccak_256(bytes);
}

// ----------------------------------------------------------------------------- byte helpers

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const encoder = new TextEncoder();

/** "0x" + lower-case hex of a byte string. */
export function toHex(bytes) {
  let out = "0x";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

/** The bytes of "0x"-prefixed hex (either case), exactly `size` bytes if given; throws otherwise. */
export function fromHex(text, size) {
  if (typeof text !== "string" || !/^0x(?:[0-9a-fA-F]{2})*$/.test(text)) {
    throw new LedgerError(`expected 0x and an even number of hex digits, got ${describe(text)}`);
  }
  const out = new Uint8Array((text.length - 2) / 2);
  if (size !== undefined && out.length !== size) {
    throw new LedgerError(`expected ${size} bytes of hex, got ${out.length}`);
  }
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 + 2 * i, 4 + 2 * i), 16);
  return out;
}

// A lone surrogate is the one thing a JS string holds that has no UTF-8 form. With the u flag a
// surrogate pair is one code point, so this class matches only unpaired halves.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** The UTF-8 bytes of text; refuses text with a lone surrogate (TextEncoder would silently write U+FFFD). */
export function utf8(text) {
  if (LONE_SURROGATE.test(text)) throw new NotCanonical("text with a lone surrogate is not valid Unicode");
  return encoder.encode(text);
}

function concatBytes(parts) {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function equalBytes(a, b) {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** Big-endian bytes of a non-negative integer (Number or BigInt), `size` bytes wide. */
function uintBytes(value, size) {
  let v = BigInt(value);
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0 && v > 0n; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function bytesToBigInt(bytes) {
  return bytes.length === 0 ? 0n : BigInt(toHex(bytes));
}

/** A Number when the integer is exact as one, else the BigInt (how this module carries integers). */
function exact(value) {
  return value >= -MAX_EXACT_BIG && value <= MAX_EXACT_BIG ? Number(value) : value;
}

function sameInt(a, b) {
  return isInteger(a) && isInteger(b) && BigInt(a) === BigInt(b);
}

function isInteger(value) {
  return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
}

// Object.hasOwn is younger than the Safari some phones still run.
const hasOwn = Object.prototype.hasOwnProperty;

function isPlainObject(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Compare strings by code point, as Python sorts str (JS sorts by UTF-16 unit). */
function compareCodePoints(a, b) {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const d = x.value.codePointAt(0) - y.value.codePointAt(0);
    if (d !== 0) return d;
  }
}

// ------------------------------------------------------------ Python's repr, for messages
//
// The reference's error messages quote values with Python's repr (`{value!r}`), and the reports
// carry those messages; these few lines make the same text.

const NOT_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

function pyStrRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (cp < 0x20 || cp === 0x7f) out += "\\x" + HEX[cp];
    else if (cp < 0x7f || !NOT_PRINTABLE.test(ch)) out += ch;
    else if (cp <= 0xff) out += "\\x" + HEX[cp];
    else if (cp <= 0xffff) out += "\\u" + cp.toString(16).padStart(4, "0");
    else out += "\\U" + cp.toString(16).padStart(8, "0");
  }
  return out + quote;
}

/** Python's repr of a float: shortest round-trip digits, exponent below 1e-4 and from 1e16. */
function pyFloatRepr(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const [mantissa, exp] = x.toExponential().split("e");
  const e = Number(exp);
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace("-", "").replace(".", "");
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
  const whole = digits.slice(0, e + 1).padEnd(e + 1, "0");
  return `${sign}${whole}.${digits.slice(e + 1) || "0"}`;
}

function pyRepr(value) {
  if (typeof value === "string") return pyStrRepr(value);
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    return Number.isInteger(value) ? BigInt(value).toString() : pyFloatRepr(value);
  }
  if (Array.isArray(value)) return "[" + value.map(pyRepr).join(", ") + "]";
  if (isPlainObject(value)) {
    return (
      "{" +
      Object.keys(value)
        .map((k) => `${pyStrRepr(k)}: ${pyRepr(value[k])}`)
        .join(", ") +
      "}"
    );
  }
  return String(value);
}

function pyTypeName(value) {
  if (typeof value === "string") return "str";
  if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) return "int";
  if (typeof value === "number") return "float";
  if (typeof value === "boolean") return "bool";
  if (value === null || value === undefined) return "NoneType";
  if (Array.isArray(value)) return "list";
  if (isPlainObject(value)) return "dict";
  if (value instanceof Uint8Array) return "bytes";
  return value?.constructor?.name ?? typeof value;
}

function describe(value) {
  return typeof value === "string"
    ? pyStrRepr(value.length > 80 ? value.slice(0, 80) + "…" : value)
    : pyTypeName(value);
}

// -------------------------------------------------------------------------- canonical form

// Python's str.isspace() set, which is also what `re`'s \s and str.strip() use: JavaScript's \s
// differs (it lacks U+001C-U+001F and U+0085, and has U+FEFF), so the class is spelled out.
// tests/js/canonical.test.mjs asks Python for the set and compares.
export const PYTHON_WHITESPACE =
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" +
  "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
const WHITESPACE_RUN = new RegExp(
  `[${[...PYTHON_WHITESPACE].map((c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")).join("")}]+`,
  "g"
);

// Removed: tatweel, ZWSP/ZWNJ/ZWJ, LRM/RLM, BOM, ALM. Mapped: keheh -> kaf, Farsi yeh -> yeh,
// Arabic-Indic and extended Arabic-Indic digits -> ASCII (ledger/canonical.py says why).
const TRANSLATED = /[\u0640\u200b-\u200f\ufeff\u061c\u06a9\u06cc\u0660-\u0669\u06f0-\u06f9]/g;

function translate(ch) {
  const cp = ch.charCodeAt(0);
  if (cp === 0x06a9) return "\u0643";
  if (cp === 0x06cc) return "\u064a";
  if (cp >= 0x0660 && cp <= 0x0669) return String(cp - 0x0660);
  if (cp >= 0x06f0 && cp <= 0x06f9) return String(cp - 0x06f0);
  return "";
}

/** The canonical form of text: invisible marks removed, Persian letters and digits mapped, NFC, spaces collapsed
 * (ledger/canonical.py normalize_text). */
export function normalizeText(text) {
  if (typeof text !== "string") throw new TypeError("normalizeText takes a string");
  // NFC after the removals and mappings, as in Python: they can leave a letter beside a mark it composes with.
  const collapsed = text.replace(TRANSLATED, translate).normalize("NFC").replace(WHITESPACE_RUN, " ");
  // After the collapse the only white space left is single spaces, so trimming them is Python's strip().
  const start = collapsed.startsWith(" ") ? 1 : 0;
  const end = collapsed.length > start && collapsed.endsWith(" ") ? collapsed.length - 1 : collapsed.length;
  return collapsed.slice(start, end);
}

// The code points canonical text may not hold, [first, last] (ledger/canonical.py REFUSED_RANGES,
// which says why): controls that are not white space, bidirectional embeddings, overrides and
// isolates, every other format and default-ignorable code point of Unicode 17.0, surrogates,
// private use and noncharacters. Written out, not \p{Cf}, so that every browser refuses the same
// code points whatever its Unicode version; tests/js/canonical.test.mjs compares it with Python's.
export const REFUSED_RANGES = Object.freeze(
  [
    [0x0000, 0x0008],
    [0x000e, 0x001b],
    [0x007f, 0x0084],
    [0x0086, 0x009f],
    [0x00ad, 0x00ad],
    [0x034f, 0x034f],
    [0x0600, 0x0605],
    [0x06dd, 0x06dd],
    [0x070f, 0x070f],
    [0x0890, 0x0891],
    [0x08e2, 0x08e2],
    [0x115f, 0x1160],
    [0x17b4, 0x17b5],
    [0x180b, 0x180f],
    [0x202a, 0x202e],
    [0x2060, 0x2065],
    [0x2066, 0x2069],
    [0x206a, 0x206f],
    [0x3164, 0x3164],
    [0xd800, 0xdfff],
    [0xe000, 0xf8ff],
    [0xfdd0, 0xfdef],
    [0xfe00, 0xfe0f],
    [0xffa0, 0xffa0],
    [0xfff0, 0xfff8],
    [0xfff9, 0xfffb],
    [0x110bd, 0x110bd],
    [0x110cd, 0x110cd],
    [0x13430, 0x1343f],
    [0x1bca0, 0x1bca3],
    [0x1d173, 0x1d17a],
    [0xe0000, 0xe0fff],
    [0xf0000, 0xffffd],
    [0x100000, 0x10fffd],
    // The last two code points of every plane.
    ...Array.from({ length: 17 }, (_, plane) => [plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff]),
  ]
    .sort((a, b) => a[0] - b[0])
    .map((range) => Object.freeze(range))
);
// With the u flag a surrogate pair is one code point, so [\u{d800}-\u{dfff}] matches lone halves only.
const REFUSED = new RegExp(
  `[${REFUSED_RANGES.map(([a, b]) => `\\u{${a.toString(16)}}-\\u{${b.toString(16)}}`).join("")}]`,
  "u"
);

const REFUSED_EVERYWHERE = new RegExp(REFUSED.source, "gu");

/** Text with every character of REFUSED_RANGES written out as ⟨U+202E⟩, for showing text that may
 * not be canonical (an agency's name read from the chain, which other software may have set): a
 * direction override or an invisible character then shows as what it is and no longer acts.
 * Canonical text comes back unchanged (ledger/canonical.py show_refused). */
export function showRefused(text) {
  if (typeof text !== "string") throw new TypeError("showRefused takes a string");
  return text.replace(
    REFUSED_EVERYWHERE,
    (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`
  );
}

/** Whether text is already canonical: normalised, and none of REFUSED_RANGES. A verifier refuses
 * anything else, never normalises. */
export function isCanonicalText(text) {
  return normalizeText(text) === text && !REFUSED.test(text);
}

const MAX_EXACT = 2 ** 53 - 1;
const MAX_EXACT_BIG = BigInt(MAX_EXACT);
const JSON_ESCAPES = {
  '"': '\\"',
  "\\": "\\\\",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

function jsonString(text) {
  if (LONE_SURROGATE.test(text)) throw new NotCanonical("text with a lone surrogate is not valid Unicode");
  // What RFC 8785 and Python's json.dumps(ensure_ascii=False) escape: quote, backslash and C0
  // controls (short forms where JSON has them, else lower-case \u00xx). Nothing else, not even DEL or U+2028.
  return (
    '"' +
    text.replace(
      /["\\\u0000-\u001f]/g,
      (ch) => JSON_ESCAPES[ch] ?? "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0")
    ) +
    '"'
  );
}

function checkJson(value) {
  if (typeof value === "string" || typeof value === "boolean" || value === null) return;
  if (isInteger(value)) {
    const big = BigInt(value);
    if (big > MAX_EXACT_BIG || big < -MAX_EXACT_BIG) {
      throw new NotCanonical(`integer ${big} is outside the exact JSON range (±2^53-1); use a string`);
    }
    return;
  }
  if (typeof value === "number") {
    throw new NotCanonical(`floating-point value ${pyFloatRepr(value)}: records use decimal strings instead`);
  }
  if (Array.isArray(value)) {
    for (const item of value) checkJson(item);
    return;
  }
  if (isPlainObject(value)) {
    for (const key of Object.keys(value)) checkJson(value[key]);
    return;
  }
  throw new NotCanonical(`${pyTypeName(value)} is not a JSON value`);
}

function jcsText(value) {
  if (typeof value === "string") return jsonString(value);
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") return String(value === 0 ? 0 : value); // -0 is the integer 0
  if (Array.isArray(value)) return "[" + value.map(jcsText).join(",") + "]";
  // RFC 8785 sorts keys by UTF-16 code units: exactly what Array.prototype.sort does with no comparator.
  const keys = Object.keys(value).sort();
  return "{" + keys.map((k) => jsonString(k) + ":" + jcsText(value[k])).join(",") + "}";
}

/** RFC 8785 bytes of a JSON value (strings, safe integers, booleans, null, arrays, objects), as
 * ledger/canonical.py canonical_json makes them; NotCanonical for anything else. */
export function canonicalJson(value) {
  checkJson(value);
  return encoder.encode(jcsText(value));
}

// ----------------------------------------------------------------------------- short codes

const AGENCY_CODE_PATTERN = /^[A-Z][A-Z0-9_-]{1,30}$/;
const RECORD_TYPE_PATTERN = /^[a-z][a-z0-9_-]{0,30}$/;
const RECORD_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$/;

function codeWord(text, pattern, what, rule) {
  if (typeof text !== "string") throw new InvalidCode(`${what} must be text, got ${pyTypeName(text)}`);
  if (!pattern.test(text)) {
    throw new InvalidCode(`${what} ${pyRepr(text)} is invalid: it must be ${rule}, at most 31 characters`);
  }
  const word = new Uint8Array(32); // ASCII, left-aligned, zero-padded: ethers' encodeBytes32String
  for (let i = 0; i < text.length; i++) word[i] = text.charCodeAt(i);
  return word;
}

/** The bytes32 of an agency code (REPD). */
export function agencyCode(code) {
  return codeWord(code, AGENCY_CODE_PATTERN, "agency code", "an upper-case letter then A-Z, 0-9, _ or -");
}

/** The bytes32 of a record type (title). */
export function recordTypeCode(name) {
  return codeWord(name, RECORD_TYPE_PATTERN, "record type", "a lower-case letter then a-z, 0-9, _ or -");
}

/** The bytes32 of a record id. */
export function recordIdCode(text) {
  return codeWord(text, RECORD_ID_PATTERN, "record id", "a letter or digit then A-Z, a-z, 0-9, _ or -");
}

/** The text of a bytes32 code (agency or record type); InvalidCode if it is not one. */
export function decodeCode(word) {
  if (word.length !== 32) throw new InvalidCode(`a code is 32 bytes, got ${word.length}`);
  let end = 32;
  while (end > 0 && word[end - 1] === 0) end--;
  const text = word.subarray(0, end);
  if (end === 0 || text.includes(0)) throw new InvalidCode(`${toHex(word)} is not a zero-padded code`);
  if (text.some((b) => b >= 0x80)) throw new InvalidCode(`${toHex(word)} is not ASCII`);
  const decoded = String.fromCharCode(...text);
  if (!AGENCY_CODE_PATTERN.test(decoded) && !RECORD_TYPE_PATTERN.test(decoded)) {
    throw new InvalidCode(`${pyRepr(decoded)} is neither an agency code nor a record type`);
  }
  return decoded;
}

// ----------------------------------------------------------------------- fields and leaves

const FIELD_TAG = encoder.encode("sijill/field/v1");
const RECORD_TAG = encoder.encode("sijill/record/v1");
export const SALT_BYTES = 16;
export const MAX_FIELDS = 1024;
export const MAX_PATH_BYTES = 256;
export const MAX_VALUE_BYTES = 8192;
export const MAX_VERSION = 2 ** 32 - 1;

// Records of one type share their paths, so `len(path)[2] ‖ path` is kept (bounded, like Python's cache).
const pathCache = new Map();

function pathBytes(path) {
  let cached = pathCache.get(path);
  if (cached === undefined) {
    if (typeof path !== "string" || !path.startsWith("/") || LONE_SURROGATE.test(path)) {
      const why = LONE_SURROGATE.test(path ?? "") ? "be valid Unicode" : "start with '/'";
      throw new FieldError(`field path ${pyRepr(path)} must ${why} and be at most ${MAX_PATH_BYTES} bytes`);
    }
    const encoded = encoder.encode(path);
    if (encoded.length > MAX_PATH_BYTES) {
      throw new FieldError(
        `field path ${pyRepr(path)} must start with '/' and be at most ${MAX_PATH_BYTES} bytes`
      );
    }
    cached = concatBytes([uintBytes(encoded.length, 2), encoded]);
    if (pathCache.size < 65536) pathCache.set(path, cached);
  }
  return cached;
}

/** keccak256("sijill/field/v1" ‖ salt[16] ‖ uint16(len(path)) ‖ path ‖ jcs(value)). */
export function fieldHash(path, salt, value) {
  if (!(salt instanceof Uint8Array) || salt.length !== SALT_BYTES) {
    throw new FieldError(`the salt of ${path} must be ${SALT_BYTES} bytes, got ${salt?.length}`);
  }
  const prefix = pathBytes(path);
  const encoded = canonicalJson(value);
  if (encoded.length > MAX_VALUE_BYTES) {
    throw new FieldError(`the value of ${path} is over ${MAX_VALUE_BYTES} bytes`);
  }
  return keccak256(concatBytes([FIELD_TAG, salt, prefix, encoded]));
}

/**
 * The record digest from every field's hash (disclosed or hidden), fields in the order of their
 * paths' UTF-8 bytes. `key` is {agency, recordType, recordId, version}; `hashesByPath` a Map or
 * an object of path -> 32-byte hash.
 */
export function recordDigest(key, hashesByPath) {
  const version = key.version;
  if (!isInteger(version) || version < 1 || version > MAX_VERSION) {
    throw new FieldError(`version must be 1 to ${MAX_VERSION}, got ${version}`);
  }
  const words = [agencyCode(key.agency), recordTypeCode(key.recordType), recordIdCode(key.recordId)];
  const entries = hashesByPath instanceof Map ? [...hashesByPath] : Object.entries(hashesByPath);
  const count = entries.length;
  if (count < 1 || count > MAX_FIELDS) {
    throw new FieldError(`a record has 1 to ${MAX_FIELDS} fields, got ${count}`);
  }
  // Sort by the path bytes themselves (after the 2-byte length prefix), not by JS string order.
  const prefixed = entries.map(([path, hash]) => [pathBytes(path), hash]);
  prefixed.sort((a, b) => compareBytes(a[0].subarray(2), b[0].subarray(2)));
  const parts = [RECORD_TAG, ...words, uintBytes(version, 4), uintBytes(count, 4)];
  for (const [prefix, hash] of prefixed) parts.push(prefix, hash);
  return keccak256(concatBytes(parts));
}

/** The batch leaf of a record digest: hashing again makes a leaf's preimage 32 bytes, an inner node's 64. */
export function leafOf(digest) {
  return keccak256(digest);
}

/** A Merkle parent: keccak256 of the smaller then the larger (OpenZeppelin's sorted pairs). */
export function hashPair(a, b) {
  return compareBytes(a, b) <= 0 ? keccak256(concatBytes([a, b])) : keccak256(concatBytes([b, a]));
}

/** Whether the siblings in `proof` lead from `leaf` to `root` (MerkleProof.verify). */
export function verifyProof(leaf, proof, root) {
  let node = leaf;
  for (const sibling of proof) node = hashPair(node, sibling);
  return equalBytes(node, root);
}

/** The root of a batch tree: leaves sorted, neighbours paired level by level, an odd last node moved up. */
export function merkleRoot(leaves) {
  if (leaves.length < 1) throw new MerkleError("a batch has at least one leaf");
  let level = [...leaves].sort(compareBytes);
  for (let i = 0; i < level.length; i++) {
    if (level[i].length !== 32) throw new MerkleError(`leaf ${i} must be 32 bytes`);
    if (i > 0 && equalBytes(level[i - 1], level[i])) {
      throw new MerkleError(`leaf ${toHex(level[i])} appears twice in the batch`);
    }
  }
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(hashPair(level[i], level[i + 1]));
    if (level.length % 2) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

// -------------------------------------------------------------------- EIP-712 receipts

const DOMAIN_NAME = "Sijill RecordLedger";
const DOMAIN_VERSION = "1";
const DOMAIN_TYPEHASH = keccak256(
  encoder.encode("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
);
const RECEIPT_TYPEHASH = keccak256(
  encoder.encode(
    "Receipt(bytes32 agency,bytes32 recordType,bytes32 recordId,uint32 version,bytes32 leaf," +
      "uint64 intakeTime,uint64 anchorBy)"
  )
);
const NAME_HASH = keccak256(encoder.encode(DOMAIN_NAME));
const VERSION_HASH = keccak256(encoder.encode(DOMAIN_VERSION));
const UINT64_MAX = 2n ** 64n - 1n;

function asBytes(value, size, what) {
  if (value instanceof Uint8Array) return value;
  try {
    return fromHex(value, size);
  } catch {
    throw new ReceiptError(`${what} is not ${size} bytes of hex`);
  }
}

/**
 * The EIP-712 digest an agency signs: keccak256(0x1901 ‖ domainSeparator ‖ structHash).
 * `message` is {agency, recordType, recordId, version, leaf, intakeTime, anchorBy} (leaf as bytes
 * or hex); `domain` is {chainId, verifyingContract} (or `ledger`), the bundle's chain and ledger.
 */
export function receiptDigest(message, domain) {
  if (
    (domain.name ?? DOMAIN_NAME) !== DOMAIN_NAME ||
    String(domain.version ?? DOMAIN_VERSION) !== DOMAIN_VERSION
  ) {
    throw new ReceiptError(`the receipt domain is ${pyRepr(DOMAIN_NAME)} version ${pyRepr(DOMAIN_VERSION)}`);
  }
  const ledger = String(domain.verifyingContract ?? domain.ledger).toLowerCase();
  if (!/^(0x)?[0-9a-f]{40}$/.test(ledger)) {
    throw new ReceiptError(`the ledger address ${pyRepr(ledger)} is not 20 bytes`);
  }
  if (!isInteger(domain.chainId) || BigInt(domain.chainId) < 0n) {
    throw new ReceiptError("the chain id is a non-negative integer");
  }
  const separator = keccak256(
    concatBytes([
      DOMAIN_TYPEHASH,
      NAME_HASH,
      VERSION_HASH,
      uintBytes(domain.chainId, 32),
      uintBytes(BigInt("0x" + ledger.replace(/^0x/, "")), 32),
    ])
  );
  // The checks and their order are ledger/receipts.py Receipt.struct_hash's.
  const leaf = asBytes(message.leaf, 32, "a receipt's leaf");
  if (leaf.length !== 32) throw new ReceiptError("a receipt's leaf is 32 bytes");
  const { version, intakeTime, anchorBy } = message;
  if (!isInteger(version) || version <= 0 || version >= 2 ** 32) {
    throw new ReceiptError(`a receipt's version is 1 to 2^32-1, got ${version}`);
  }
  if (
    !isInteger(intakeTime) ||
    !isInteger(anchorBy) ||
    !(0n <= BigInt(intakeTime) && BigInt(intakeTime) <= BigInt(anchorBy) && BigInt(anchorBy) <= UINT64_MAX)
  ) {
    throw new ReceiptError("a receipt needs 0 <= intakeTime <= anchorBy < 2^64");
  }
  const structHash = keccak256(
    concatBytes([
      RECEIPT_TYPEHASH,
      agencyCode(message.agency),
      recordTypeCode(message.recordType),
      recordIdCode(message.recordId),
      uintBytes(version, 32),
      leaf,
      uintBytes(intakeTime, 32),
      uintBytes(anchorBy, 32),
    ])
  );
  return keccak256(concatBytes([new Uint8Array([0x19, 0x01]), separator, structHash]));
}

// ----------------------------------------------------------------------- secp256k1 recovery
//
// Public-key recovery by @noble/curves, as libsecp256k1 (coincurve, the Python reference) and
// OpenZeppelin's ECDSA do it. What a signature must be before it is recovered (v, low s, r and s
// in range) is checked here, in the reference's order and words, so both refuse alike.

const N = secp256k1.Point.Fn.ORDER;
const HALF_N = N / 2n;

/**
 * The address (0x + 40 lower-case hex) that signed a 32-byte digest. Same acceptance rules and
 * messages as ledger/receipts.py recover_signer: 65 bytes r ‖ s ‖ v, v 27 or 28, s in the lower
 * half of the order; ReceiptError otherwise or when no key recovers.
 */
export function recoverSigner(digest, signature) {
  const sig = signature instanceof Uint8Array ? signature : asBytes(signature, undefined, "a signature");
  const hash = digest instanceof Uint8Array ? digest : asBytes(digest, 32, "a digest");
  if (sig.length !== 65) throw new ReceiptError(`a signature is 65 bytes, got ${sig.length}`);
  const v = sig[64];
  if (v !== 27 && v !== 28) throw new ReceiptError(`signature v must be 27 or 28, got ${v}`);
  const r = bytesToBigInt(sig.subarray(0, 32));
  const s = bytesToBigInt(sig.subarray(32, 64));
  if (s > HALF_N) throw new ReceiptError("signature s is in the upper half of the curve order (malleable)");
  // libsecp256k1's two failure messages, as coincurve passes them on.
  if (r >= N) {
    throw new ReceiptError("signature does not recover a key: Failed to parse recoverable signature.");
  }
  const failed = () =>
    new ReceiptError("signature does not recover a key: failed to recover ECDSA public key");
  if (r === 0n || s === 0n) throw failed();
  let publicKey;
  try {
    // No R with x = r on the curve, or a key at infinity: noble throws, libsecp256k1 fails.
    publicKey = new secp256k1.Signature(r, s, v - 27).recoverPublicKey(hash).toBytes(false);
  } catch {
    throw failed();
  }
  publicKey = publicKey.subarray(1); // x ‖ y, without the uncompressed point's 0x04
  return toHex(keccak256(publicKey).subarray(12));
}

// ------------------------------------------------------------------- JSON as Python reads it
//
// A bundle given as text is read the way Python's json.loads reads it in ledger/bundle.py's
// load_bundle, so both refuse the same documents with the same words: duplicate keys, floats,
// NaN and Infinity are refused (JSON.parse would keep the last duplicate and turn 1.0 into 1),
// integers beyond 2^53 stay exact (as BigInt), and syntax errors carry Python's message and
// position (in code points).

const JSON_WHITESPACE = (c) => c === " " || c === "\t" || c === "\n" || c === "\r";

class JsonSyntaxError extends Error {}
class StopScan extends Error {
  constructor(at) {
    super("stop");
    this.at = at;
  }
}

function readJson(text) {
  const length = text.length;
  const fail = (message, at) => {
    // Python counts characters (code points); a JS string counts UTF-16 units.
    const before = text.slice(0, at);
    const pos = [...before].length;
    const newline = before.lastIndexOf("\n");
    const line = (before.match(/\n/g) || []).length + 1;
    const column = newline < 0 ? pos + 1 : pos - [...before.slice(0, newline)].length;
    return new JsonSyntaxError(`${message}: line ${line} column ${column} (char ${pos})`);
  };
  const skip = (i) => {
    while (i < length && JSON_WHITESPACE(text[i])) i++;
    return i;
  };

  function scanString(end) {
    const begin = end - 1;
    let out = "";
    for (;;) {
      let next = end;
      let c = "";
      for (; next < length; next++) {
        c = text[next];
        if (c === '"' || c === "\\") break;
        if (c.charCodeAt(0) <= 0x1f) throw fail("Invalid control character at", next);
      }
      if (next >= length || (c !== '"' && c !== "\\")) throw fail("Unterminated string starting at", begin);
      out += text.slice(end, next);
      next++;
      if (c === '"') return [out, next];
      if (next === length) throw fail("Unterminated string starting at", begin);
      const e = text[next];
      if (e !== "u") {
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
        if (simple === undefined) throw fail("Invalid \\escape", next - 1);
        out += simple;
        end = next + 1;
        continue;
      }
      next++;
      end = next + 4;
      if (end >= length) throw fail("Invalid \\uXXXX escape", next - 1);
      const hex = (from) => {
        const digits = text.slice(from, from + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(digits)) throw fail("Invalid \\uXXXX escape", from - 1);
        return parseInt(digits, 16);
      };
      const unit = hex(next);
      out += String.fromCharCode(unit);
      // An escaped high surrogate followed by an escaped low one is one character to Python;
      // in a JS string the two units are that same character, so only the position matters.
      if (
        unit >= 0xd800 &&
        unit <= 0xdbff &&
        end + 6 < length &&
        text[end] === "\\" &&
        text[end + 1] === "u"
      ) {
        const low = hex(end + 2);
        if (low >= 0xdc00 && low <= 0xdfff) {
          out += String.fromCharCode(low);
          end += 6;
        }
      }
    }
  }

  function scanNumber(start) {
    let i = start;
    if (text[i] === "-") {
      i++;
      if (i >= length) throw new StopScan(start);
    }
    if (text[i] >= "1" && text[i] <= "9") {
      i++;
      while (i < length && text[i] >= "0" && text[i] <= "9") i++;
    } else if (text[i] === "0") {
      i++;
    } else {
      throw new StopScan(start);
    }
    let isFloat = false;
    if (i < length - 1 && text[i] === "." && text[i + 1] >= "0" && text[i + 1] <= "9") {
      isFloat = true;
      i += 2;
      while (i < length && text[i] >= "0" && text[i] <= "9") i++;
    }
    if (i < length - 1 && (text[i] === "e" || text[i] === "E")) {
      const eStart = i;
      i++;
      if (i < length - 1 && (text[i] === "-" || text[i] === "+")) i++;
      while (i < length && text[i] >= "0" && text[i] <= "9") i++;
      if (text[i - 1] >= "0" && text[i - 1] <= "9") isFloat = true;
      else i = eStart;
    }
    const literal = text.slice(start, i);
    if (isFloat) throw new BundleError(`floating-point number ${literal} is not allowed in a bundle`);
    const digits = literal.replace("-", "").length;
    if (digits > 4300) {
      throw new BundleError(
        `Exceeds the limit (4300 digits) for integer string conversion: value has ${digits} digits; ` +
          "use sys.set_int_max_str_digits() to increase the limit"
      );
    }
    return [exact(BigInt(literal)), i];
  }

  function scanOnce(i) {
    if (i >= length) throw new StopScan(i);
    const c = text[i];
    if (c === '"') return scanString(i + 1);
    if (c === "{") return scanObject(i + 1);
    if (c === "[") return scanArray(i + 1);
    const word = (w) => text.startsWith(w, i);
    if (c === "n" && word("null")) return [null, i + 4];
    if (c === "t" && word("true")) return [true, i + 4];
    if (c === "f" && word("false")) return [false, i + 5];
    for (const name of ["NaN", "Infinity", "-Infinity"]) {
      if (word(name)) throw new BundleError(`${name} is not a JSON number`);
    }
    return scanNumber(i);
  }

  function scanObject(i) {
    const pairs = [];
    i = skip(i);
    if (i >= length || text[i] !== "}") {
      for (;;) {
        if (i >= length || text[i] !== '"') {
          throw fail("Expecting property name enclosed in double quotes", i);
        }
        const [key, afterKey] = scanString(i + 1);
        i = skip(afterKey);
        if (i >= length || text[i] !== ":") throw fail("Expecting ':' delimiter", i);
        const [value, afterValue] = scanOnce(skip(i + 1));
        pairs.push([key, value]);
        i = skip(afterValue);
        if (i < length && text[i] === "}") break;
        if (i >= length || text[i] !== ",") throw fail("Expecting ',' delimiter", i);
        i = skip(i + 1);
      }
    }
    // ledger/bundle.py's object_pairs_hook: a key twice is refused, naming the first such key.
    const object = {};
    const seen = new Set();
    for (const [key] of pairs) {
      if (seen.has(key)) {
        const keys = pairs.map(([k]) => k);
        const twice = keys.find((k) => keys.indexOf(k) !== keys.lastIndexOf(k));
        throw new BundleError(`key ${pyRepr(twice)} appears twice in one object`);
      }
      seen.add(key);
    }
    for (const [key, value] of pairs) {
      Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return [object, i + 1];
  }

  function scanArray(i) {
    const items = [];
    i = skip(i);
    if (i >= length || text[i] !== "]") {
      for (;;) {
        const [value, after] = scanOnce(i);
        items.push(value);
        i = skip(after);
        if (i < length && text[i] === "]") break;
        if (i >= length || text[i] !== ",") throw fail("Expecting ',' delimiter", i);
        i = skip(i + 1);
      }
    }
    return [items, i + 1];
  }

  if (text.startsWith("\ufeff")) throw fail("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0);
  try {
    const [value, end] = scanOnce(skip(0));
    const after = skip(end);
    if (after !== length) throw fail("Extra data", after);
    return value;
  } catch (error) {
    if (error instanceof StopScan) throw fail("Expecting value", error.at);
    throw error;
  }
}

/**
 * UTF-8 bytes to text with Python's rules and messages: a UTF-8 BOM is skipped, and encoded
 * surrogates are let through as Python's 'surrogatepass' does (they fail later, by name).
 */
function decodeUtf8(bytes) {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const units = [];
  const chunks = [];
  const cont = (b) => b !== undefined && (b & 0xc0) === 0x80;
  const fail = (start, end, why) => {
    const where =
      end - start === 1
        ? `byte 0x${HEX[bytes[start]]} in position ${start}`
        : `bytes in position ${start}-${end - 1}`;
    return new BundleError(`'utf-8' codec can't decode ${where}: ${why}`);
  };
  while (i < bytes.length) {
    const b = bytes[i];
    let cp;
    let size;
    if (b < 0x80) {
      cp = b;
      size = 1;
    } else if (b < 0xc2 || b > 0xf4) {
      throw fail(i, i + 1, "invalid start byte");
    } else {
      size = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
      const b2 = bytes[i + 1];
      // The second byte's allowed range narrows for E0 (no overlongs), F0 and F4 (Unicode's end);
      // ED A0..BF is an encoded surrogate, which 'surrogatepass' accepts when it is complete.
      const narrowed = (b === 0xe0 && b2 < 0xa0) || (b === 0xf0 && b2 < 0x90) || (b === 0xf4 && b2 > 0x8f);
      const surrogate = b === 0xed && b2 >= 0xa0;
      if (surrogate && !(cont(bytes[i + 1]) && cont(bytes[i + 2]))) {
        throw fail(i, i + 1, "invalid continuation byte"); // 'surrogatepass' gives up: the first error stands
      }
      for (let k = 1; k < size; k++) {
        if (i + k >= bytes.length) throw fail(i, bytes.length, "unexpected end of data");
        if (!cont(bytes[i + k]) || (k === 1 && narrowed)) throw fail(i, i + k, "invalid continuation byte");
      }
      cp = b & (0xff >> (size + 1));
      for (let k = 1; k < size; k++) cp = (cp << 6) | (bytes[i + k] & 0x3f);
    }
    if (cp < 0x10000) units.push(cp);
    else units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    i += size;
    if (units.length >= 8192) {
      chunks.push(String.fromCharCode(...units));
      units.length = 0;
    }
  }
  chunks.push(String.fromCharCode(...units));
  return chunks.join("");
}

/** ledger/canonical.py nesting_depth: how deeply arrays and objects nest outside strings (limit + 1 if deeper).
 * Python checks it before json.loads, whose recursion a hostile `[[[[...` could overflow. */
function nestingDepth(text, limit) {
  const outside = text
    .replaceAll("\\\\", "")
    .replaceAll('\\"', "")
    .split('"')
    .filter((_, i) => i % 2 === 0)
    .join("");
  let brackets = outside.replace(/[^[\]{}]+/g, "");
  for (let depth = 0; depth <= limit; depth++) {
    if (!brackets) return depth;
    const peeled = brackets.replace(/\[\]|\{\}/g, "");
    if (peeled === brackets) return brackets.length <= limit ? depth : limit + 1;
    brackets = peeled;
  }
  return limit + 1;
}

function tooDeep(text, limit) {
  let openers = 0;
  for (let i = 0; i < text.length; i++) if (text[i] === "[" || text[i] === "{") openers++;
  return openers > 256 && nestingDepth(text, limit) > limit;
}

// ------------------------------------------------------------------------------- bundles

export const FORMAT = "sijill-bundle/1";
export const MAX_BUNDLE_BYTES = 256 * 1024;
export const MAX_PROOF_LENGTH = 32;
const MAX_NESTING = 6;
const TOP_KEYS = [
  "format",
  "chainId",
  "ledger",
  "registry",
  "agency",
  "recordType",
  "recordId",
  "version",
  "leaf",
  "disclosed",
  "hidden",
  "anchor",
  "receipt",
];
const LOWER_HEX = /^0x[0-9a-f]*$/;
const parsedBundles = new WeakSet();

function object(value, where, keys) {
  if (!isPlainObject(value)) throw new BundleError(`${where}: expected an object`);
  const have = Object.keys(value);
  const missing = keys.filter((k) => !hasOwn.call(value, k)).sort(compareCodePoints);
  if (missing.length) throw new BundleError(`${where}: missing ${pyRepr(missing[0])}`);
  const unknown = have.filter((k) => !keys.includes(k)).sort(compareCodePoints);
  if (unknown.length) throw new BundleError(`${where}: unknown key ${pyRepr(unknown[0])}`);
  return value;
}

function list(value, where) {
  if (!Array.isArray(value)) throw new BundleError(`${where}: expected a list`);
  return value;
}

function integer(value, where, low, high) {
  if (!isInteger(value) || BigInt(value) < BigInt(low) || BigInt(value) > BigInt(high)) {
    throw new BundleError(`${where}: expected an integer from ${low} to ${high}`);
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    // Only a document decoded by JSON.parse gets here: it has already rounded the number.
    throw new BundleError(
      `${where}: ${pyRepr(value)} is beyond 2^53 and was rounded by JSON.parse; pass the bundle as JSON text`
    );
  }
  return exact(BigInt(value));
}

function text(value, where, pattern) {
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new BundleError(`${where}: ${pyRepr(value)} is not a valid ${where}`);
  }
  return value;
}

function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function goodPath(path) {
  return typeof path === "string" && path.startsWith("/") && utf8Length(path) <= MAX_PATH_BYTES;
}

function fieldPath(value, where, index) {
  if (goodPath(value)) return value;
  throw new BundleError(`${where}[${index}].path: a JSON Pointer starting with '/', at most 256 bytes`);
}

function hexBytes(value, size, where) {
  if (typeof value === "string" && value.length === 2 + 2 * size && LOWER_HEX.test(value)) {
    return fromHex(value);
  }
  throw new BundleError(`${where}: expected 0x and ${2 * size} lower-case hex digits`);
}

function address(value, where) {
  return toHex(hexBytes(value, 20, where));
}

function disclosedField(item, index) {
  const raw = object(item, `disclosed[${index}]`, ["path", "salt", "value"]);
  const value = raw.value;
  if ((Array.isArray(value) && value.length) || (isPlainObject(value) && Object.keys(value).length)) {
    throw new BundleError(`disclosed[${index}].value: a field is a scalar, [] or {}`);
  }
  // Python's parse_bundle lets a float of an already-decoded document through to fail the
  // integrity check; the format has no floats anywhere, so this refuses it here (JSON text with
  // a float never gets this far, in either implementation).
  if (typeof value === "number" && !Number.isInteger(value)) {
    throw new BundleError(
      `disclosed[${index}].value: floating-point number ${pyFloatRepr(value)} is not allowed in a bundle`
    );
  }
  if (
    !(
      typeof value === "string" ||
      typeof value === "boolean" ||
      value === null ||
      isInteger(value) ||
      Array.isArray(value) ||
      isPlainObject(value)
    )
  ) {
    throw new BundleError(`disclosed[${index}].value: a field is a scalar, [] or {}`);
  }
  const salt = hexBytes(raw.salt, SALT_BYTES, `disclosed[${index}].salt`);
  return Object.freeze({ path: fieldPath(raw.path, "disclosed", index), salt, value });
}

function hiddenField(item, index) {
  const raw = object(item, `hidden[${index}]`, ["path", "hash"]);
  const path = fieldPath(raw.path, "hidden", index);
  return Object.freeze({ path, hash: hexBytes(raw.hash, 32, `hidden[${index}].hash`) });
}

function checkPaths(paths, where) {
  for (const path of paths) {
    if (LONE_SURROGATE.test(path)) {
      // Python's reference raises UnicodeEncodeError here (not a BundleError: verify crashes).
      throw new BundleError(`${where}: field path ${pyRepr(path)} is not valid Unicode (a lone surrogate)`);
    }
  }
  const encoded = paths.map((p) => encoder.encode(p));
  for (let i = 1; i < encoded.length; i++) {
    if (compareBytes(encoded[i - 1], encoded[i]) >= 0) {
      throw new BundleError(`${where}: fields must be in strictly increasing path order, without repeats`);
    }
  }
}

/**
 * A checked proof bundle from decoded JSON or from JSON text (a string or UTF-8 bytes): the rules,
 * limits and messages of ledger/bundle.py load_bundle / parse_bundle. Throws BundleError.
 * The result is frozen: {chainId, ledger, registry, agency, recordType, recordId, version, leaf,
 * disclosed: [{path, salt, value}], hidden: [{path, hash}], anchor: {root, proof} | null,
 * receipt: {intakeTime, anchorBy, signer, signature}}; byte strings are Uint8Array.
 */
export function parseBundle(doc) {
  if (typeof doc === "string" || doc instanceof Uint8Array) return parseDocument(loadJson(doc));
  return parseDocument(doc);
}

function loadJson(data) {
  // The limit is on UTF-8 bytes, also of text already decoded (a lone surrogate counts 3, as in Python).
  const size = typeof data === "string" ? utf8Length(data) : data.length;
  if (size > MAX_BUNDLE_BYTES) {
    throw new BundleError(`a bundle is at most ${MAX_BUNDLE_BYTES} bytes of UTF-8, this one ${size}`);
  }
  let source = data;
  try {
    if (data instanceof Uint8Array) source = decodeUtf8(data);
  } catch (error) {
    throw new BundleError(`not a JSON document: ${error.message}`);
  }
  if (tooDeep(source, MAX_NESTING)) {
    throw new BundleError(`not a bundle: JSON nested deeper than ${MAX_NESTING} levels`);
  }
  try {
    return readJson(source);
  } catch (error) {
    if (error instanceof BundleError || error instanceof JsonSyntaxError || error instanceof RangeError) {
      throw new BundleError(`not a JSON document: ${error.message}`);
    }
    throw error;
  }
}

function parseDocument(document) {
  const top = object(document, "bundle", TOP_KEYS);
  if (top.format !== FORMAT) {
    throw new BundleError(
      `format: ${pyRepr(top.format)} is not a known bundle format (this reads ${pyRepr(FORMAT)})`
    );
  }
  const disclosedList = list(top.disclosed, "disclosed");
  const hiddenList = list(top.hidden, "hidden");
  const count = disclosedList.length + hiddenList.length;
  if (count < 1 || count > MAX_FIELDS) {
    throw new BundleError(`disclosed + hidden: a record has 1 to ${MAX_FIELDS} fields`);
  }
  const disclosed = disclosedList.map(disclosedField);
  const hidden = hiddenList.map(hiddenField);
  checkPaths(
    disclosed.map((f) => f.path),
    "disclosed"
  );
  checkPaths(
    hidden.map((h) => h.path),
    "hidden"
  );
  const hiddenPaths = new Set(hidden.map((h) => h.path));
  const both = disclosed
    .map((f) => f.path)
    .filter((p) => hiddenPaths.has(p))
    .sort(compareCodePoints);
  if (both.length) throw new BundleError(`field ${pyRepr(both[0])} is both disclosed and hidden`);

  let anchor = null;
  if (top.anchor !== null) {
    const raw = object(top.anchor, "anchor", ["root", "proof"]);
    const proof = list(raw.proof, "anchor.proof");
    if (proof.length > MAX_PROOF_LENGTH) {
      throw new BundleError(`anchor.proof: at most ${MAX_PROOF_LENGTH} hashes`);
    }
    anchor = Object.freeze({
      root: hexBytes(raw.root, 32, "anchor.root"),
      proof: Object.freeze(proof.map((p, i) => hexBytes(p, 32, `anchor.proof[${i}]`))),
    });
  }
  const rawReceipt = object(top.receipt, "receipt", ["intakeTime", "anchorBy", "signer", "signature"]);
  const receipt = Object.freeze({
    intakeTime: integer(rawReceipt.intakeTime, "receipt.intakeTime", 0, UINT64_MAX),
    anchorBy: integer(rawReceipt.anchorBy, "receipt.anchorBy", 0, UINT64_MAX),
    signer: address(rawReceipt.signer, "receipt.signer"),
    signature: hexBytes(rawReceipt.signature, 65, "receipt.signature"),
  });
  const bundle = Object.freeze({
    chainId: integer(top.chainId, "chainId", 1, UINT64_MAX),
    ledger: address(top.ledger, "ledger"),
    registry: address(top.registry, "registry"),
    agency: text(top.agency, "agency", AGENCY_CODE_PATTERN),
    recordType: text(top.recordType, "recordType", RECORD_TYPE_PATTERN),
    recordId: text(top.recordId, "recordId", RECORD_ID_PATTERN),
    version: integer(top.version, "version", 1, MAX_VERSION),
    leaf: hexBytes(top.leaf, 32, "leaf"),
    disclosed: Object.freeze(disclosed),
    hidden: Object.freeze(hidden),
    anchor,
    receipt,
  });
  parsedBundles.add(bundle);
  return bundle;
}

// ------------------------------------------------------------------------------ chain views
//
// verify asks a chain five questions (ledger/chainview.py ChainView). Both kinds below answer
// with the same shapes; verify awaits every answer, so a chain's methods may be sync or async.
//   batch(agency, root)            -> {recordType, seq, blockNumber, timestamp, count} | null
//   leafStatus(agency, leaf)       -> {state, reason, blockNumber, successor}
//                                     (state 0 current, 1 superseded, 2 revoked)
//   agencyStatus(agency)           -> 0 none | 1 active | 2 suspended
//   signerValidAt(agency, signer, block) -> boolean
//   latestBlock()                  -> block number
// plus the properties chainId, ledger and registry (lower-case hex).

export const LeafState = Object.freeze({ CURRENT: 0, SUPERSEDED: 1, REVOKED: 2 });
export const AgencyStatus = Object.freeze({ NONE: 0, ACTIVE: 1, SUSPENDED: 2 });
const LEAF_STATE_NAMES = ["current", "superseded", "revoked"];
const AGENCY_STATUS_NAMES = ["none", "active", "suspended"];
const ZERO32 = new Uint8Array(32);

/**
 * A chain held in memory (Python's MemoryChain): for tests, vectors and offline checks. Usually
 * made by `MemoryChain.fromJson` from MemoryChain.to_json's form (tests/vectors/bundles.json's
 * "chain"); the constructor takes agencies as code -> AgencyStatus, signers as address ->
 * [agency, validFrom, validTo], and batches and leaves as {agency, root | leaf, info}, where info
 * is what `batch` or `leafStatus` answers.
 */
export class MemoryChain {
  constructor({
    chainId,
    ledger,
    registry,
    block = 0,
    agencies = {},
    signers = {},
    batches = [],
    leaves = [],
  }) {
    this.chainId = chainId;
    this.ledger = ledger.toLowerCase();
    this.registry = registry.toLowerCase();
    this.block = block;
    this.agencies = new Map(Object.entries(agencies));
    this.signers = new Map(Object.entries(signers).map(([signer, entry]) => [signer.toLowerCase(), entry]));
    this.batches = new Map(batches.map((b) => [`${b.agency}/${toHex(b.root)}`, b]));
    this.leaves = new Map(leaves.map((x) => [`${x.agency}/${toHex(x.leaf)}`, x]));
  }

  /** From MemoryChain.to_json's document (decoded, or as JSON text to keep 2^64-1 exact). */
  static fromJson(json) {
    const data =
      typeof json === "string" || json instanceof Uint8Array
        ? readJson(typeof json === "string" ? json : decodeUtf8(json))
        : json;
    const named = (names, name) => {
      const index = names.indexOf(String(name).toLowerCase());
      if (index < 0) throw new LedgerError(`unknown state ${pyRepr(name)}`);
      return index;
    };
    return new MemoryChain({
      chainId: data.chainId,
      ledger: data.ledger,
      registry: data.registry,
      block: data.block,
      agencies: Object.fromEntries(
        Object.entries(data.agencies).map(([code, s]) => [code, named(AGENCY_STATUS_NAMES, s)])
      ),
      signers: data.signers,
      batches: data.batches.map((b) => ({
        agency: b.agency,
        root: fromHex(b.root, 32),
        info: {
          recordType: b.recordType,
          seq: b.seq,
          blockNumber: b.block,
          timestamp: b.timestamp,
          count: b.count,
        },
      })),
      leaves: data.leaves.map((x) => ({
        agency: x.agency,
        leaf: fromHex(x.leaf, 32),
        info: {
          state: named(LEAF_STATE_NAMES, x.state),
          reason: x.reason,
          blockNumber: x.block,
          successor: fromHex(x.successor, 32),
        },
      })),
    });
  }

  batch(agency, root) {
    return this.batches.get(`${agency}/${toHex(root)}`)?.info ?? null;
  }

  leafStatus(agency, leaf) {
    return (
      this.leaves.get(`${agency}/${toHex(leaf)}`)?.info ?? {
        state: 0,
        reason: 0,
        blockNumber: 0,
        successor: ZERO32,
      }
    );
  }

  agencyStatus(agency) {
    return this.agencies.get(agency) ?? AgencyStatus.NONE;
  }

  agencyInfo(agency) {
    return { status: this.agencyStatus(agency), name: null };
  }

  signerValidAt(agency, signer, block) {
    const entry = this.signers.get(signer.toLowerCase());
    return entry !== undefined && entry[0] === agency && entry[1] <= block && block <= entry[2];
  }

  latestBlock() {
    return this.block;
  }
}

// Function selectors: the first 4 bytes of keccak256 of the signature (node/chain/views.py's calls).
const selector = (signature) => keccak256(encoder.encode(signature)).subarray(0, 4);
const SELECTORS = {
  registry: selector("registry()"),
  batch: selector("batch(bytes32,bytes32)"),
  leafStatus: selector("leafStatus(bytes32,bytes32)"),
  agencyInfo: selector("agencyInfo(bytes32)"),
  isSignerValidAt: selector("isSignerValidAt(bytes32,address,uint256)"),
};

/** Reads ABI words out of an eth_call answer; any nonsense becomes ChainUnavailable naming the call. */
class AbiReader {
  constructor(bytes, what) {
    this.bytes = bytes;
    this.what = what;
  }

  fail(why) {
    return new ChainUnavailable(`${this.what}: ${why}`);
  }

  word(at) {
    if (at + 32 > this.bytes.length) {
      throw this.fail(
        `the answer is ${this.bytes.length} bytes, too short to decode (is there a contract at that address?)`
      );
    }
    return this.bytes.subarray(at, at + 32);
  }

  /** An unsigned integer of `bits` bits, its padding checked as strict ABI decoders do. */
  uint(at, bits) {
    const word = this.word(at);
    const padding = 32 - bits / 8;
    if (word.subarray(0, padding).some((b) => b !== 0)) throw this.fail(`a uint${bits} has non-zero padding`);
    return exact(bytesToBigInt(word));
  }

  bool(at) {
    const value = this.uint(at, 8);
    if (value > 1) throw this.fail(`a bool is ${value}`);
    return value === 1;
  }

  address(at) {
    this.uint(at, 160); // checks the padding
    return toHex(this.word(at).subarray(12));
  }

  bytes32(at) {
    return this.word(at).slice();
  }

  string(at) {
    const length = this.uint(at, 256);
    if (typeof length !== "number" || at + 32 + length > this.bytes.length) {
      throw this.fail("a string runs past the answer");
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(at + 32, at + 32 + length));
    } catch {
      throw this.fail("a string is not UTF-8");
    }
  }

  offset(at, base) {
    const value = this.uint(at, 256);
    if (typeof value !== "number" || base + value >= this.bytes.length) {
      throw this.fail("an offset points past the answer");
    }
    return base + value;
  }
}

/**
 * The five questions over a read-only JSON-RPC endpoint (a node's /rpc, or the chain's own), at
 * the latest block: every answer is current state, so a node without archive history serves them.
 * `await chain.init()` first (verify calls it too): it reads the chain id and the ledger's registry.
 */
export class RpcChain {
  #url;
  #fetch;
  #timeoutMs;
  #nextId = 1;
  #ready = null;

  constructor(url, { ledger, fetch = globalThis.fetch, timeoutMs = 10000 } = {}) {
    if (typeof ledger !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(ledger)) {
      throw new LedgerError(`ledger: expected 0x and 40 hex digits, got ${describe(ledger)}`);
    }
    if (typeof fetch !== "function") throw new LedgerError("no fetch function: pass one in the options");
    this.#url = url;
    this.#fetch = fetch;
    this.#timeoutMs = timeoutMs;
    this.url = url;
    this.ledger = ledger.toLowerCase();
    this.chainId = null;
    this.registry = null;
  }

  /**
   * Reads eth_chainId and the ledger's registry(); once (a failure is retried at the next call).
   * Throws NoDeployment when there is no RecordLedger at the ledger address.
   */
  init() {
    this.#ready ??= (async () => {
      const chainId = this.#quantity(await this.#rpc("eth_chainId", []), "eth_chainId");
      const registry = await this.#registryOf(chainId);
      this.chainId = chainId;
      this.registry = registry;
    })().catch((error) => {
      this.#ready = null;
      throw error;
    });
    return this.#ready;
  }

  async #registryOf(chainId) {
    const what = `registry() at ${this.ledger}`;
    let answer;
    try {
      answer = await this.#call(this.ledger, SELECTORS.registry, [], what);
    } catch (error) {
      if (!(error instanceof CallFailed)) throw error; // not reached: unknown, as for any question
      throw await this.#noDeployment(chainId, error);
    }
    try {
      return new AbiReader(answer, what).address(0);
    } catch (error) {
      throw await this.#noDeployment(chainId, error);
    }
  }

  /**
   * The ledger answered registry() with an error, or with what no RecordLedger answers: is there
   * code at that address at all? Asked only then, so an endpoint without eth_getCode (a node's
   * /rpc) serves every real deployment; from one, the registry() failure stands.
   */
  async #noDeployment(chainId, failure) {
    let code;
    try {
      code = await this.#rpc("eth_getCode", [this.ledger, "latest"]);
    } catch (error) {
      if (error instanceof CallFailed) return failure;
      throw error;
    }
    const empty = code === "0x" || code === "" || code === null || code === undefined;
    return new NoDeployment(chainId, this.ledger, !empty);
  }

  async batch(agency, root) {
    const what = `batch at ${this.ledger}`;
    const abi = new AbiReader(
      await this.#call(this.ledger, SELECTORS.batch, [agencyCode(agency), root], what),
      what
    );
    const seq = abi.uint(32, 64);
    if (seq === 0) return null; // seq 0: this agency never anchored this root
    let recordType;
    try {
      recordType = decodeCode(abi.bytes32(0));
    } catch (error) {
      throw abi.fail(error.message);
    }
    return {
      recordType,
      seq,
      blockNumber: abi.uint(64, 64),
      timestamp: abi.uint(96, 64),
      count: abi.uint(128, 32),
    };
  }

  async leafStatus(agency, leaf) {
    const what = `leafStatus at ${this.ledger}`;
    const abi = new AbiReader(
      await this.#call(this.ledger, SELECTORS.leafStatus, [agencyCode(agency), leaf], what),
      what
    );
    const state = abi.uint(0, 8);
    if (state > 2) throw abi.fail(`leaf state ${state} is not current, superseded or revoked`);
    return { state, reason: abi.uint(32, 16), blockNumber: abi.uint(64, 64), successor: abi.bytes32(96) };
  }

  /** {status: 0 none | 1 active | 2 suspended, name, council, registeredAt}: the registry's agencyInfo. */
  async agencyInfo(agency) {
    await this.init();
    const what = `agencyInfo at ${this.registry}`;
    const abi = new AbiReader(
      await this.#call(this.registry, SELECTORS.agencyInfo, [agencyCode(agency)], what),
      what
    );
    const tuple = abi.offset(0, 0); // the struct holds a string, so the answer points to it
    const status = abi.uint(tuple + 32, 8);
    if (status > 2) throw abi.fail(`agency status ${status} is not none, active or suspended`);
    return {
      status,
      name: abi.string(abi.offset(tuple, tuple)),
      council: abi.bool(tuple + 64),
      registeredAt: abi.uint(tuple + 96, 64),
    };
  }

  async agencyStatus(agency) {
    return (await this.agencyInfo(agency)).status;
  }

  async signerValidAt(agency, signer, block) {
    await this.init();
    const account = fromHex(String(signer).toLowerCase(), 20);
    const what = `isSignerValidAt at ${this.registry}`;
    const args = [agencyCode(agency), uintBytes(0, 12), account, uintBytes(block, 32)];
    const answer = await this.#call(this.registry, SELECTORS.isSignerValidAt, args, what);
    return new AbiReader(answer, what).bool(0);
  }

  async latestBlock() {
    return this.#quantity(await this.#rpc("eth_blockNumber", []), "eth_blockNumber");
  }

  #quantity(result, what) {
    if (typeof result !== "string" || !/^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/.test(result)) {
      throw new ChainUnavailable(`${what}: ${describe(result)} is not a hex quantity`);
    }
    return exact(BigInt(result));
  }

  async #call(to, functionSelector, words, what = "eth_call") {
    const data = toHex(concatBytes([functionSelector, ...words]));
    const result = await this.#rpc("eth_call", [{ to, data }, "latest"], what);
    if (typeof result !== "string" || !/^0x(?:[0-9a-fA-F]{2})*$/.test(result)) {
      throw new ChainUnavailable(`${what}: the answer is not hex bytes`);
    }
    return fromHex(result);
  }

  async #rpc(method, params, what = method) {
    const id = this.#nextId++;
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = setTimeout(() => controller?.abort(), this.#timeoutMs);
    let reply;
    try {
      // Called as a plain function: a browser's fetch refuses to run with `this` set to another object.
      const fetchFn = this.#fetch;
      const response = await fetchFn(this.#url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
        signal: controller?.signal,
      });
      if (!response.ok) throw new ChainUnavailable(`${this.#url} answered HTTP ${response.status}`);
      const body = await response.text();
      try {
        reply = JSON.parse(body);
      } catch {
        throw new ChainUnavailable(`${this.#url} answered something that is not JSON`);
      }
    } catch (error) {
      if (error instanceof ChainUnavailable) throw error;
      if (controller?.signal.aborted) {
        throw new ChainUnavailable(`${this.#url} did not answer within ${this.#timeoutMs} ms`);
      }
      throw new ChainUnavailable(`cannot reach ${this.#url}: ${error?.message ?? error}`);
    } finally {
      clearTimeout(timer);
    }
    if (!isPlainObject(reply) || reply.id !== id) {
      throw new ChainUnavailable(`${this.#url} gave no answer to ${method}`);
    }
    if (reply.error !== undefined) {
      const message = isPlainObject(reply.error)
        ? `${reply.error.message} (code ${reply.error.code})`
        : String(reply.error);
      throw new CallFailed(`${what}: ${message}`);
    }
    if (!hasOwn.call(reply, "result")) {
      throw new ChainUnavailable(`${this.#url} gave no result for ${method}`);
    }
    return reply.result;
  }
}

// ---------------------------------------------------------------------------- verification

const CHECKS = ["integrity", "inclusion", "anchored", "authority", "status", "receipt"];

/** Revocation reason codes (docs/contracts.md), English and Arabic: ledger/verify.py's table. */
export const REVOCATION_REASONS = Object.freeze({
  1: ["issued in error", "صدر عن طريق الخطأ"],
  2: ["court order", "بحكم قضائي"],
  3: ["fraud", "تزوير أو غش"],
  4: ["duplicate record", "قيد مكرر"],
  5: ["closed by the registry", "أغلقته جهة التسجيل"],
  6: ["other", "سبب آخر"],
});

const check = (name, outcome, en, ar, details = {}) => ({ name, outcome, reason: { en, ar }, details });
const failed = (name, en, ar, details = {}) => check(name, "fail", en, ar, details);
const unknownChain = (name, error) =>
  error instanceof NoDeployment // the chain answered: there is nothing at that address to ask
    ? check(name, "unknown", error.reason.en, error.reason.ar)
    : check(name, "unknown", `The ledger could not be asked: ${error.message}`, "تعذر الاتصال بدفتر القيود المشترك");
const notChecked = (name) => check(name, "unknown", "Not checked", "لم يتم التحقق");

/**
 * Verify a bundle (decoded JSON, JSON text or bytes, or a parseBundle result) against a chain at
 * unix time `now`. Never throws for a bad bundle; resolves to {verdict, checks}, which serialises
 * exactly as Python's VerificationReport.to_json(), plus a non-enumerable `bundle` (the parsed
 * bundle, or null when unreadable) for the page to show the disclosed fields.
 */
export async function verify(doc, chain, { now = Math.floor(Date.now() / 1000) } = {}) {
  let bundle;
  try {
    bundle = parsedBundles.has(doc) ? doc : parseBundle(doc);
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    const unreadable = failed(
      "integrity",
      `The bundle is unreadable: ${error.message}`,
      "المستند غير صالح للقراءة"
    );
    return report("not-authentic", [unreadable, ...CHECKS.slice(1).map(notChecked)], null);
  }

  const integrity = integrityCheck(bundle);
  const inclusion = inclusionCheck(bundle);
  const [signer, receiptSignature] = receiptSignatureCheck(bundle);
  let anchored;
  let batch = null;
  let authority;
  let status;
  try {
    if (typeof chain.init === "function") await chain.init();
    [anchored, batch] = await anchoredCheck(bundle, chain);
    authority = await authorityCheck(bundle, chain, signer, batch);
    status = sameDeployment(bundle, chain) ? await statusCheck(bundle, chain) : notChecked("status");
  } catch (error) {
    if (!(error instanceof ChainUnavailable)) throw error;
    [anchored, batch] = [unknownChain("anchored", error), null];
    authority = unknownChain("authority", error);
    status = unknownChain("status", error);
  }
  const receipt = receiptSignature ?? promiseCheck(bundle, batch, now, anchored);
  const checks = [integrity, inclusion, anchored, authority, status, receipt];
  return report(verdictOf(checks, receiptSignature !== null, bundle), checks, bundle);
}

function report(verdict, checks, bundle) {
  const result = { verdict, checks };
  Object.defineProperty(result, "bundle", { value: bundle, enumerable: false });
  return result;
}

function integrityCheck(bundle) {
  const hashes = new Map(bundle.hidden.map((h) => [h.path, h.hash]));
  let leaf;
  try {
    for (const f of bundle.disclosed) {
      if (typeof f.value === "string" && !isCanonicalText(f.value)) {
        return failed(
          "integrity",
          `The value of ${f.path} is not in canonical form`,
          `قيمة الحقل ${f.path} ليست في الصيغة القياسية`
        );
      }
      hashes.set(f.path, fieldHash(f.path, f.salt, f.value));
    }
    leaf = leafOf(recordDigest(bundle, hashes));
  } catch (error) {
    if (!(error instanceof LedgerError)) throw error;
    return failed("integrity", `The fields cannot be hashed: ${error.message}`, "تعذر حساب بصمة الحقول");
  }
  if (!equalBytes(leaf, bundle.leaf)) {
    return failed(
      "integrity",
      "The fields do not recompute to the record's leaf: something was changed",
      "الحقول لا تطابق بصمة القيد: تم تعديل شيء ما"
    );
  }
  const d = bundle.disclosed.length;
  const h = bundle.hidden.length;
  return check(
    "integrity",
    "pass",
    `${d} disclosed and ${h} hidden fields recompute to the leaf`,
    `الحقول المعروضة (${d}) والمخفية (${h}) تطابق بصمة القيد`,
    { leaf: toHex(leaf) }
  );
}

function inclusionCheck(bundle) {
  if (bundle.anchor === null) {
    return check(
      "inclusion",
      "unknown",
      "Not yet anchored: the bundle has no Merkle path",
      "لم يُثبَّت بعد في دفتر القيود المشترك"
    );
  }
  if (!verifyProof(bundle.leaf, bundle.anchor.proof, bundle.anchor.root)) {
    return failed(
      "inclusion",
      "The Merkle path does not lead from the leaf to the root",
      "مسار الإثبات لا يصل من بصمة القيد إلى الجذر"
    );
  }
  return check(
    "inclusion",
    "pass",
    `The leaf is in the batch tree (${bundle.anchor.proof.length} steps)`,
    "القيد ضمن دفعة التثبيت",
    { root: toHex(bundle.anchor.root) }
  );
}

function sameDeployment(bundle, chain) {
  return (
    sameInt(bundle.chainId, chain.chainId) &&
    bundle.ledger === chain.ledger.toLowerCase() &&
    bundle.registry === chain.registry.toLowerCase()
  );
}

async function anchoredCheck(bundle, chain) {
  if (!sameInt(bundle.chainId, chain.chainId) || bundle.ledger !== chain.ledger.toLowerCase()) {
    return [
      failed(
        "anchored",
        `The bundle names ledger ${bundle.ledger} on chain ID ${bundle.chainId}; the ledger ` +
          `checked is ${chain.ledger.toLowerCase()} on chain ID ${chain.chainId}`,
        "المستند يشير إلى دفتر قيود غير الدفتر الذي يُتحقَّق فيه"
      ),
      null,
    ];
  }
  if (bundle.anchor === null) {
    return [check("anchored", "unknown", "Not yet anchored", "لم يُثبَّت بعد"), null];
  }
  const batch = await chain.batch(bundle.agency, bundle.anchor.root);
  if (batch === null || batch === undefined) {
    return [
      failed(
        "anchored",
        `Agency ${bundle.agency} never anchored this root on the ledger (chain ID ${chain.chainId})`,
        `الجهة ${bundle.agency} لم تُثبِّت هذا الجذر في دفتر القيود المشترك`
      ),
      null,
    ];
  }
  if (batch.recordType !== bundle.recordType) {
    return [
      failed(
        "anchored",
        `The root was anchored for ${pyRepr(batch.recordType)} records, not ${pyRepr(bundle.recordType)}`,
        "الجذر مثبت لنوع قيود آخر"
      ),
      null,
    ];
  }
  const details = {
    block: batch.blockNumber,
    timestamp: batch.timestamp,
    seq: batch.seq,
    count: batch.count,
  };
  return [
    check(
      "anchored",
      "pass",
      `Anchored by ${bundle.agency} in block ${batch.blockNumber} (batch ${batch.seq} of its log)`,
      `مُثبَّت من الجهة ${bundle.agency} في الكتلة ${batch.blockNumber}`,
      details
    ),
    batch,
  ];
}

async function authorityCheck(bundle, chain, signer, batch) {
  if (bundle.registry !== chain.registry.toLowerCase()) {
    return failed(
      "authority",
      `The bundle names registry ${bundle.registry}; the ledger's is ${chain.registry.toLowerCase()}`,
      "المستند يشير إلى سجل جهات غير المعتمد"
    );
  }
  const status = await chain.agencyStatus(bundle.agency);
  if (status === AgencyStatus.NONE) {
    return failed(
      "authority",
      `Agency ${bundle.agency} is not registered`,
      `الجهة ${bundle.agency} غير مسجلة`
    );
  }
  if (signer === null) {
    return check(
      "authority",
      "unknown",
      "The receipt's signer is unknown (bad signature)",
      "تعذر معرفة الموقّع"
    );
  }
  const block = batch !== null ? batch.blockNumber : await chain.latestBlock();
  if (!(await chain.signerValidAt(bundle.agency, signer, block))) {
    return failed(
      "authority",
      `${signer} was not a signer of ${bundle.agency} at block ${block}`,
      `الموقّع ${signer} لم يكن مفوضاً عن الجهة ${bundle.agency} في الكتلة ${block}`
    );
  }
  const active = status === AgencyStatus.ACTIVE;
  return check(
    "authority",
    "pass",
    `Signed by ${signer}, a signer of ${bundle.agency} at block ${block}${
      active ? "" : " (the agency is suspended now)"
    }`,
    `موقّع من مفوض معتمد عن الجهة ${bundle.agency}${active ? "" : " (الجهة موقوفة حالياً)"}`,
    { signer, block, agencyStatus: AGENCY_STATUS_NAMES[status] }
  );
}

async function statusCheck(bundle, chain) {
  const info = await chain.leafStatus(bundle.agency, bundle.leaf);
  if (info.state === LeafState.CURRENT) {
    return check("status", "pass", "Current: neither superseded nor revoked", "ساري: لم يُعدَّل ولم يُلغَ");
  }
  if (info.state === LeafState.SUPERSEDED) {
    const successor = toHex(info.successor);
    return failed(
      "status",
      `Superseded by a newer version (leaf ${successor}) in block ${info.blockNumber}`,
      "صدر إصدار أحدث من هذا القيد",
      { state: "superseded", successor, reason: info.reason, block: info.blockNumber }
    );
  }
  const [en, ar] = REVOCATION_REASONS[info.reason] ?? [
    `reason code ${info.reason}`,
    `السبب رقم ${info.reason}`,
  ];
  return failed("status", `Revoked in block ${info.blockNumber}: ${en}`, `مُلغى: ${ar}`, {
    state: "revoked",
    reason: info.reason,
    block: info.blockNumber,
  });
}

/** [recovered signer, null] when the receipt's signature is good; [null, a failed check] when not. */
function receiptSignatureCheck(bundle) {
  let signer;
  try {
    const message = { ...bundle, intakeTime: bundle.receipt.intakeTime, anchorBy: bundle.receipt.anchorBy };
    signer = recoverSigner(
      receiptDigest(message, { chainId: bundle.chainId, ledger: bundle.ledger }),
      bundle.receipt.signature
    );
  } catch (error) {
    if (!(error instanceof LedgerError)) throw error;
    return [
      null,
      failed("receipt", `The receipt signature is invalid: ${error.message}`, "توقيع الإيصال غير صحيح"),
    ];
  }
  if (signer !== bundle.receipt.signer) {
    return [
      null,
      failed(
        "receipt",
        `The receipt was signed by ${signer}, not by ${bundle.receipt.signer}`,
        "الإيصال موقّع من غير الموقّع المذكور"
      ),
    ];
  }
  return [signer, null];
}

function promiseCheck(bundle, batch, now, anchored) {
  const anchorBy = bundle.receipt.anchorBy;
  if (batch !== null) {
    const details = { anchorBy, anchoredAt: batch.timestamp };
    if (batch.timestamp <= anchorBy) {
      return check(
        "receipt",
        "pass",
        "Valid receipt; anchored by the promised time",
        "إيصال صحيح، وتم التثبيت في الموعد",
        details
      );
    }
    return failed(
      "receipt",
      `Anchored at ${batch.timestamp}, after the promised ${anchorBy}`,
      "تم التثبيت بعد الموعد المتعهد به",
      details
    );
  }
  if (anchored.outcome === "unknown" && bundle.anchor !== null) {
    // The chain was not asked (unreachable): when the leaf was anchored is not known either.
    return check(
      "receipt",
      "unknown",
      "Valid receipt; when it was anchored could not be checked",
      "إيصال صحيح، وتعذر التحقق من موعد التثبيت",
      { anchorBy }
    );
  }
  if (anchored.outcome === "fail" || now <= anchorBy) {
    return check(
      "receipt",
      "unknown",
      `Valid receipt; anchoring promised by ${anchorBy}`,
      "إيصال صحيح، بانتظار التثبيت",
      { anchorBy }
    );
  }
  return failed(
    "receipt",
    `Not anchored by the promised time ${anchorBy}`,
    "لم يتم التثبيت في الموعد المتعهد به",
    { anchorBy }
  );
}

function verdictOf(checks, badSignature, bundle) {
  const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
  const core = ["integrity", "inclusion", "anchored", "authority"].map((n) => byName[n].outcome);
  if (core.includes("fail") || badSignature) return "not-authentic";
  const status = byName.status;
  if (status.outcome === "fail") return status.details.state === "revoked" ? "revoked" : "superseded";
  if (bundle.anchor === null && byName.authority.outcome !== "unknown" && status.outcome !== "unknown") {
    return "pending";
  }
  if (core.includes("unknown") || status.outcome === "unknown") return "unknown";
  return "authentic-current";
}
