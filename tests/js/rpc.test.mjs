// RpcChain against crafted chain endpoints: real HTTP servers on loopback, reached through the
// real fetch, that answer like the vector chain or like a broken or hostile node would. What is
// tested: the calls RpcChain sends (selectors and ABI arguments), how it decodes the answers
// (static and dynamic structs), and that every transport, JSON-RPC or decoding failure is
// ChainUnavailable, never a pass. No real chain answers nonsense on purpose, so these answers
// have to be made; the real chain (anvil, through the node's /rpc) is
// tests/python/test_js_verifier.py's and tests/python/test_verify_page.py's business.

import assert from "node:assert/strict";
import http from "node:http";
import { after, test } from "node:test";

import {
  ChainUnavailable,
  fromHex,
  MemoryChain,
  NoDeployment,
  RpcChain,
  toHex,
  utf8,
  verify,
} from "../../api/web/sijill-verify.js";
import { reportJson, vector } from "./helpers.mjs";

// Selectors as web3 computes them: Web3.keccak(text=signature)[:4] (see node/chain/rpcbatch.py).
const SELECTOR = {
  registry: "0x7b103999",
  batch: "0xe77f43d4",
  leafStatus: "0xd27c9c92",
  agencyInfo: "0xd3732cf6",
  isSignerValidAt: "0x2d65d64f",
};
const vectors = vector("bundles.json");
const LEDGER = vectors.chain.ledger;
const REGISTRY = vectors.chain.registry;
const SIGNER = Object.keys(vectors.chain.signers)[0];

const word = (n) => BigInt(n).toString(16).padStart(64, "0");
const text32 = (s) => Buffer.from(s).toString("hex").padEnd(64, "0");
const abiString = (s) => {
  const hex = Buffer.from(s).toString("hex");
  return word(hex.length / 2) + hex.padEnd(Math.ceil(hex.length / 64) * 64, "0");
};

const servers = [];
after(() => {
  for (const node of servers) {
    node.server.close();
    assert.deepEqual(node.violations, [], "requests RpcChain should not have sent");
  }
});

/** An HTTP server on loopback answering like the vector chain, ABI-encoded, with overrides per
 * selector; records every call, and every request that breaks the rules in `violations`. */
async function fakeNode(overrides = {}) {
  const calls = [];
  const violations = [];
  const batches = new Map(vectors.chain.batches.map((b) => [b.agency + b.root.slice(2), b]));
  const leaves = new Map(vectors.chain.leaves.map((x) => [x.agency + x.leaf.slice(2), x]));
  const states = ["current", "superseded", "revoked"];
  const answers = {
    eth_chainId: () => "0x7a69",
    eth_blockNumber: () => "0x78",
    [SELECTOR.registry]: () => "0x" + word(BigInt(REGISTRY)),
    [SELECTOR.batch]: (args) => {
      const b = batches.get(
        Buffer.from(args.slice(0, 64), "hex").toString().replace(/\0+$/, "") + args.slice(64, 128)
      );
      if (!b) return "0x" + "0".repeat(64 * 5);
      return "0x" + text32(b.recordType) + word(b.seq) + word(b.block) + word(b.timestamp) + word(b.count);
    },
    [SELECTOR.leafStatus]: (args) => {
      const x = leaves.get(
        Buffer.from(args.slice(0, 64), "hex").toString().replace(/\0+$/, "") + args.slice(64, 128)
      );
      if (!x) return "0x" + "0".repeat(64 * 4);
      return "0x" + word(states.indexOf(x.state)) + word(x.reason) + word(x.block) + x.successor.slice(2);
    },
    [SELECTOR.agencyInfo]: (args) => {
      const code = Buffer.from(args.slice(0, 64), "hex").toString().replace(/\0+$/, "");
      const status = ["none", "active", "suspended"].indexOf(vectors.chain.agencies[code] ?? "none");
      const name = status ? `هيئة ${code} Registry` : "";
      return "0x" + word(32) + word(128) + word(status) + word(1) + word(7) + abiString(name);
    },
    [SELECTOR.isSignerValidAt]: (args) => {
      const code = Buffer.from(args.slice(0, 64), "hex").toString().replace(/\0+$/, "");
      const account = "0x" + args.slice(64 + 24, 128);
      const entry = vectors.chain.signers[account];
      const block = BigInt("0x" + args.slice(128, 192));
      return (
        "0x" +
        word(
          entry && entry[0] === code && BigInt(entry[1]) <= block && block <= 18446744073709551615n ? 1 : 0
        )
      );
    },
    ...overrides,
  };
  const handle = async (init) => {
    const request = JSON.parse(init.body);
    calls.push(request);
    assert.equal(init.method, "POST");
    assert.equal(init.headers["Content-Type"], "application/json");
    assert.equal(request.jsonrpc, "2.0");
    let key = request.method;
    let args = "";
    if (key === "eth_call") {
      const [{ to, data, ...rest }, block] = request.params;
      assert.deepEqual(rest, {}, "only to and data: what api/rpcproxy.py lets through");
      assert.equal(block, "latest");
      assert.equal(to, to.toLowerCase());
      key = data.slice(0, 10);
      args = data.slice(10);
      request.to = to;
    }
    const answer = answers[key];
    if (!answer)
      return new Response(
        JSON.stringify({ jsonrpc: "2.0", id: request.id, error: { code: -32601, message: "nope" } })
      );
    const result = answer(args, request);
    if (result instanceof Response) return result;
    return new Response(JSON.stringify({ jsonrpc: "2.0", id: request.id, result }), { status: 200 });
  };
  const node = { calls, violations, down: false, server: null, url: "" };
  node.server = http.createServer(async (req, res) => {
    if (node.down) return req.socket.destroy(); // like a node that is not there
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    let reply;
    try {
      const headers = { "Content-Type": req.headers["content-type"] };
      reply = await handle({ method: req.method, headers, body: Buffer.concat(chunks).toString() });
    } catch (error) {
      violations.push(String(error));
      reply = new Response("refused", { status: 400 });
    }
    res.writeHead(reply.status, { "content-type": "application/json" });
    res.end(Buffer.from(await reply.arrayBuffer()));
  });
  await new Promise((resolve) => node.server.listen(0, "127.0.0.1", resolve));
  node.url = `http://127.0.0.1:${node.server.address().port}/rpc`;
  servers.push(node);
  return node;
}

