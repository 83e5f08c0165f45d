#!/usr/bin/env bash
# `make bench`: the accessproxy plugin inside the real Traefik vs a plain route, measured with wrk on
# loopback; prints req/s, p50/p99 and the ratio, and updates docs/benchmarks.md
# ("## Plugin through real Traefik (wrk)"). Then the many-sessions measurement (issue 14): N sessions from
# real logins through the plugin, wrk cycling through their tokens, plus sessionstore's BenchmarkWrk; written
# to "## Many sessions (issue 14)". Flags pass through: -d 10s -c 32 -t 2 -rounds 5 -no-write,
# -many=false (skip it), -only-many, -sessions 1,1000,10000,100000, -many-d 6s, -many-rounds 2, -login-c 32,
# -direct-create 5000, -store-bench=false, -backend postgres (the store on a throwaway PostgreSQL). Everything: about 13 min on 2 cores (100 k logins at ~280/s: 6 min).
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
