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
            f"{_pct(negatives['false_accepts'])} | {_pct(negatives['to_review'])} | {_pct(budget)} | "
            f"{_pct(recall)} | {ms_text} |")


def markdown(report: dict) -> str:
    """Summary table (quaid merged, the peers, each algorithm alone) and auto-accepted share per kind."""
    data = report["dataset"]
    lines = [
        f"Dataset: {data['references']} references, {data['variants']} modified copies, "
        f"{data['negatives']} unseen pages/photos as negatives.", "",
        "| method | auto-accepted | found | false accepts on negatives | to-review of negatives | "
        "best auto-accepted at ≤ 0.5 % false accepts | recall at 99.9 % precision | ms per picture |",
        "|---|---|---|---|---|---|---|---|",
    ]
    columns: list[tuple[str, dict]] = []
    if "merged" in report:
        lines.append(_row("**quaid (merged decision, search path)**", report["merged"], best=False))
        columns.append(("quaid", report["merged"]))
    for method in report["peers"].values():
        lines.append(_row(method["label"], method))
        columns.append((method["label"].split(" (")[0], method))
    for name, method in report["algorithms"].items():
        label = f"quaid {name} alone" + ("" if method.get("enabled") else " (off by default)")
        lines.append(_row(label, method))
    lines += ["", "Auto-accepted share of modified copies per modification kind:", "",
              "| kind | count | " + " | ".join(c for c, _ in columns) + " |",
              "|---|---|" + "---|" * len(columns)]
    kinds = sorted({k for _, m in columns for k in m["kinds"]})
    for kind in kinds:
        count = next((m["kinds"][kind]["count"] for _, m in columns if kind in m["kinds"]), 0)
        cells = [_pct(m["kinds"].get(kind, {}).get("auto_accepted")) for _, m in columns]
        lines.append(f"| {kind} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
