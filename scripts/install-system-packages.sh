#!/usr/bin/env bash
# Debian packages the test suite and the evaluation set need: Chromium (web-UI tests, rendered
# screenshots), redis-server (Redis Cluster tests), fonts, and the documentation sites and
# wallpapers that the screenshot fixtures and `quaid dataset build` render and modify.
# Skips what is already there.
set -euo pipefail
PACKAGES=(chromium redis-server redis-tools fonts-dejavu-core fonts-liberation
          python3.11-doc postgresql-doc-15 apache2-doc git-doc sphinx-doc python-django-doc
          debian-reference-en plasma-workspace-wallpapers)
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
