#!/usr/bin/env bash
# Builds the pinned FerretDB (v1, embedded, pure-Go SQLite backend) once from the Go module proxy
# through the tiny helper module tools/ferretdb, and caches the binary outside the repo.
# Prints the binary's path on stdout. Idempotent: a cached binary is reused.
#   usage: "$(scripts/ensure-ferretdb.sh)" --listen 127.0.0.1:27017 --data-dir DIR [--log-level warn]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${ACCESSPROXY_CACHE:-$HOME/.cache/strapi-access-proxy}
bin="$cache/ferretdb-$FERRETDB_VERSION/ferretdb"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$(dirname "$bin")"
start=$(date +%s)
echo "building ferretdb $FERRETDB_VERSION from the Go module proxy (cold: ~5-10 min on 2 cores)..." >&2
(cd "$here/../tools/ferretdb" && CGO_ENABLED=0 GOWORK=off go build -trimpath -ldflags "-s -w" -o "$bin.tmp.$$" .)
mv "$bin.tmp.$$" "$bin"
echo "ferretdb built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
