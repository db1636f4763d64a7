# syntax=docker/dockerfile:1
# The Sijill image, used by the docker-compose.yml `sijill network init` writes (docs/besu.md):
# agency nodes (`sijill serve`) and the validators' init containers (`sijill network unlock-key`).
#
#   docker build -t sijill:0.1.0 .
#
# An agency node compiles the contracts when it starts, for their ABIs (node/chain/toolchain.py): the
# npm `solc` package run by Node through scripts/solcjs, over the OpenZeppelin sources, both at
# the versions package-lock.json pins. So the image carries Node.js and those two packages, and
# compiles once here, into build/solc/ (the cache the node then reads). The install is editable
# because node/chain/toolchain.py finds contracts/, node_modules/ and build/ beside its package.
#
# Only the files the image needs are copied (the build context also holds node_modules/, .venv/
# and .data/, which must not end up in it).

FROM node:20-bookworm-slim AS npm
WORKDIR /npm
COPY package-lock.json ./
COPY scripts/vendor-web.mjs scripts/vendor-web.mjs
# solc and @openzeppelin/contracts at the lock's versions, and the noble cryptography the verify
# page imports, copied into api/web/vendor/ as `make setup` does; the rest of package.json is
# Hardhat, tests and lint, which the image does not need.
RUN node -e 'const p = require("./package-lock.json").packages; \
      const v = (n) => p["node_modules/" + n].version; \
      const names = ["solc", "@openzeppelin/contracts", "@noble/curves", "@noble/hashes"]; \
      require("fs").writeFileSync("package.json", JSON.stringify({private: true, dependencies: \
        Object.fromEntries(names.map((n) => [n, v(n)]))}));' \
 && npm install --omit=dev --no-audit --no-fund --ignore-scripts \
 && node scripts/vendor-web.mjs

FROM python:3.11-slim-bookworm
# fonts-hosny-amiri, libpango-1.0-0, libpangoft2-1.0-0: the certificate PDF (WeasyPrint), as in
# scripts/system-packages.sh; libharfbuzz-subset0 lets WeasyPrint subset the font (optional to
# it, present where the certificate tests run). tzdata: the certificate's times are Egypt's
# (Africa/Cairo); the base image has it already, named here so that stays so, and installing it
# brings bookworm's latest rules. nodejs: runs scripts/solcjs. libpq5: psycopg's client library,
# for a node whose store is PostgreSQL (docs/storage.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      fonts-hosny-amiri libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 tzdata nodejs libpq5 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ledger ledger
COPY node node
COPY api api
COPY cli cli
COPY contracts contracts
COPY scripts/solcjs scripts/solcjs
COPY --from=npm /npm/node_modules node_modules
COPY --from=npm /npm/api/web/vendor api/web/vendor
RUN pip install --no-cache-dir -c constraints.txt -e . \
 && sijill compile \
 && useradd --uid 1000 --create-home sijill \
 && chown -R sijill:sijill /app/build
# uid 1000, like Besu's image; compose runs agency nodes as ${SIJILL_UID:-1000} (the owner of
# their data directories) and the init containers as root (they chown for Besu and unlock its
# key, then sleep as uid 1000 through setpriv, which util-linux in this image provides).
USER sijill
ENTRYPOINT ["sijill"]
CMD ["--help"]
