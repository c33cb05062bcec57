#!/usr/bin/env bash
# HTML admin / website templates from npm that `quaid dataset build` renders as web-application pages
# (login, register, password reset, dashboards). Each package's tarball is unpacked into its own folder
# under $QUAID_TEMPLATES (default ~/.cache/quaid/templates), outside the repository: nothing here is
# committed, and no package script runs (npm pack only downloads the tarball).
# stisla's pages link the CSS and scripts of its npm dependencies (node_modules/...): those are
# installed next to it, without their scripts either. Skips what is already there.
set -euo pipefail
DEST="${QUAID_TEMPLATES:-$HOME/.cache/quaid/templates}"
PACKAGES=(
    adminbsb-materialdesign@1.0.7
    @creative-tim-official/argon-dashboard@2.0.4
    @digitallyhappy/backstrap@0.5.1
    equation-admin-template@1.0.0
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
# Dependencies a template's pages load from its own node_modules folder.
declare -A PAGE_DEPENDENCIES=(
    [stisla]="bootstrap@4 jquery@3 popper.js@1 tooltip.js@1 nicescroll@3 moment@2
              @fortawesome/fontawesome-free@5 bootstrap-social@5 flag-icon-css@3"
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
    dependencies="${PAGE_DEPENDENCIES[$(basename "$folder")]:-}"
    if [ -n "$dependencies" ]; then
        work="$(mktemp -d)"
        echo '{"name": "page-dependencies", "private": true}' > "$work/package.json"
        # shellcheck disable=SC2086  # one word per package
        (cd "$work" && npm install --silent --ignore-scripts --no-audit --no-fund --no-package-lock $dependencies)
        mv "$work/node_modules" "$folder/node_modules"
        rm -rf "$work"
    fi
    echo "$spec" > "$folder/.installed"
done
