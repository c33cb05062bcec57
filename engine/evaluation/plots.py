"""PNG plots of an evaluation (matplotlib, Agg backend: no display needed).

Per method: the distance distribution of matches (a modified copy against
its reference) and of non-matches (each query's nearest wrong reference),
with the YES and MAYBE thresholds drawn, and one precision/recall figure of
all methods (pair level, as in :func:`engine.evaluation.metrics.recall_at_precision`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.evaluation.metrics import Nearest, pair_scores


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(out: Path, curves: dict[str, tuple[np.ndarray, tuple[float, float]]], truth: np.ndarray,
                roles: np.ndarray) -> list[Path]:
    """``hist-<method>.png`` per method and ``precision-recall.png``; returns the files written."""
    plt = _pyplot()
    written = []
    pr_fig, pr_ax = plt.subplots(figsize=(7, 5))
    drawn: set[int] = set()
    for name, (matrix, (yes, maybe)) in curves.items():
        positives, negatives = pair_scores(Nearest.from_matrix(matrix, truth), roles)
        positives, negatives = positives[np.isfinite(positives)], negatives[np.isfinite(negatives)]
        written.append(_histogram(plt, out / f"hist-{name}.png", name, positives, negatives, yes, maybe))
        if id(matrix) in drawn:  # a peer sharing quaid's matrix: same curve, other thresholds only
            continue
        drawn.add(id(matrix))
        recall, precision = _pr_curve(positives, negatives)
        pr_ax.plot(recall, precision, label=name, linewidth=1.2)
    pr_ax.set_xlabel("recall (matches under the threshold)")
    pr_ax.set_ylabel("precision")
    pr_ax.set_ylim(0.5, 1.005)
    pr_ax.legend(fontsize=7, loc="lower left")
    pr_ax.set_title("precision / recall, pairs (copy, reference) vs nearest wrong reference")
    pr_fig.tight_layout()
    pr_fig.savefig(out / "precision-recall.png", dpi=110)
    plt.close(pr_fig)
    return written + [out / "precision-recall.png"]


def _histogram(plt, path: Path, name: str, positives: np.ndarray, negatives: np.ndarray, yes: float,
               maybe: float) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0.0, 1.0, 101)
    ax.hist(positives, bins=bins, alpha=0.6, label=f"matches ({positives.size})", color="tab:green")
    ax.hist(negatives, bins=bins, alpha=0.6, label=f"nearest non-matches ({negatives.size})", color="tab:red")
    ax.axvline(yes, color="black", linestyle="-", label=f"yes {yes:.3f}")
    ax.axvline(maybe, color="black", linestyle="--", label=f"maybe {maybe:.3f}")
    ax.set_xlabel("distance")
    ax.set_ylabel("pairs")
    ax.set_title(name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _pr_curve(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    thresholds = np.unique(np.concatenate([positives, negatives, [0.0, 1.0]]))
    tp = np.searchsorted(np.sort(positives), thresholds, side="right")
    fp = np.searchsorted(np.sort(negatives), thresholds, side="right")
    recall = tp / max(1, positives.size)
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    return recall, precision
