"""``quaid evaluate``: measure each algorithm alone, the peers, and quaid's merged decision on a dataset.

Where to start: :func:`evaluate`. It returns (and writes) a JSON report with,
for every method, the shares defined in :mod:`engine.evaluation.metrics`
overall and per modification kind, recall at 99.9 % and 99.99 % pair
precision, the best auto-accepted share at <= 0.5 % false accepts, and time
per picture; plus a markdown table (:mod:`engine.evaluation.report`), PNG
plots (:mod:`engine.evaluation.plots`) and a contact sheet of the worst false
accepts and misses of the search path (:mod:`engine.evaluation.contact`).
``sites`` keeps the queries of some sites only (held out by site,
:mod:`engine.evaluation.sites`); the report names the sites it covers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine import algorithms as registry
from engine.config import Settings, settings_to_dict
from engine.evaluation import metrics
from engine.evaluation.features import DistanceTable, cached_table
from engine.evaluation.manifest import read_manifest
from engine.evaluation.metrics import Nearest, flags_at, reported_apart, summarise
from engine.evaluation.peers import PEERS, peer_matrices
from engine.evaluation.search_run import SearchRun, run_search
from engine.evaluation.simulate import simulate
from engine.evaluation.sites import SiteChoice, covered, for_evaluation

PRECISIONS = (0.999, 0.9999)


def thresholds(settings: Settings, name: str) -> tuple[float, float]:
    """(yes, maybe) of algorithm ``name``: the settings' values, else the class defaults."""
    cls, conf = registry.get(name), settings.algorithm(name)
    yes = cls.yes_threshold if conf.yes is None else conf.yes
    maybe = cls.maybe_threshold if conf.maybe is None else conf.maybe
    return yes, max(yes, maybe)


def enabled(settings: Settings, name: str) -> bool:
    conf = settings.algorithms.get(name)
    return conf.enabled if conf is not None else registry.get(name).enabled_by_default


def evaluate(folder: Path, settings: Settings, out: Path | None = None, progress: bool = True,
             peers: bool = True, search: bool = True, all_algorithms: bool = False,
             search_limit: int | None = None,
             sites: SiteChoice | None = None) -> dict:
    """Measure everything on the dataset in ``folder``; write the report files into ``out`` if given.

    ``all_algorithms`` also measures the registered algorithms that the
    settings leave off; ``search_limit`` caps the queries sent through the
    real search path (a deterministic sample, every kind kept).
    """
    folder = Path(folder)
    sites = sites if sites is not None else SiteChoice()
    manifest = read_manifest(folder)
    entries = for_evaluation(manifest, sites)
    table = cached_table(folder, entries, settings, progress, algorithms_for(settings, all_algorithms))
    roles = np.array([q.role for q in table.queries])
    kinds = np.array([q.kind for q in table.queries])
    report: dict = {"dataset": _describe(folder, table, roles), "algorithms": {}, "peers": {}}
    report["dataset"]["sites"] = {**covered(entries), "chosen": sites.to_json()}
    report["dataset"]["distractors"] = sum(1 for e in manifest if e.role == "distractor")  # among references
    for name, matrix in table.distances.items():
        yes, maybe = thresholds(settings, name)
        nearest = Nearest.from_matrix(matrix, table.truth)
        report["algorithms"][name] = _method(nearest, roles, kinds, yes, maybe)
        report["algorithms"][name].update(enabled=enabled(settings, name), ms=table.extract_ms()[name])
    peer_data, peer_ms = (peer_matrices(folder, table.references, table.queries, progress) if peers
                          else ({}, {}))
    for peer in PEERS if peer_data else ():
        nearest = Nearest.from_matrix(peer_data[peer.name], table.truth)
        report["peers"][peer.name] = _method(nearest, roles, kinds, peer.yes, peer.maybe)
        report["peers"][peer.name].update(label=peer.label, package=peer.package, ms=peer_ms[peer.name])
    report["merged_simulated"] = summarise(simulate(table, settings), roles, kinds)
    run, chosen = None, np.arange(0)
    if search:
        chosen = sample(kinds, roles, search_limit)
        run = run_search(folder, table.references, [table.queries[i] for i in chosen], table.truth[chosen],
                         settings, progress)
        report["merged"] = summarise(run.flags, roles[chosen], kinds[chosen])
        if chosen.size < len(kinds):  # a per-kind sample: weight kinds as in the whole set, for comparisons
            report["merged"]["overall_sampled"] = report["merged"]["overall"]
            report["merged"]["overall"] = reweighted(report["merged"]["kinds"], kinds[roles == "variant"])
        times = run.search_ms if chosen.size else np.zeros(1)
        report["merged"]["ms"] = {"search_mean": float(np.mean(times)),
                                  "search_p95": float(np.percentile(times, 95)), "add_mean": run.add_ms}
    report["settings"] = {k: v for k, v in settings_to_dict(settings).items()
                          if k in ("algorithms", "distance_merge", "decision_merge", "shortlist",
                                   "all_orientations", "working_side")}
    if out is not None:
        if run is not None:
            report["contact_sheet"] = _write_contact_sheet(Path(out), folder, table, run, chosen)
        write_outputs(Path(out), report, table, peer_data, settings)
    return report


