#!/bin/sh
# Build the evaluation sets used for quaid's published figures and calibrated defaults, then measure.
#   eval-small: 14 doc pages + 4 photos (a few minutes); eval-full: ~180 pages + 24 photos (~15-25 min on 2 cores).
# Needs Debian's chromium and the doc packages (python3.11-doc postgresql-doc-15 apache2-doc git-doc
# sphinx-doc python-django-doc debian-reference-en) and plasma-workspace-wallpapers, installed by scripts/.
# Usage: benchmarks/build_dataset.sh [SEED]      (run from the repository root, venv active or in .venv)
set -eu
SEED="${1:-1}"
QUAID="${QUAID:-.venv/bin/quaid}"
[ -x "$QUAID" ] || QUAID="python -m engine"
mkdir -p datasets reports
$QUAID dataset build datasets/eval-small --size small --seed "$SEED"
$QUAID dataset build datasets/eval-full --size full --seed "$SEED"
$QUAID evaluate datasets/eval-full --out reports/eval-full
# Recalibrate (writes a settings file; copy it to engine/calibrated.json to change the shipped defaults):
$QUAID calibrate datasets/eval-full --out reports/eval-full/calibrated.json
