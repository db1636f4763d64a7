// Shared by tests/js/*.test.mjs: the published vectors, the Python reference as an oracle
// (tests/js/oracle.py, run with the repository's .venv), and a few converters.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const PYTHON = `${ROOT}.venv/bin/python`;

/** Tests that ask Python live are skipped, saying why, where the virtualenv is missing. */
export const NEEDS_PYTHON = existsSync(PYTHON) ? false : "no .venv/bin/python: run `make setup`";

export function vector(name) {
  return JSON.parse(readFileSync(`${ROOT}tests/vectors/${name}`, "utf8"));
}

export function fixture(name) {
  return JSON.parse(readFileSync(new URL(`fixtures/${name}`, import.meta.url), "utf8"));
}

/** Ask the Python reference: one process for a whole list of requests (see oracle.py). */
export function oracle(requests) {
  const result = spawnSync(PYTHON, [`${ROOT}tests/js/oracle.py`], {
    input: JSON.stringify(requests),
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`oracle.py failed:\n${result.stderr}`);
  const answers = JSON.parse(result.stdout);
  if (answers.length !== requests.length)
    throw new Error("oracle.py answered a different number of requests");
  return answers;
}

/** What a JS call gives, in the oracle's answer form: {ok} or {error: [class, message]}. */
export function attempt(fn) {
  try {
    return { ok: plain(fn()) };
  } catch (error) {
    return { error: [error.constructor.name, error.message] };
  }
}

/** JSON-safe and comparable with the oracle: bytes as hex, BigInt as "big:<digits>". */
export function plain(value) {
  if (value instanceof Uint8Array) return "0x" + Buffer.from(value).toString("hex");
  if (typeof value === "bigint") return `big:${value}`;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** A parsed bundle back in its JSON form (ledger/bundle.py bundle_to_json), for comparison. */
export function bundleToJson(b) {
  return plain({
    format: "sijill-bundle/1",
    chainId: b.chainId,
    ledger: b.ledger,
    registry: b.registry,
    agency: b.agency,
    recordType: b.recordType,
    recordId: b.recordId,
    version: b.version,
    leaf: b.leaf,
    disclosed: b.disclosed.map((f) => ({ path: f.path, salt: f.salt, value: f.value })),
    hidden: b.hidden.map((h) => ({ path: h.path, hash: h.hash })),
    anchor: b.anchor === null ? null : { root: b.anchor.root, proof: b.anchor.proof },
    receipt: b.receipt,
  });
}

/** A report as JSON text would carry it (the non-enumerable `bundle` is left out by design). */
export function reportJson(report) {
  return plain(JSON.parse(JSON.stringify(report, (_, v) => (typeof v === "bigint" ? `big:${v}` : v))));
}