def reweighted(per_kind: dict, all_kinds: np.ndarray) -> dict:
    """Overall shares with each kind weighted by its count in the whole set (not in the sample)."""
    counts = {k: int((all_kinds == k).sum()) for k in per_kind if not reported_apart(k)}
    total = max(1, sum(counts.values()))
    out = {"count": total, "reweighted_from_sample": sum(v["count"] for v in per_kind.values())}
    for field in ("auto_accepted", "found", "wrong_accepts", "wrong_among_accepted"):
        if all(field in per_kind[k] for k in counts):
            out[field] = sum(per_kind[k][field] * counts[k] for k in counts) / total
    return out


def algorithms_for(settings: Settings, everything: bool = False) -> list:
    """Instances of the algorithms to measure: the enabled ones (or all registered ones).

    Candidate generators (``votes = False``, region codes) decide nothing, so they have no
    distance to measure; the search path (``search_run``) uses them through the real index."""
    return [cls() for cls in registry.ALGORITHMS
            if cls.votes and (everything or enabled(settings, cls.name))]


def sample(kinds: np.ndarray, roles: np.ndarray, limit: int | None) -> np.ndarray:
    """Query indices for the search path: all, or every negative and about ``limit`` variants spread evenly
    over the modification kinds (negatives are few and every false accept counts)."""
    everything = np.arange(len(kinds))
    if not limit or limit >= len(kinds):
        return everything
    variant_kinds = sorted(set(kinds[roles == "variant"]))
    per_kind = max(1, limit // max(1, len(variant_kinds)))
    chosen = list(everything[roles != "variant"])
    for kind in variant_kinds:
        members = everything[(roles == "variant") & (kinds == kind)]
        step = max(1, len(members) // per_kind)
        chosen.extend(members[::step][:per_kind])
    return np.array(sorted(chosen), dtype=int)


def _method(nearest: Nearest, roles: np.ndarray, kinds: np.ndarray, yes: float, maybe: float) -> dict:
    result = summarise(flags_at(nearest, yes, maybe), roles, kinds)
    positives, negatives = metrics.pair_scores(nearest, roles)
    result["thresholds"] = {"yes": yes, "maybe": maybe}
    result["recall_at_precision"] = {}
    for precision in PRECISIONS:
        recall, threshold = metrics.recall_at_precision(positives, negatives, precision)
        result["recall_at_precision"][str(precision)] = {"recall": recall, "threshold": threshold}
    best = metrics.best_accept_at_budget(nearest, roles)
    at_best = summarise(flags_at(nearest, best["threshold"], best["threshold"]), roles, kinds)
    best["kinds"] = {kind: shares["auto_accepted"] for kind, shares in at_best["kinds"].items()}
    result["best_at_fa_budget"] = best
    return result


def _write_contact_sheet(out: Path, folder: Path, table: DistanceTable, run: SearchRun,
                         chosen: np.ndarray) -> dict:
    """contact-sheet.html of the search path's worst cases; returns what it shows, for the report."""
    from engine.evaluation.contact import worst_cases, write_contact_sheet

    cases = worst_cases([table.queries[i] for i in chosen], table.truth[chosen], run)
    out.mkdir(parents=True, exist_ok=True)
    path = write_contact_sheet(out / "contact-sheet.html", folder, table.references, cases)
    return {"path": path.name, **{name: len(found) for name, found in cases.items()}}


def _describe(folder: Path, table: DistanceTable, roles: np.ndarray) -> dict:
    return {"path": str(folder), "references": len(table.references),
            "variants": int((roles == "variant").sum()), "negatives": int((roles == "negative").sum()),
            "decode_ms": table.decode_ms()}


def write_outputs(out: Path, report: dict, table: DistanceTable, peer_data: dict,
                  settings: Settings) -> None:
    """report.json, report.md and the PNG plots."""
    from engine.evaluation import plots
    from engine.evaluation.report import markdown

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(markdown(report))
    curves = {name: (m, thresholds(settings, name)) for name, m in table.distances.items()}
    curves.update({p.name: (peer_data[p.name], (p.yes, p.maybe)) for p in PEERS if p.name in peer_data})
    plots.write_plots(out, curves, table.truth, np.array([q.role for q in table.queries]))
