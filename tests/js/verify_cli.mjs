// Verifies bundle files with the browser verifier against a JSON-RPC endpoint, one JSON report
// per line on stdout (the form of Python's VerificationReport.to_json()). For
// tests/python/test_js_verifier.py, which compares these reports with Python's on a real chain.
//
//   node tests/js/verify_cli.mjs <rpc-url> <ledger-address> <now> <bundle files...>

import { readFileSync } from "node:fs";

import { RpcChain, verify } from "../../api/web/sijill-verify.js";

const [url, ledger, now, ...files] = process.argv.slice(2);
if (!url || !ledger || !/^\d+$/.test(now ?? "")) {
  process.stderr.write(
    "usage: node tests/js/verify_cli.mjs <rpc-url> <ledger-address> <now> <bundle files...>\n"
  );
  process.exit(2);
}

// Integers beyond 2^53 are BigInt in a report; JSON has no such limit, so write their digits.
const line = (report) =>
  JSON.stringify(report, (_, value) => (typeof value === "bigint" ? `@@big:${value}@@` : value)).replace(
    /"@@big:(-?\d+)@@"/g,
    "$1"
  );

const chain = new RpcChain(url, { ledger });
for (const file of files) {
  // Bytes, as Python's verifier reads a file: the same UTF-8 rules apply to both.
  const report = await verify(new Uint8Array(readFileSync(file)), chain, { now: Number(now) });
  process.stdout.write(line(report) + "\n");
}
