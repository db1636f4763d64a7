#!/usr/bin/env node
// Prints statement/branch/function/line coverage per contract from solidity-coverage's
// coverage.json (istanbul format) and fails when total branch coverage is below the floor.
"use strict";
const fs = require("fs");
const [file = "coverage.json", floorArg = "95"] = process.argv.slice(2);
const floor = Number(floorArg);
const data = JSON.parse(fs.readFileSync(file, "utf8"));
const pct = (hit, all) => (all === 0 ? 100 : (100 * hit) / all);
const totals = { s: [0, 0], b: [0, 0], f: [0, 0] };
for (const [path, cov] of Object.entries(data)) {
  const s = Object.values(cov.s);
  const b = Object.values(cov.b).flat();
  const f = Object.values(cov.f);
  const row = {
    s: [s.filter((n) => n > 0).length, s.length],
    b: [b.filter((n) => n > 0).length, b.length],
    f: [f.filter((n) => n > 0).length, f.length],
  };
  for (const k of Object.keys(totals)) {
    totals[k][0] += row[k][0];
    totals[k][1] += row[k][1];
  }
  const name = path.split("/").pop();
  console.log(
    `${name.padEnd(24)} statements ${pct(...row.s).toFixed(2)}%  branches ${pct(...row.b).toFixed(2)}% (${row.b[0]}/${row.b[1]})  functions ${pct(...row.f).toFixed(2)}%`,
  );
}
const branches = pct(...totals.b);
console.log(`TOTAL branch coverage ${branches.toFixed(2)}% (${totals.b[0]}/${totals.b[1]}), floor ${floor}%`);
if (branches < floor) {
  console.error(`branch coverage ${branches.toFixed(2)}% is below the ${floor}% floor`);
  process.exit(1);
}
