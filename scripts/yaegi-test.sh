#!/usr/bin/env bash
# Runs the plugin's tests under Yaegi, the interpreter Traefik loads plugins with: the plugin is
# copied to <tmp>/src/<module> and tested there with GOPATH=<tmp>, as Traefik's loader lays it out.
set -euo pipefail
yaegi=$1 module=$2
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dst="$tmp/src/$module"
mkdir -p "$dst"
cp -R "$root"/go.mod "$root"/*.go "$root"/.traefik.yml "$root"/testdata "$dst/"
# Fuzz targets need testing.F, which Yaegi does not provide; go test runs them. The differential
# tests run Strapi's own code in Node (os/exec, not in Yaegi's stdlib): `make diff_test` runs them.
rm -f "$dst"/*fuzz_test.go "$dst"/*_diff_test.go
cd "$dst"
GOPATH="$tmp" GOFLAGS= "$yaegi" test -v . 2>&1 | tee "$tmp/out.log" | grep -E '^(--- |FAIL|ok|PASS)' || true
if grep -qE '^(--- FAIL|FAIL)' "$tmp/out.log" || ! grep -qE '^(ok|PASS)' "$tmp/out.log"; then
	echo "yaegi test failed:"; grep -n -m5 -A12 -E '^(--- FAIL|panic:|fatal error:)' "$tmp/out.log" || true
	echo "(last lines)"; tail -30 "$tmp/out.log"; exit 1
fi
echo "yaegi test: $(grep -c '^--- PASS' "$tmp/out.log") tests passed under yaegi $(basename "$yaegi")"