const chainOf = (node, options = {}) => new RpcChain(node.url, { ledger: LEDGER, ...options });

test("init reads the chain id and the ledger's registry; the five questions decode", async () => {
  const node = await fakeNode();
  const chain = chainOf(node);
  await chain.init();
  assert.equal(chain.chainId, 31337);
  assert.equal(chain.registry, REGISTRY);
  assert.equal(chain.ledger, LEDGER);
  const [b] = vectors.chain.batches;
  assert.deepEqual(await chain.batch("REPD", fromHex(b.root)), {
    recordType: "title",
    seq: 1,
    blockNumber: 101,
    timestamp: 1790000300,
    count: 5,
  });
  assert.equal(await chain.batch("CSO", fromHex(b.root)), null);
  const revoked = vectors.chain.leaves.find((x) => x.state === "revoked");
  assert.deepEqual(await chain.leafStatus("REPD", fromHex(revoked.leaf)), {
    state: 2,
    reason: 2,
    blockNumber: 110,
    successor: new Uint8Array(32),
  });
  assert.equal((await chain.leafStatus("REPD", new Uint8Array(32))).state, 0);
  assert.equal(await chain.agencyStatus("REPD"), 1);
  assert.deepEqual(await chain.agencyInfo("CRA"), {
    status: 1,
    name: "هيئة CRA Registry",
    council: true,
    registeredAt: 7,
  });
  assert.deepEqual(await chain.agencyInfo("XYZ"), { status: 0, name: "", council: true, registeredAt: 7 });
  assert.equal(await chain.signerValidAt("REPD", SIGNER, 101), true);
  assert.equal(await chain.signerValidAt("CSO", SIGNER, 101), false);
  assert.equal(await chain.latestBlock(), 120);
  // What went over the wire: the selectors and ABI words web3 would send.
  const isSigner = node.calls.find((c) => c.params[0]?.data?.startsWith(SELECTOR.isSignerValidAt));
  assert.equal(
    isSigner.params[0].data,
    SELECTOR.isSignerValidAt + text32("REPD") + "0".repeat(24) + SIGNER.slice(2) + word(101)
  );
  assert.equal(isSigner.to, REGISTRY);
  const batchCall = node.calls.find((c) => c.params[0]?.data?.startsWith(SELECTOR.batch));
  assert.equal(batchCall.params[0].data, SELECTOR.batch + text32("REPD") + b.root.slice(2));
  assert.equal(batchCall.to, LEDGER);
});

