"""The results tables of ``docs/experiments.md``, written from the results CSV files.

    .venv/bin/python -m experiments.tables [--results DIR] [--doc FILE] [--check]

In the document, each generated table sits between two markers::

    <!-- results NAME: written by python -m experiments.tables; edit the code, not this -->
    ...
    <!-- end results NAME -->

This module rewrites what is between them from ``DIR/NAME/NAME.csv``
(default ``results``) with the function :data:`TABLES` holds for NAME, so
the tables cannot drift from what the code produces: rerun the experiments
(``beaver experiment NAME``), then this. ``--check`` writes nothing and
exits 1 when the document differs from what the results give (naming the
tables), 0 when it is up to date. A marker whose results are missing is
left as it is and named on stderr.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analysis import paper
from analysis.frames import load

DOC = Path(__file__).resolve().parents[1] / "docs" / "experiments.md"
MARKERS = re.compile(r"(<!-- results (?P<name>[\w-]+):[^>]*-->\n)(?P<body>.*?)"
                     r"(<!-- end results (?P=name) -->)", re.DOTALL)


def _n(value: float) -> str:
    """A figure with three significant digits, thousands separated."""
    if pd.isna(value):
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _percent(part: float, whole: float) -> str:
    return "-" if not whole else f"{100 * part / whole:.3g} %"


def update_bound(frame: pd.DataFrame) -> str:
    theirs = paper.update_bound().set_index(["gateways", "quantile"])
    lines = ["| \\|G\\| | t1 - t0 p50 / p99 / max (us), ours | paper "
             "| spread p50 / p99 (us), ours | paper |", "| --- | --- | --- | --- | --- |"]
    for gateways, group in frame.groupby("gateways"):
        t, s = group["t1_t0_us"], group["gateway_spread_us"]

        def ref(share: float, column: str, g: int = int(gateways)) -> str:
            return _n(theirs.loc[(g, share), column]) if (g, share) in theirs.index else "-"

        lines.append(
            f"| {gateways} | {_n(t.quantile(0.5))} / {_n(t.quantile(0.99))} / {_n(t.max())} "
            f"| {ref(0.5, 't1_t0_us')} / {ref(0.99, 't1_t0_us')} / {ref(1.0, 't1_t0_us')} "
            f"| {_n(s.quantile(0.5))} / {_n(s.quantile(0.99))} "
            f"| {ref(0.5, 'gateway_spread_us')} / {ref(0.99, 'gateway_spread_us')} |")
    held = int(frame["bound_holds"].sum())
    lines += ["", f"The bound held in **{held:,} of {len(frame):,}** snapshots "
              f"({frame['seed'].nunique()} seed(s) per |G|)."]
    return "\n".join(lines)


def tau_sensitivity(frame: pd.DataFrame) -> str:
    taus = sorted(frame["true_tau_min_us"].unique())
    lines = ["| ratio | " + " | ".join(
        f"true {tau:g} us: accepted / inconsistent among accepted" for tau in taus) + " |",
        "| --- |" + " --- |" * len(taus)]
    sums = frame.groupby(["bound_ratio", "true_tau_min_us"])[
        ["snapshots", "valid", "inconsistent_valid"]].sum()
    for ratio in sorted(frame["bound_ratio"].unique()):
        cells = []
        for tau in taus:
            row = sums.loc[(ratio, tau)]
            cells.append(f"{_percent(row['valid'], row['snapshots'])} / "
                         f"{_percent(row['inconsistent_valid'], row['valid'])}")
        lines.append(f"| {ratio:g} | " + " | ".join(cells) + " |")
    wrong = frame[frame["bound_ratio"] > 1]["inconsistent_valid"].sum()
    right = frame[frame["bound_ratio"] <= 1]["inconsistent_valid"].sum()
    lines += ["", f"Pooled over {frame['seed'].nunique()} seed(s). Accepted but inconsistent: "
              f"**{int(right)}** with a correct or cautious bound (ratio <= 1), "
              f"**{int(wrong)}** with a too-large one."]
    return "\n".join(lines)


def bot_detection(frame: pd.DataFrame) -> str:
    sums = frame.groupby("protocol", sort=False)[
        ["bots", "true_positives", "false_positives", "false_negatives", "accepted",
         "snapshots_with_false_positive"]].sum()
    lines = ["| protocol | bots found | false positives (honest clients accused) "
             "| false negatives | accepted snapshots accusing someone honest |",
             "| --- | --- | --- | --- | --- |"]
    for protocol, row in sums.iterrows():
        lines.append(f"| {protocol} | {int(row.true_positives)}/{int(row.bots)} "
                     f"| {int(row.false_positives)} | {int(row.false_negatives)} "
                     f"| {int(row.snapshots_with_false_positive):,} of {int(row.accepted):,} |")
    lines += ["", f"Sums over {frame['seed'].nunique()} seed(s) and the bot ratios "
              f"{', '.join(f'{r:.0%}' for r in sorted(frame['bot_ratio'].unique()))}."]
    return "\n".join(lines)


def deadlock(frame: pd.DataFrame) -> str:
    disorders = sorted(frame["disorder"].unique())
    low, high = disorders[0], disorders[-1]
    sums = frame.groupby(["protocol", "disorder"], sort=False).sum(numeric_only=True)
    lines = [f"| protocol | phantom deadlocks (disorder {low:.0%} / {high:.0%}) "
             f"| real deadlocks found ({high:.0%}) | missed "
             f"| invariant false alarms ({low:.0%}) | inconsistent among accepted ({low:.0%}) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for protocol in dict.fromkeys(frame["protocol"]):
        a, b = sums.loc[(protocol, low)], sums.loc[(protocol, high)]
        lines.append(
            f"| {protocol} | {int(a.phantom_deadlocks)} / {int(b.phantom_deadlocks)} "
            f"| {int(b.deadlocks_found)} of {int(b.deadlocks_real)} "
            f"| {int(a.deadlocks_missed + b.deadlocks_missed)} | {int(a.invariant_false_alarms)} "
            f"| {int(a.inconsistent_accepted):,} of {int(a.accepted):,} |")
    lines += ["", f"Sums over {frame['seed'].nunique()} seed(s)."]
    return "\n".join(lines)


TABLES: dict[str, Callable[[pd.DataFrame], str]] = {
    "update-bound": update_bound,
    "tau-sensitivity": tau_sensitivity,
    "bot-detection": bot_detection,
    "deadlock": deadlock,
}


def rewrite(text: str, results: Path) -> tuple[str, list[str], list[str]]:
    """``text`` with every marked table written from ``results``; also the names of the
    tables that changed and of those whose results are missing."""
    changed, missing = [], []

    def table(match: re.Match[str]) -> str:
        name = match["name"]
        try:
            body = TABLES[name](load(results, name)) + "\n"
        except (KeyError, FileNotFoundError):
            missing.append(name)
            return match[0]
        if body != match["body"]:
            changed.append(name)
        return match[1] + body + match[4]

    return MARKERS.sub(table, text), changed, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.tables",
                                     description="write docs/experiments.md's tables")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the document is out of date")
    args = parser.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    new, changed, missing = rewrite(text, args.results)
    for name in missing:
        print(f"experiments.tables: no results for {name} under {args.results}; "
              f"its table is left as it is", file=sys.stderr)
    if args.check:
        for name in changed:
            print(f"{args.doc}: the {name} table differs from {args.results}/{name}")
        return 1 if changed else 0
    args.doc.write_text(new, encoding="utf-8")
    for name in changed:
        print(f"{args.doc}: {name} table written from {args.results}/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
