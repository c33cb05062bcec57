#!/bin/sh
# Build the evaluation sets, calibrate on some sites and report on the others (held out by site).
#   eval-small: a few minutes; eval-full: ~300 references on 31 sites (~70 min on 2 cores);
#   eval-large: ~7000 pages with >= 5000 distractors (hours; resumable: run the same command again).
# Needs Debian's chromium, the documentation packages and the npm web templates:
#   scripts/install-system-packages.sh --evaluation
# Usage: benchmarks/build_dataset.sh [SEED]      (run from the repository root)
set -eu
SEED="${1:-1}"
QUAID="${QUAID:-.venv/bin/quaid}"
[ -x "$QUAID" ] || QUAID="python -m engine"
# Sites the shipped defaults were calibrated on; every figure worth quoting comes from the others.
CALIBRATION_SITES="python,postgresql,apache,django,git,sphinx,debian-reference,photos"
mkdir -p datasets reports
$QUAID dataset build datasets/eval-small --size small --seed "$SEED"
$QUAID dataset build datasets/eval-full --size full --seed "$SEED" --workers 2
$QUAID calibrate datasets/eval-full --sites "$CALIBRATION_SITES" --out reports/eval-full-calibrated.json
$QUAID evaluate datasets/eval-full --exclude-sites "$CALIBRATION_SITES" --out reports/eval-full-heldout
