#!/usr/bin/env bash
# Makes sure PostgreSQL's server binaries (Debian's postgresql package, 15 on bookworm) are
# installed, and prints their directory (initdb, pg_ctl, postgres) on stdout. Idempotent: an
# installed server is only found, never reinstalled; nothing is downloaded into the repo.
# The tests start throwaway clusters from these binaries (sessionstore/internal/testdb/postgres).
#   ACCESSPROXY_POSTGRES_NO_INSTALL=1  only look (exit 1 when missing): what the tests use
set -euo pipefail
find_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; fi
	done | sort -V | tail -n 1
}
dir=$(find_bin)
if [ -z "$dir" ] && command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
	dir=$(pg_config --bindir)
fi
if [ -n "$dir" ]; then echo "$dir"; exit 0; fi
if [ -n "${ACCESSPROXY_POSTGRES_NO_INSTALL:-}" ]; then
	echo "postgresql is not installed (scripts/ensure-postgres.sh installs it)" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "postgresql is not installed: run 'sudo apt-get install -y postgresql' (or this script as root)" >&2
	exit 1
fi
start=$(date +%s)
echo "installing postgresql from Debian's packages..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq postgresql >&2 || { apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2; }
# The package starts a system cluster where it can; the tests never use it.
dir=$(find_bin)
[ -n "$dir" ] || { echo "postgresql installed but no initdb found under /usr/lib/postgresql" >&2; exit 1; }
echo "postgresql installed in $(( $(date +%s) - start ))s" >&2
echo "$dir"