test("verify over RpcChain gives the MemoryChain report for every vector", async () => {
  const memory = MemoryChain.fromJson(vectors.chain);
  for (const c of vectors.cases) {
    const rpc = chainOf(await fakeNode()); // verify calls init itself
    assert.deepEqual(
      reportJson(await verify(c.bundle, rpc, { now: c.now })),
      reportJson(await verify(c.bundle, memory, { now: c.now })),
      c.name
    );
  }
});

const failures = {
  "HTTP 503": () => new Response("down for maintenance", { status: 503 }),
  "not JSON": () => new Response("<html>", { status: 200 }),
  "another id": (_, r) => new Response(JSON.stringify({ jsonrpc: "2.0", id: r.id + 1, result: "0x" })),
  "no result": (_, r) => new Response(JSON.stringify({ jsonrpc: "2.0", id: r.id })),
  "an array": () => new Response("[]"),
  "an error object": (_, r) =>
    new Response(
      JSON.stringify({ jsonrpc: "2.0", id: r.id, error: { code: 3, message: "execution reverted" } })
    ),
  "no contract (empty answer)": () => "0x",
  "too short": () => "0x" + "00".repeat(20),
  "odd hex": () => "0x123",
  "not hex": () => "0xzz",
  "a number": () => 5,
};

test("every failure is ChainUnavailable, for every question", async () => {
  const [b] = vectors.chain.batches;
  const questions = {
    [SELECTOR.batch]: (c) => c.batch("REPD", fromHex(b.root)),
    [SELECTOR.leafStatus]: (c) => c.leafStatus("REPD", new Uint8Array(32)),
    [SELECTOR.agencyInfo]: (c) => c.agencyStatus("REPD"),
    [SELECTOR.isSignerValidAt]: (c) => c.signerValidAt("REPD", SIGNER, 1),
  };
  for (const [name, failure] of Object.entries(failures)) {
    for (const [selector, ask] of Object.entries(questions)) {
      const chain = chainOf(await fakeNode({ [selector]: failure }));
      await chain.init();
      await assert.rejects(ask(chain), ChainUnavailable, `${name} for ${selector}`);
    }
    await assert.rejects(chainOf(await fakeNode({ [SELECTOR.registry]: failure })).init(), ChainUnavailable, name);
    if (name === "odd hex") continue; // 0x123 is a fine quantity (eth_chainId, eth_blockNumber)
    await assert.rejects(chainOf(await fakeNode({ eth_chainId: failure })).init(), ChainUnavailable, name);
    await assert.rejects(
      chainOf(await fakeNode({ eth_blockNumber: failure })).latestBlock(),
      ChainUnavailable,
      name
    );
  }
});

test("answers that decode to nonsense are ChainUnavailable", async () => {
  const [b] = vectors.chain.batches;
  const root = fromHex(b.root);
  const bad = {
    "a record type that is no code": [
      SELECTOR.batch,
      () => "0x" + "ff".repeat(32) + word(1) + word(1) + word(1) + word(1),
      (c) => c.batch("REPD", root),
    ],
    "a uint64 with high bits": [
      SELECTOR.batch,
      () => "0x" + text32("title") + "ff" + word(1).slice(2) + word(1) + word(1) + word(1),
      (c) => c.batch("REPD", root),
    ],
    "leaf state 3": [
      SELECTOR.leafStatus,
      () => "0x" + word(3) + word(0) + word(0) + word(0),
      (c) => c.leafStatus("REPD", root),
    ],
    "a bool of 2": [
      SELECTOR.isSignerValidAt,
      () => "0x" + word(2),
      (c) => c.signerValidAt("REPD", SIGNER, 1),
    ],
    "agency status 3": [
      SELECTOR.agencyInfo,
      () => "0x" + word(32) + word(128) + word(3) + word(1) + word(7) + abiString("x"),
      (c) => c.agencyInfo("REPD"),
    ],
    "a string past the end": [
      SELECTOR.agencyInfo,
      () => "0x" + word(32) + word(128) + word(1) + word(1) + word(7) + word(99) + "00".repeat(32),
      (c) => c.agencyInfo("REPD"),
    ],
    "an offset past the end": [
      SELECTOR.agencyInfo,
      () => "0x" + word(4096) + word(128),
      (c) => c.agencyInfo("REPD"),
    ],
    "a name that is not UTF-8": [
      SELECTOR.agencyInfo,
      () => "0x" + word(32) + word(128) + word(1) + word(1) + word(7) + word(2) + "ff".repeat(32),
      (c) => c.agencyInfo("REPD"),
    ],
    "a registry with high bits": [
      SELECTOR.registry,
      () => "0x" + "01" + word(BigInt(REGISTRY)).slice(2),
      (c) => c.init(),
    ],
  };
  for (const [name, [selector, answer, ask]] of Object.entries(bad)) {
    const chain = chainOf(await fakeNode({ [selector]: answer }));
    if (selector !== SELECTOR.registry) await chain.init();
    await assert.rejects(ask(chain), ChainUnavailable, name);
  }
});

