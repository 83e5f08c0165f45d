#!/usr/bin/env bash
# Builds the pinned Traefik once from the Go module proxy and caches the binary outside the repo.
# Prints the binary's path on stdout. Idempotent: a cached binary is reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
cache=${ACCESSPROXY_CACHE:-$HOME/.cache/strapi-access-proxy}
bin="$cache/traefik-$TRAEFIK_VERSION/traefik"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$cache"
start=$(date +%s)
echo "building traefik $TRAEFIK_VERSION from the Go module proxy (cold: ~15 min on 2 cores)..." >&2
dir=$(go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "go mod download did not give a source dir" >&2; exit 1; }
work=$(mktemp -d "$cache/traefik-src.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$dir/." "$work/"
chmod -R u+w "$work"
# The web UI is built by npm upstream and not part of the module; the embed only needs the folder.
mkdir -p "$work/webui/static"
[ -n "$(ls -A "$work/webui/static")" ] || echo '<!doctype html><title>traefik</title>' > "$work/webui/static/index.html"
(cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" -o "$work/traefik.bin" ./cmd/traefik)
mkdir -p "$(dirname "$bin")"
mv "$work/traefik.bin" "$bin.tmp" && mv "$bin.tmp" "$bin"
echo "traefik built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
