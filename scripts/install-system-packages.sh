#!/usr/bin/env bash
# Debian packages the test suite needs: Chromium (web-UI tests, rendered screenshot fixtures),
# redis-server (Redis Cluster tests) and fonts. Skips what is already there.
set -euo pipefail
PACKAGES=(chromium redis-server fonts-dejavu-core)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
