// Hardhat 2 (Hardhat 3 needs Node 22). Offline: the compiler is the npm `solc` package's
// soljson.js, never a download. Compiler version and settings come from contracts/compiler.json,
// the one place every build (Hardhat, coverage, py-solc-x) reads them from.
require("@nomicfoundation/hardhat-ethers");
require("@nomicfoundation/hardhat-chai-matchers");
require("solidity-coverage");

const path = require("path");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");
const compiler = require("./contracts/compiler.json");

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  const solcPackage = require("solc/package.json");
  if (args.solcVersion !== solcPackage.version) {
    throw new Error(
      `contracts/compiler.json pins solc ${args.solcVersion} but node_modules has solc ${solcPackage.version}; run npm ci`,
    );
  }
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: solcPackage.version,
    longVersion: require("solc").version(),
  };
});

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: {
    version: compiler.version,
    settings: compiler.settings,
  },
  paths: {
    sources: "./contracts",
    tests: "./tests/contracts",
    cache: "./build/hardhat/cache",
    artifacts: "./build/hardhat/artifacts",
  },
  networks: {
    hardhat: {
      // Same fork rules as the Besu genesis (shanghaiTime) and the anvil dev chain.
      hardfork: "shanghai",
    },
  },
  mocha: { timeout: 60000 },
};
