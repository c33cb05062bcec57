"""``quaid dataset build``, ``quaid evaluate`` and ``quaid calibrate``: measure quaid, derive its defaults.

Typical use (see ``benchmarks/build_dataset.sh``)::

    quaid dataset build datasets/eval-full --size full --seed 1
    quaid evaluate datasets/eval-full --out reports/eval-full
    quaid calibrate datasets/eval-full --out my-settings.json   # then QUAID_CONFIG=my-settings.json
    quaid calibrate datasets/eval-full --sites python,git --out tuned.json     # held out by site:
    QUAID_CONFIG=tuned.json quaid evaluate datasets/eval-full --exclude-sites python,git
    quaid calibrate --review --out my-settings.json             # from the review queue's verdicts

Progress bars go to stderr; tables and the JSON paths to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from engine.config import load_settings
from engine.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    dataset = subparsers.add_parser(
        "dataset", help="build the evaluation set (rendered doc pages, photos, modifications)",
        description="Build a labelled evaluation set from Debian documentation pages and npm web-application "
                    "templates rendered by headless Chromium, and wallpaper photos, with real-world "
                    "modifications, unseen pages of the same sites (template siblings included) as negatives "
                    "and stored pages of the same sites as distractors.")
    actions = dataset.add_subparsers(dest="dataset_command", metavar="ACTION")
    build = actions.add_parser("build", help="write a dataset folder (pictures + manifest.jsonl)")
    build.add_argument("out", type=Path, help="folder to write (created)")
    build.add_argument("--size", choices=("tiny", "small", "full", "large"), default="small",
                       help="tiny (tests), small, full, or large (5000 distractors, 1500 unseen pages; "
                            "needs scripts/install-system-packages.sh --evaluation)")
    build.add_argument("--seed", type=int, default=1, help="same seed, same set (default 1)")
    build.add_argument("--workers", type=int, default=1, metavar="N",
                       help="browsers rendering at once, each its own sites (default 1); an interrupted "
                            "build resumes when started again with the same options")
    build.set_defaults(func=run_build)
    dataset.set_defaults(func=lambda args: (dataset.print_help(), 2)[1])

    evaluate = subparsers.add_parser(
        "evaluate", help="measure quaid, each algorithm and the peers on a dataset",
        description="Index the references, query every variant and negative; report auto-accepted / found "
                    "shares per modification kind, false accepts and to-review on negatives, recall at "
                    "99.9 % and 99.99 % precision, time per picture; for quaid's merged decision (real "
                    "search path), each algorithm alone and the peers (PDQ, pHash, dHash, Goldberg).")
    evaluate.add_argument("dataset", type=Path)
    evaluate.add_argument("--out", type=Path, default=None,
                          help="folder for report.json, report.md and PNG plots (default: reports/<name>)")
    evaluate.add_argument("--config", type=Path, default=None, help="settings file to evaluate (JSON/TOML)")
    evaluate.add_argument("--all-algorithms", action="store_true", help="also measure disabled algorithms")
    evaluate.add_argument("--no-search", action="store_true", help="skip the real search path (faster)")
    evaluate.add_argument("--search-limit", type=int, default=None, metavar="N",
                          help="send only about N queries (all kinds) through the search path")
    _site_options(evaluate, "query only the copies and negatives of these sites (every picture stays "
                            "stored)")
    evaluate.set_defaults(func=run_evaluate)

    calibrate = subparsers.add_parser(
        "calibrate", help="derive thresholds and merge settings from a dataset or the review verdicts; "
                          "write a settings file",
        description="Per algorithm: YES = largest distance reaching the target precision, MAYBE = bounded "
                    "review load; then (dataset only) the merge strategy, weights and threshold scale that "
                    "auto-accept the most copies at <= 0.5 % false accepts and < 5 % to-review of "
                    "negatives. With --review, the pairs analysts judged in the review queue are the labels "
                    "(per-algorithm thresholds only; the rest of the current settings is kept).")
    calibrate.add_argument("dataset", type=Path, nargs="?", help="dataset folder (omit with --review)")
    calibrate.add_argument("--review", action="store_true",
                           help="use the review queue's verdicts (local store, or --server)")
    calibrate.add_argument("--server", default=None, metavar="URL",
                           help="with --review: read the verdicts from a running service ($QUAID_API_KEY)")
    calibrate.add_argument("--out", type=Path, default=Path("quaid-calibrated.json"),
                           help="settings file to write (default quaid-calibrated.json; use it with "
                                "QUAID_CONFIG)")
    calibrate.add_argument("--target-precision", type=float, default=0.999)
    calibrate.add_argument("--config", type=Path, default=None, help="base settings file (JSON/TOML)")
    _site_options(calibrate, "calibrate on these sites only (evaluate on the others)")
    calibrate.set_defaults(func=run_calibrate)


def _site_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--sites", default=None, metavar="A,B,...", help=what)
    parser.add_argument("--exclude-sites", default=None, metavar="A,B,...",
                        help="leave these sites out (the rest is used)")


def _site_choice(args: argparse.Namespace):
    from engine.evaluation.sites import SiteChoice

    return SiteChoice.parse(args.sites, args.exclude_sites)


def _settings(config: Path | None):
    if config is not None:
        os.environ["QUAID_CONFIG"] = str(config)  # the documented override, read by load_settings
    return load_settings()


def run_build(args: argparse.Namespace) -> int:
    from engine.evaluation.dataset import build_dataset

    if args.workers < 1:
        raise BadInput("--workers must be at least 1")
    entries = build_dataset(args.out, args.size, args.seed, workers=args.workers)
    roles = ("reference", "variant", "negative", "distractor")
    counts = {role: sum(1 for e in entries if e.role == role) for role in roles}
    print(json.dumps({"dataset": str(args.out), **counts}))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from engine.evaluation.evaluate import evaluate
    from engine.evaluation.report import markdown

    out = args.out or Path("reports") / args.dataset.resolve().name
    report = evaluate(args.dataset, _settings(args.config), out, progress=True,
                      search=not args.no_search, all_algorithms=args.all_algorithms,
                      search_limit=args.search_limit,
                      sites=_site_choice(args))
    print(markdown(report))
    sheet = f"  contact sheet: {out / report['contact_sheet']['path']}" if "contact_sheet" in report else ""
    print(f"report: {out / 'report.json'}  plots: {out}/*.png{sheet}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from engine.evaluation.calibrate import calibrate, calibrated_dict

    if args.review == (args.dataset is not None):
        raise BadInput("give either a DATASET folder or --review")
    if args.server and not args.review:
        raise BadInput("--server only goes with --review")
    if args.review:
        if args.sites or args.exclude_sites:
            raise BadInput("--sites and --exclude-sites go with a DATASET, not --review")
        return run_calibrate_review(args)
    sites = _site_choice(args)
    best, tried, thresholds, figures = calibrate(args.dataset, _settings(args.config), args.target_precision,
                                                 sites=sites)
    if sites.include is not None or sites.exclude:
        print(f"calibrated on sites: {', '.join(figures['sites'])}")
    args.out.write_text(json.dumps(calibrated_dict(best.settings), indent=2, sort_keys=True) + "\n")
    print(f"{len(tried)} merge settings tried; chosen: {best.settings.decision_merge} / "
          f"{best.settings.distance_merge}" + ("" if best.admissible else "  (NONE met the budgets)"))
    print("| algorithm | yes | maybe | weight |\n|---|---|---|---|")
    for name, conf in sorted(best.settings.algorithms.items()):
        if name in thresholds:
            print(f"| {name} | {conf.yes:.4f} | {conf.maybe:.4f} | {conf.weight:g} |")
    print(f"\nexpected: auto-accepted {best.auto_accepted:.1%}, found {best.found:.1%}, "
          f"false accepts on negatives {best.false_accepts:.2%}, "
          f"wrong top accepted {best.wrong_accepts:.2%}, "
          f"to-review of negatives {best.to_review:.1%}")
    for kind, shares in figures["kinds"].items():
        print(f"  {kind:14s} auto-accepted {shares['auto_accepted']:.1%}  found {shares['found']:.1%}")
    print(f"written: {args.out}")
    return 0 if best.admissible else 1


def run_calibrate_review(args: argparse.Namespace) -> int:
    from engine.evaluation.calibrate import calibrated_dict
    from engine.evaluation.review_labels import calibrate_from_labels, fetch_labels

    settings = _settings(args.config)
    result = calibrate_from_labels(fetch_labels(args.server, settings), settings, args.target_precision)
    args.out.write_text(json.dumps(calibrated_dict(result.settings), indent=2, sort_keys=True) + "\n")
    print(f"{result.same} pairs judged same, {result.different} judged different "
          f"(target precision {args.target_precision:g})")
    print("| algorithm | yes | maybe | same accepted | same found | different accepted "
          "| different to-review |\n|---|---|---|---|---|---|---|")
    for name, fit in result.fits.items():
        print(f"| {name} | {fit.yes:.4f} | {fit.maybe:.4f} | {fit.same_accepted:.1%} | {fit.same_found:.1%} "
              f"| {fit.different_accepted:.1%} | {fit.different_review:.1%} |")
    if result.kept:
        print(f"kept at their current thresholds (too few judged distances): {', '.join(result.kept)}")
    print("expected rates are per algorithm alone, on the judged pairs (which only sample what reached "
          "review); merge settings are unchanged")
    print(f"written: {args.out}")
    return 0
