"""Evaluation and calibration: a realistic labelled set, measurements, calibrated defaults.

Where to start: :func:`engine.evaluation.dataset.build_dataset` makes the set
(real documentation pages rendered by headless Chromium, photos, real-world
modifications, unseen pages of the same sites as negatives);
:mod:`engine.evaluation.evaluate` measures quaid and its peers on it;
:mod:`engine.evaluation.calibrate` derives thresholds and merge settings.
"""
