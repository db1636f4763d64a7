# Sijill: the two commands are `make run` (the demo: dev chain and three agency APIs) and `make test`.
# Each does its own set-up on a fresh machine: a virtualenv with pinned Python packages
# (constraints.txt), the npm packages of package-lock.json, and a few Debian packages
# (scripts/system-packages.sh: a font for certificates; Chromium, poppler and zbar for tests).
# The tests also get slither in .venv-slither/ (constraints-slither.txt: it needs web3 7, the
# project web3 8). `make audit-deps` (not part of `make test`) looks the pins up in npm's and
# PyPI's advisory data, where this machine reaches them (docs/dependencies.md). `make test-fast`
# is the inner loop: Python lint and the tests that need no chain, browser or node, in a minute.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SLITHER_VENV := .venv-slither
WEB_VENDOR := api/web/vendor/.copied
PORT   ?= 8545
API_PORT ?= 8601
# pytest workers: most chain tests wait on blocks (1 s) rather than on the CPU, so three
# workers on two cores cut the run by more than half. Each worker starts its own anvil; a
# file's tests stay on one worker (--dist loadfile), so module fixtures are made once.
PYTEST_WORKERS ?= 3
# The soak (scripts/soak.py, docs/soak.md): seconds of intake under faults; a seed to repeat a run.
SOAK_SECONDS ?= 300
SOAK_SEED ?=

.PHONY: run test test-fast setup setup-test lint lint-python test-contracts test-js test-python audit-deps soak bench coverage clean

run: setup
	$(BIN)/sijill demo --data-dir .data/demo --chain-port $(PORT) --api-port-base $(API_PORT)

test: setup-test lint test-contracts test-js test-python

setup: $(VENV)/.installed node_modules/.installed $(WEB_VENDOR)
	sh scripts/system-packages.sh run

setup-test: setup $(SLITHER_VENV)/.installed
	sh scripts/system-packages.sh test

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt --upgrade pip setuptools
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(SLITHER_VENV)/.installed: constraints-slither.txt
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/pip install --quiet -c constraints-slither.txt --upgrade pip setuptools
	$(SLITHER_VENV)/bin/pip install --quiet -c constraints-slither.txt slither-analyzer
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The audited cryptography the verify page imports (@noble/hashes, @noble/curves), copied from
# node_modules into api/web/vendor/, which every node serves; docs/certificates.md.
$(WEB_VENDOR): node_modules/.installed scripts/vendor-web.mjs
	node scripts/vendor-web.mjs
	touch $@

lint: lint-python
	npx solhint 'contracts/**/*.sol'

lint-python: setup
	$(BIN)/ruff check ledger node api cli scripts tests
	$(BIN)/ruff format --check ledger node api cli scripts tests
	$(BIN)/mypy

# The inner loop, in about a minute: Python lint, then the Python tests that need no chain, no
# browser, no running node and neither Hardhat nor slither (`pytest --fast`: those not marked
# `chain` or `toolchain`, tests/python/conftest.py). No .venv-slither/; the test packages of
# scripts/system-packages.sh (poppler, zbar) read certificates back. `make test` runs everything.
test-fast: lint-python
	sh scripts/system-packages.sh test
	$(BIN)/pytest --fast -q -n 2 --dist loadfile

# The Hardhat suite on the real bytecode (its gas bounds hold only there), then again under
# solidity-coverage, whose branch figure is printed and checked against the 95 % floor.
test-contracts: setup
	npx hardhat test
	npx hardhat coverage
	node scripts/check-coverage.js coverage.json 95

# The browser verifier (api/web/sijill-verify.js) against the same test vectors as ledger/.
test-js: setup
	node --test tests/js/

test-python: setup-test
	npx hardhat compile --quiet
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

# Not part of `make test`: minutes of intake while nodes are killed, anvil restarts and the RPC
# slows down, then proof against the chain that nothing accepted was lost or anchored twice.
soak: setup
	$(BIN)/python scripts/soak.py --seconds $(SOAK_SECONDS) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

# Not part of `make test`: every benchmark of issue 18 (scripts/bench_all.py), one after the other,
# 6 to 10 minutes on 2 cores; BENCH_QUICK=1 runs each for about a minute, to check they run.
# Writes build/bench/results.json and prints the table docs/performance.md keeps the history of.
bench: setup
	$(BIN)/python scripts/bench_all.py $(if $(BENCH_QUICK),--quick)

# npm audit and pip-audit (in a throwaway build/audit/venv) over the pins: what each reported,
# audited and not audited counted apart, in build/audit/. Exit 2: some packages not audited.
audit-deps: setup
	$(BIN)/python scripts/audit_dependencies.py

clean:
	rm -rf build coverage coverage.json .coverage_artifacts .coverage_cache
