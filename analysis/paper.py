"""The paper's figure data (``analysis/reference/``), in the same long shape as ours.

Each loader returns a tidy :class:`pandas.DataFrame` with the column names
our experiments use, so a plot can draw both from one code path.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REFERENCE = Path(__file__).parent / "reference"
SOURCE = 'Yu et al., "Beaver", OSDI 2024'


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / name)


def max_rate() -> pd.DataFrame:
    """Fig 10: ``gateways, window, sustained_rate_hz`` (window 1: without parallelism)."""
    wide = _read("paper_fig10_max_snapshot_rate.csv")
    long = wide.melt(id_vars="gateways", var_name="series", value_name="sustained_rate_hz")
    long["parallel"] = long["series"] == "with_parallelism_hz"
    return long.drop(columns="series")


def effective_rate() -> pd.DataFrame:
    """Fig 11: ``gateways, snapshot_rate_hz, valid_fraction`` (points the paper lacks dropped)."""
    wide = _read("paper_fig11_effective_rate.csv")
    long = wide.melt(id_vars="snapshot_rate_hz", var_name="series", value_name="valid_percent")
    long["gateways"] = long["series"].str.removeprefix("g").astype(int)
    long["valid_fraction"] = long["valid_percent"] / 100
    return long.dropna(subset=["valid_fraction"]).drop(columns=["series", "valid_percent"])


def update_bound() -> pd.DataFrame:
    """Fig 13: ``gateways, quantile, t1_t0_us, gateway_spread_us`` (quantile 0..1)."""
    wide = _read("paper_fig13_bound.csv")
    quantiles = {"p0": 0.0, "p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
    rows = [
        {
            "gateways": row["gateways"],
            "quantile": share,
            "t1_t0_us": row[f"t1_t0_{label}_us"],
            "gateway_spread_us": row[f"gw_spread_{label}_us"],
        }
        for _, row in wide.iterrows()
        for label, share in quantiles.items()
    ]
    return pd.DataFrame(rows)


def bot_detection() -> pd.DataFrame:
    """Table 3: ``bot_ratio, protocol, only_correct_verdicts, errors_reported``."""
    return _read("paper_table3_bot_detection.csv")
