#!/usr/bin/env bash
# `make demo`: Traefik + the accessproxy plugin + sessionstore + the real Strapi 5 on localhost, in the
# foreground, with demo users and ready-to-paste curl lines. Ctrl-C stops all of it.
# Ports: DEMO_TRAEFIK_PORT (8080), DEMO_STORE_PORT (8181), DEMO_STRAPI_PORT (1337), or flags
# -traefik-port/-store-port/-strapi-port passed through.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d "${TMPDIR:-/tmp}/accessproxy-demo-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
(cd "$root/e2e" && go build -o "$bin/demo" ./cmd/demo)
cd "$root/e2e"
ACCESSPROXY_REPO="$root" "$bin/demo" "$@"
