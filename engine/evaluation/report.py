"""The readable form of an evaluation report: markdown tables (also printed by ``quaid evaluate``)."""

from __future__ import annotations


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _row(label: str, method: dict, best: bool = True) -> str:
    overall, negatives = method["overall"], method["negatives"]
    recall = method.get("recall_at_precision", {}).get("0.999", {}).get("recall")
    budget = method.get("best_at_fa_budget", {}).get("auto_accepted") if best else None
    ms = method.get("ms")
    ms_text = f"{ms['search_mean']:.0f} (search)" if isinstance(ms, dict) else (f"{ms:.1f}" if ms else "—")
    return (f"| {label} | {_pct(overall['auto_accepted'])} | {_pct(overall['found'])} | "
            f"{_pct(overall.get('wrong_among_accepted'))} | "
            f"{_pct(negatives['false_accepts'])} | {_pct(negatives['to_review'])} | {_pct(budget)} | "
            f"{_pct(recall)} | {ms_text} |")


def _sites(data: dict) -> list[str]:
    sites = data.get("sites")
    if not sites:
        return []
    chosen = sites.get("chosen", {})
    held = f" (excluded: {', '.join(chosen['exclude'])})" if chosen.get("exclude") else ""
    return [f"Sites of the queries: {', '.join(sites['queries']) or 'none'}{held}; "
            f"pictures stored from: {', '.join(sites['stored'])}.", ""]


def markdown(report: dict) -> str:
    """Summary table (quaid merged, the peers, each algorithm alone), auto-accepted share per kind with
    the peers side by side (at their authors' thresholds and at their best single threshold within
    the false-accept budget), and false accepts per kind of negative."""
    data = report["dataset"]
    lines = [
        f"Dataset: {data['references']} stored pictures ({data.get('distractors', 0)} of them distractors), "
        f"{data['variants']} modified copies, {data['negatives']} unseen pages/photos as negatives.", "",
        *_sites(data),
        "| method | auto-accepted | found | copies with a wrong accepted match | "
        "false accepts on negatives | to-review of negatives | best auto-accepted at ≤ 0.5 % false accepts | "
        "recall at 99.9 % precision "
        "| ms per picture |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    methods: list[tuple[str, dict]] = []
    if "merged" in report:
        lines.append(_row("**quaid (merged decision, search path)**", report["merged"], best=False))
        methods.append(("quaid", report["merged"]))
    for method in report["peers"].values():
        lines.append(_row(method["label"], method))
        methods.append((method["label"].split(" (")[0], method))
    for name, method in report["algorithms"].items():
        label = f"quaid {name} alone" + ("" if method.get("enabled") else " (off by default)")
        lines.append(_row(label, method))
    lines += _kind_table(methods) + _negative_table(methods)
    apart = sorted({k for _, m in methods for k in m.get("apart", [])})
    if apart:
        lines += ["", f"Reported apart (not in the overall shares): {', '.join(apart)}."]
    if "contact_sheet" in report:
        sheet = report["contact_sheet"]
        lines += ["", f"Contact sheet: {sheet['path']} ({sheet['false_accepts']} worst false accepts, "
                      f"{sheet['misses']} misses, query beside answer)."]
    return "\n".join(lines) + "\n"


def _kind_table(methods: list[tuple[str, dict]]) -> list[str]:
    """Auto-accepted per kind: each method at its thresholds, each peer also at its best one."""
    columns: list[tuple[str, dict, str]] = []  # (header, method, what: auto / found / best)
    for label, method in methods:
        columns.append((label, method, "auto"))
        if label == "quaid":
            columns.append(("quaid found", method, "found"))
        elif "best_at_fa_budget" in method:
            columns.append((f"{label} at ≤ 0.5 % FA", method, "best"))
    lines = ["", "Auto-accepted share of modified copies per modification kind (quaid also found; peers at "
                 "their authors' thresholds, and at their best single threshold with ≤ 0.5 % false "
                 "accepts):", "",
             "| kind | count | " + " | ".join(c for c, _, _ in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    kinds = sorted({k for _, m, _ in columns for k in m["kinds"]})
    for kind in kinds:
        count = next((m["kinds"][kind]["count"] for _, m, _ in columns if kind in m["kinds"]), 0)
        cells = [_pct(_kind_share(m, kind, what)) for _, m, what in columns]
        lines.append(f"| {kind} | {count} | " + " | ".join(cells) + " |")
    return lines


def _kind_share(method: dict, kind: str, what: str) -> float | None:
    if what == "best":
        return method["best_at_fa_budget"].get("kinds", {}).get(kind)
    return method["kinds"].get(kind, {}).get("found" if what == "found" else "auto_accepted")


def _negative_table(methods: list[tuple[str, dict]]) -> list[str]:
    """False accepts (and to-review) per kind of negative: template siblings apart from other pages."""
    kinds = sorted({k for _, m in methods for k in m.get("negative_kinds", {})})
    if not kinds:
        return []
    lines = ["", "False accepts (to-review) per kind of negative:", "",
             "| negative kind | count | " + " | ".join(label for label, _ in methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for kind in kinds:
        count = next((m["negative_kinds"][kind]["count"] for _, m in methods
                      if kind in m.get("negative_kinds", {})), 0)
        cells = []
        for _, method in methods:
            shares = method.get("negative_kinds", {}).get(kind)
            cells.append(f"{_pct(shares['false_accepts'])} ({_pct(shares['to_review'])})" if shares else "—")
        lines.append(f"| {kind} | {count} | " + " | ".join(cells) + " |")
    return lines
