#!/usr/bin/env bash
# `make bench`: the accessproxy plugin inside the real Traefik vs a plain route, measured with wrk on
# loopback; prints req/s, p50/p99 and the ratio, and updates docs/benchmarks.md
# ("## Plugin through real Traefik (wrk)"). Flags pass through: -d 10s -c 32 -t 2 -rounds 2 -no-write.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt-get)..." >&2
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y wrk >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi
"$root/scripts/ensure-traefik.sh" >/dev/null
bin=$(mktemp -d "${TMPDIR:-/tmp}/accessproxy-bench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
(cd "$root/e2e" && go build -o "$bin/bench" ./cmd/bench)
cd "$root/e2e"
ACCESSPROXY_REPO="$root" "$bin/bench" "$@"
