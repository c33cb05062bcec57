#!/usr/bin/env bash
# The JavaScript library the web UI's graph view draws with, from npm, into
# engine/service/static/vendor/ where the service serves it (no CDN: quaid often runs on an
# isolated network, and the page's Content-Security-Policy allows only its own scripts).
# Cytoscape.js (MIT, no dependencies): one pinned version, checked against the registry's
# sha512 integrity below; npm pack only downloads the tarball, no package script runs.
# Skips what is already there. Not committed (.gitignore): run by scripts/install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=cytoscape@3.35.0
INTEGRITY=sha512-sMvBIXiGMnhkCaWz2R06FwF/27MNlS+Tqvi17foO9UhnUg3XGZccKjxsvEqQFAQYMSSZmN5SxYzUYlQ0DOJJ3g==
DEST=engine/service/static/vendor
[ "$(cat "$DEST/.installed" 2>/dev/null)" = "$SPEC" ] && [ -f "$DEST/cytoscape.min.js" ] && exit 0
if ! command -v npm >/dev/null; then  # Debian's npm only when no npm exists (see install-system-packages.sh)
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends npm
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$(cd "$work" && npm pack --silent "$SPEC" | tail -1)"
actual="$(python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$work/$tarball")"
if [ "$actual" != "$INTEGRITY" ]; then
    echo "install-ui-libraries: $SPEC does not match its pinned integrity (got $actual)" >&2
    exit 1
fi
tar -xzf "$work/$tarball" -C "$work" package/dist/cytoscape.min.js package/LICENSE
mkdir -p "$DEST"
cp "$work/package/dist/cytoscape.min.js" "$DEST/cytoscape.min.js"
cp "$work/package/LICENSE" "$DEST/cytoscape.LICENSE"
echo "$SPEC" > "$DEST/.installed"
echo "installed $SPEC in $DEST"
