#!/usr/bin/env bash
# Installs Debian's chromium when it is missing (the console e2e test drives it headless over the
# DevTools protocol) and prints its path on stdout. Idempotent: an installed one is reused.
#   usage: "$(scripts/ensure-chromium.sh)" --headless --no-sandbox ...
set -euo pipefail
for c in chromium chromium-browser; do
  if p=$(command -v "$c"); then echo "$p"; exit 0; fi
done
echo "installing Debian's chromium (apt-get)..." >&2
sudo_=""
if [ "$(id -u)" != 0 ]; then sudo_=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo_ apt-get update -qq >&2
$sudo_ apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
command -v chromium
