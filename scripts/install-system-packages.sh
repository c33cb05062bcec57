#!/usr/bin/env bash
# Debian packages the test suite and the evaluation set need: Chromium (web-UI tests, rendered
# screenshots), redis-server (Redis Cluster tests), fonts, and the documentation sites and
# wallpapers that the screenshot fixtures and `quaid dataset build` render and modify; then the npm
# web-application templates (scripts/install-web-templates.sh).
# With --evaluation, also the larger documentation sites that only the `full` and `large` evaluation
# sets use (about 1 GB installed). Skips what is already there.
set -euo pipefail
PACKAGES=(chromium redis-server redis-tools fonts-dejavu-core fonts-liberation
          python3.11-doc postgresql-doc-15 apache2-doc git-doc sphinx-doc python-django-doc
          debian-reference-en plasma-workspace-wallpapers)
EVALUATION_PACKAGES=(cmake-doc libglib2.0-doc libgtk-3-doc python-sqlalchemy-doc python-flask-doc
                     python-celery-doc python-pil-doc python-tornado-doc python-scipy-doc python-sympy-doc)
[ "${1:-}" = "--evaluation" ] && PACKAGES+=("${EVALUATION_PACKAGES[@]}")
# npm unpacks the web templates; Debian's npm package conflicts with a Node.js installed from
# elsewhere (which brings its own npm), so it is only asked for when no npm command exists.
command -v npm >/dev/null || PACKAGES+=(npm)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
"$(dirname "$0")/install-web-templates.sh"
