#!/usr/bin/env bash
# Installs the official Strapi client (@strapi/client, pinned) once, from the npm registry, into a cache
# outside the repo, and prints the cached node_modules directory on stdout. Idempotent: a stamp file marks
# a finished install, so a failed or interrupted half-install is wiped and redone on the next call.
# Concurrent callers serialise on a lock. Modelled on ensure-strapi.sh.
#
#   nm=$(scripts/ensure-strapi-client.sh)        -> $cache/strapi-client-<version>/node_modules
#   NODE_PATH="$nm" node scripts/strapi-client-probe.js ...
#
# The e2e test of Strapi API tokens (e2e/strapi_api_token_test.go) runs scripts/strapi-client-probe.js with it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
# The newest 1.x when pinned (npm view @strapi/client versions).
STRAPI_CLIENT_VERSION=${STRAPI_CLIENT_VERSION:-1.6.2}
cache=${ACCESSPROXY_CACHE:-$HOME/.cache/strapi-access-proxy}
dir="$cache/strapi-client-$STRAPI_CLIENT_VERSION"
stamp="$dir/.installed"

install() {
  mkdir -p "$cache"
  exec 9>"$cache/strapi-client-$STRAPI_CLIENT_VERSION.lock"
  flock 9
  [ -f "$stamp" ] && return 0 # another caller finished it while we waited
  rm -rf "$dir"
  mkdir -p "$dir"
  printf '{"name":"strapi-client-cache","private":true,"version":"0.0.0"}\n' >"$dir/package.json"
  echo "installing @strapi/client $STRAPI_CLIENT_VERSION into $dir..." >&2
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --save-exact "@strapi/client@$STRAPI_CLIENT_VERSION" >&2)
  # Fail here, not in a test, if the package does not load or is not the pinned version.
  (cd "$dir" && node -e '
    const want = process.argv[1];
    const got = require("@strapi/client/package.json").version;
    if (got !== want) { console.error("@strapi/client " + got + " installed, want " + want); process.exit(1); }
    if (typeof require("@strapi/client").strapi !== "function") { console.error("@strapi/client exports no strapi()"); process.exit(1); }
  ' "$STRAPI_CLIENT_VERSION") >&2
  touch "$stamp"
}

[ -f "$stamp" ] || install
echo "$dir/node_modules"