test("transport failures: refused, timed out", async () => {
  // A node that accepts the connection and hangs up: fetch fails.
  const gone = await fakeNode();
  gone.down = true;
  await assert.rejects(new RpcChain(gone.url, { ledger: LEDGER }).init(), {
    name: "ChainUnavailable",
    message: `cannot reach ${gone.url}: fetch failed`,
  });
  // A node that takes the request and never answers.
  const silent = http.createServer(() => {});
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const slowUrl = `http://127.0.0.1:${silent.address().port}/rpc`;
  const slow = new RpcChain(slowUrl, { ledger: LEDGER, timeoutMs: 50 });
  await assert.rejects(slow.latestBlock(), {
    name: "ChainUnavailable",
    message: `${slowUrl} did not answer within 50 ms`,
  });
  silent.closeAllConnections();
  silent.close();
  // A port nobody listens on.
  const closed = new RpcChain("http://127.0.0.1:9/", { ledger: LEDGER, timeoutMs: 2000 });
  await assert.rejects(closed.init(), ChainUnavailable);
});

test("an unreachable chain: verify reports unknown, as Python does, and a later call retries init", async () => {
  const node = await fakeNode();
  node.down = true;
  const chain = chainOf(node);
  const c = vectors.cases[0];
  const report = await verify(c.bundle, chain, { now: c.now });
  assert.equal(report.verdict, "unknown");
  assert.deepEqual(
    report.checks.map((x) => [x.name, x.outcome, x.reason.ar]),
    [
      ["integrity", "pass", report.checks[0].reason.ar],
      ["inclusion", "pass", report.checks[1].reason.ar],
      ["anchored", "unknown", "تعذر الاتصال بدفتر القيود المشترك"],
      ["authority", "unknown", "تعذر الاتصال بدفتر القيود المشترك"],
      ["status", "unknown", "تعذر الاتصال بدفتر القيود المشترك"],
      ["receipt", "unknown", "إيصال صحيح، وتعذر التحقق من موعد التثبيت"], // as ledger/verify.py says
    ]
  );
  assert.equal(
    report.checks[2].reason.en,
    `The ledger could not be asked: cannot reach ${node.url}: fetch failed`
  );
  node.down = false;
  assert.equal((await verify(c.bundle, chain, { now: c.now })).verdict, "authentic-current");
});

