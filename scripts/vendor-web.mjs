// Copies the audited cryptography the browser verifier uses, keccak-256 from @noble/hashes and
// secp256k1 from @noble/curves, out of node_modules (the versions package-lock.json pins) into
// api/web/vendor/, where every node serves it (/web/vendor/...): the verify page loads nothing
// from outside the node, and its CSP allows scripts from the node only (docs/certificates.md).
//
// Only the modules the verifier's two imports reach are copied, each byte for byte, with one
// rule applied: a module that names a noble package by its npm name ('@noble/hashes/sha2.js', as
// @noble/curves does) gets the relative path of that package's copy instead ('../hashes/sha2.js').
// A browser cannot resolve a package name without an import map, and an import map is an inline
// script, which the page's `script-src 'self'` refuses. @noble/hashes names no package, so its
// files are copied unchanged. tests/python/test_citizen.py holds every served file to
// node_modules under exactly this rule. Each package's LICENSE is copied beside it.
//
//   node scripts/vendor-web.mjs      (`make setup` runs it after `npm ci`; it starts afresh)

import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const ENTRIES = ["@noble/hashes/sha3.js", "@noble/curves/secp256k1.js"];
const PACKAGES = ["@noble/hashes", "@noble/curves"];
const MODULES = path.resolve("node_modules");
const VENDOR = path.resolve("api/web/vendor");

// Static imports and re-exports as tsc writes them, one statement from the start of a line (so
// the examples in doc comments, which start with " * ", are not taken for imports).
const IMPORT =
  /^(?:import|export)\s+(?:[\w$*]+(?:\s+as\s+[\w$]+)?\s*,?\s*)?(?:\{[^}]*\}\s*)?(?:from\s*)?(["'])([^"']+)\1/gm;
const PACKAGE = /^@noble\/[a-z0-9-]+\//;

/** The package of a specifier and the file within it, `from` being "package/file" of the importer. */
function resolve(specifier, from) {
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    const [scope, name, ...rest] = from.split("/");
    const file = path.posix.normalize(path.posix.join(path.posix.dirname(rest.join("/")), specifier));
    if (file.startsWith("..")) throw new Error(`${from} imports ${specifier}, outside its package`);
    return `${scope}/${name}/${file}`;
  }
  const pkg = PACKAGES.find((p) => specifier.startsWith(p + "/"));
  if (!pkg) throw new Error(`${from} imports ${specifier}, which is not a noble package copied here`);
  return specifier;
}

/** A module's text as served: in its import statements, a noble package name becomes the
 * relative path of that package's copy; nothing else changes (comments keep the names). */
function served(text, file) {
  const dir = path.posix.dirname(file);
  return text.replace(IMPORT, (statement, quote, specifier) => {
    const pkg = specifier.match(PACKAGE)?.[0];
    if (!pkg) return statement;
    const relative = path.posix.relative(dir, pkg.slice(0, -1)) + "/" + specifier.slice(pkg.length);
    return statement.replace(quote + specifier + quote, quote + relative + quote);
  });
}

const todo = [...ENTRIES];
const done = new Set();
rmSync(VENDOR, { recursive: true, force: true });
while (todo.length) {
  const file = todo.pop();
  if (done.has(file)) continue;
  done.add(file);
  const text = readFileSync(path.join(MODULES, file), "utf8");
  for (const match of text.matchAll(IMPORT)) todo.push(resolve(match[2], file));
  mkdirSync(path.dirname(path.join(VENDOR, file)), { recursive: true });
  writeFileSync(path.join(VENDOR, file), served(text, file));
}
for (const pkg of PACKAGES) copyFileSync(path.join(MODULES, pkg, "LICENSE"), path.join(VENDOR, pkg, "LICENSE"));
console.log(`api/web/vendor: ${done.size} modules of ${PACKAGES.join(", ")}`);
