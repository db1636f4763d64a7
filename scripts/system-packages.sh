#!/bin/sh
# Installs the Debian packages Sijill needs beyond Python and Node, if any are missing.
#   run:  the certificate PDF's font (Amiri) and WeasyPrint's Pango, tzdata (a certificate
#         shows Egypt's time, Africa/Cairo; api/certificate.py refuses to print without it) and
#         libpq5 (psycopg talks to a PostgreSQL store through it, docs/storage.md);
#   test: also Chromium (browser tests), poppler-utils (PDF to PNG/text), zbar-tools (reads
#         the QR code back from a rendered certificate) and postgresql (the PostgreSQL store's
#         tests start throwaway clusters with its binaries, tests/python/pg_cluster.py).
# Already-installed packages cost one dpkg query each, so `make` stays fast after the first run.
set -eu
packages="fonts-hosny-amiri libpango-1.0-0 libpangoft2-1.0-0 tzdata libpq5"
if [ "${1:-run}" = test ]; then
    packages="$packages chromium poppler-utils zbar-tools postgresql"
fi
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