test("no RecordLedger at the ledger address: NoDeployment, and verify says so in a sentence (unknown)", async () => {
  const reverted = (_, r) =>
    new Response(JSON.stringify({ jsonrpc: "2.0", id: r.id, error: { code: 3, message: "execution reverted" } }));
  const noLedger = "so whether this record was anchored cannot be checked";
  const cases = [
    {
      name: "no code (an empty address or an account)",
      node: { [SELECTOR.registry]: () => "0x", eth_getCode: () => "0x" },
      contract: false,
      en: `There is no contract at ledger ${LEDGER} (chain ID 31337), ${noLedger}`,
      ar: `لا يوجد عقد على العنوان ${LEDGER}، فلا يمكن التحقق من تثبيت هذا القيد`,
    },
    {
      name: "a contract without registry()",
      node: { [SELECTOR.registry]: reverted, eth_getCode: () => "0x6080604052" },
      contract: true,
      en: `The contract at ${LEDGER} (chain ID 31337) is not a RecordLedger, ${noLedger}`,
      ar:
        `العقد على العنوان ${LEDGER} ليس دفتر القيود المشترك (RecordLedger)، ` +
        "فلا يمكن التحقق من تثبيت هذا القيد",
    },
    {
      name: "a contract whose registry() answers too little",
      node: { [SELECTOR.registry]: () => "0x" + "00".repeat(20), eth_getCode: () => "0x6080604052" },
      contract: true,
    },
  ];
  const c = vectors.cases[0];
  for (const { name, node: overrides, contract, en, ar } of cases) {
    const node = await fakeNode(overrides);
    const error = await chainOf(node).init().catch((e) => e);
    assert.ok(error instanceof NoDeployment && error instanceof ChainUnavailable, name);
    assert.deepEqual([error.chainId, error.ledger, error.contract], [31337, LEDGER, contract], name);
    const getCode = node.calls.find((call) => call.method === "eth_getCode");
    assert.deepEqual(getCode.params, [LEDGER, "latest"], name);
    const report = await verify(c.bundle, chainOf(node), { now: c.now });
    assert.equal(report.verdict, "unknown", name);
    for (const check of report.checks.slice(2, 5)) {
      assert.equal(check.outcome, "unknown", `${name}: ${check.name}`);
      assert.deepEqual(check.reason, error.reason, `${name}: ${check.name}`);
    }
    if (en) assert.deepEqual(error.reason, { en, ar }, name);
  }
  // A deployed ledger is never asked for its code (a node's /rpc does not offer eth_getCode).
  const deployed = await fakeNode();
  assert.equal((await verify(c.bundle, chainOf(deployed), { now: c.now })).verdict, "authentic-current");
  assert.ok(!deployed.calls.some((call) => call.method === "eth_getCode"));
  // An endpoint without eth_getCode, or one that fails asking it: the registry() failure stands.
  const withoutGetCode = await fakeNode({ [SELECTOR.registry]: () => "0x" });
  const plain = await chainOf(withoutGetCode).init().catch((e) => e);
  assert.ok(plain instanceof ChainUnavailable && !(plain instanceof NoDeployment));
  assert.match(plain.message, /^registry\(\) at 0x[0-9a-f]{40}: the answer is 0 bytes/);
  const broken = await fakeNode({
    [SELECTOR.registry]: () => "0x",
    eth_getCode: () => new Response("down", { status: 503 }),
  });
  const down = await chainOf(broken).init().catch((e) => e);
  assert.ok(down instanceof ChainUnavailable && !(down instanceof NoDeployment));
  assert.equal(down.message, `${broken.url} answered HTTP 503`);
});

test("the constructor refuses a bad ledger address; fetch is called as a plain function", async () => {
  assert.throws(
    () => new RpcChain("http://x", { ledger: "0x1234" }),
    /ledger: expected 0x and 40 hex digits/
  );
  assert.throws(() => new RpcChain("http://x", {}), /ledger/);
  // A browser's fetch throws "Illegal invocation" when called as a method of another object.
  const node = await fakeNode();
  const strictFetch = function (url, init) {
    assert.equal(this, undefined);
    return fetch(url, init);
  };
  await new RpcChain(node.url, {
    ledger: LEDGER.toUpperCase().replace("0X", "0x"),
    fetch: strictFetch,
  }).init();
});

test("the module uses no Node APIs and no crypto.subtle (it must run unchanged in a browser)", async () => {
  const { readdirSync, readFileSync } = await import("node:fs");
  const web = new URL("../../api/web/", import.meta.url);
  const source = readFileSync(new URL("sijill-verify.js", web), "utf8");
  // Its only imports: the audited noble modules the node serves beside it (scripts/vendor-web.mjs).
  assert.deepEqual(
    [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]),
    ["./vendor/@noble/curves/secp256k1.js", "./vendor/@noble/hashes/sha3.js"]
  );
  const vendored = readdirSync(new URL("vendor/", web), { recursive: true }).filter((f) => f.endsWith(".js"));
  assert.ok(vendored.length > 0, "no vendored modules: run `make setup`");
  const modules = [
    source.replace(/^import .* from "\.\/vendor\/[^"]+";$/gm, ""),
    ...vendored.map((f) => readFileSync(new URL(`vendor/${f}`, web), "utf8")),
  ];
  for (const text of modules) {
    const code = text.replace(/\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
    for (const forbidden of [
      /\brequire\s*\(/,
      /\bBuffer\b/,
      /\bprocess\./,
      /crypto\.subtle/,
      /from\s+["']node:/,
      /\bimport\s*\(/,
      /from\s+["'](?![.]{1,2}\/)/, // a package name: a browser resolves only relative paths here
    ]) {
      assert.doesNotMatch(code, forbidden);
    }
  }
  assert.equal(toHex(utf8("ok")), "0x6f6b");
});
