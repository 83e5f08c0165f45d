#!/usr/bin/env bash
# Installs the node_modules of the e2e Strapi 5 app (e2e/strapi) once, from the npm registry, into a cache
# outside the repo, and prints the cached node_modules directory on stdout. Idempotent: keyed by a hash of
# e2e/strapi/package.json + package-lock.json; a stamp file marks a finished install, so a failed or
# interrupted half-install is wiped and redone on the next call. Concurrent callers serialise on a lock.
#
#   scripts/ensure-strapi.sh            -> prints  $cache/strapi-<hash>/node_modules
#   scripts/ensure-strapi.sh --app DIR  -> also lays out a run-ready app in DIR (a copy of e2e/strapi without
#                                          node_modules/.tmp, plus a node_modules symlink) and prints DIR
#
# How the e2e harness (and the demo) run Strapi, per test run:
#   1. nm=$(scripts/ensure-strapi.sh)                       (cold: several minutes; warm: instant)
#   2. copy e2e/strapi (everything but node_modules, .tmp, dist, build, .strapi) into a fresh temp dir APP
#   3. ln -s "$nm" APP/node_modules   -- a symlink works with Strapi 5.54 (verified: Node resolves the real
#      path, Strapi only reads from node_modules and writes into APP/.tmp, APP/public, APP/database)
#   4. cd APP && env PORT=... DATABASE_FILENAME=APP/.tmp/data.db SEED_USERS_FILE=... DEFAULT_AUDIENCE=...
#        JWT_SECRET=... node node_modules/@strapi/strapi/bin/strapi.js start
#   5. wait for GET http://127.0.0.1:PORT/_health -> 204 (no auth needed)
# See e2e/strapi/README.md for every env var.
#
# better-sqlite3 is compiled from source (npm_config_nodedir=/usr, the Debian Node headers): only the npm
# registry is reachable here, so prebuilt-binary downloads would fail anyway.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.env"
src="$here/../e2e/strapi"
src=$(cd "$src" && pwd)
cache=${ACCESSPROXY_CACHE:-$HOME/.cache/strapi-access-proxy}

app_dir=
if [ "${1:-}" = "--app" ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 [--app DIR]" >&2; exit 2; }
  app_dir=$2
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--app DIR]" >&2; exit 2
fi

# package.json (and its lockfile) must pin every @strapi/* dependency to exactly STRAPI_VERSION.
node -e '
  const fs = require("fs"); const [dir, want] = process.argv.slice(1); const bad = [];
  const pkg = JSON.parse(fs.readFileSync(dir + "/package.json", "utf8")); const deps = pkg.dependencies || {};
  if (!deps["@strapi/strapi"]) bad.push("@strapi/strapi missing");
  for (const [n, v] of Object.entries(deps)) if (n.startsWith("@strapi/") && v !== want) bad.push(n + "@" + v);
  if (fs.existsSync(dir + "/package-lock.json")) {
    const lock = JSON.parse(fs.readFileSync(dir + "/package-lock.json", "utf8")).packages || {};
    for (const n of Object.keys(deps).filter((n) => n.startsWith("@strapi/"))) {
      const v = (lock["node_modules/" + n] || {}).version;
      if (v !== want) bad.push("package-lock.json " + n + "@" + v);
    }
  }
  if (bad.length) { console.error("e2e/strapi disagrees with STRAPI_VERSION=" + want + " (scripts/versions.env): " + bad.join(", ")); process.exit(1); }
' "$src" "$STRAPI_VERSION"

files=("$src/package.json")
[ -f "$src/package-lock.json" ] && files+=("$src/package-lock.json")
hash=$(cat "${files[@]}" | sha256sum | cut -c1-16)
dir="$cache/strapi-$hash"
stamp="$dir/.installed"

install() {
  mkdir -p "$cache"
  exec 9>"$cache/strapi-$hash.lock"
  flock 9
  [ -f "$stamp" ] && return 0 # another caller finished it while we waited
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "${files[@]}" "$dir/"
  start=$(date +%s)
  echo "installing Strapi $STRAPI_VERSION node_modules into $dir (cold: ~5 min on 2 cores, better-sqlite3 builds from source)..." >&2
  # `npm install`, not `npm ci`: it follows the shipped lockfile's versions, but npm (cli#4828) leaves the
  # other platforms' optional packages (@swc/core-darwin-*, @rollup/rollup-win32-*...) out of a lockfile
  # written on linux-x64, and `npm ci` refuses such a lockfile as "out of sync".
  (cd "$dir" && npm_config_nodedir=/usr npm_config_build_from_source=true \
    npm install --no-audit --no-fund --loglevel=error >&2)
  # Fail here, not at Strapi start-up, if the native sqlite module did not build.
  (cd "$dir" && node -e 'new (require("better-sqlite3"))(":memory:").prepare("select 1").get()') >&2
  touch "$stamp"
  echo "strapi node_modules installed in $(( $(date +%s) - start ))s" >&2
}

[ -f "$stamp" ] || install
nm="$dir/node_modules"

if [ -z "$app_dir" ]; then echo "$nm"; exit 0; fi

mkdir -p "$app_dir"
(cd "$src" && tar --exclude=./node_modules --exclude=./.tmp --exclude=./dist --exclude=./build \
  --exclude=./.strapi --exclude=./.cache -cf - .) | (cd "$app_dir" && tar -xf -)
ln -sfn "$nm" "$app_dir/node_modules"
(cd "$app_dir" && pwd)
