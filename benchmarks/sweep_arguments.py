"""The sweep the data-center benchmarks share: which |G| values and datapath syncs to measure.

``--gateways 1,8`` and ``--datapath-sync purge,watch`` name the data centers
a benchmark builds, one per (|G|, sync) pair; :func:`sweep` reads both and
says in one line what is wrong with either.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from controller.gateways.datapath import SYNC_MODES


def add_sweep_arguments(parser: argparse.ArgumentParser, gateways: str) -> None:
    """``--gateways`` (default ``gateways``) and ``--datapath-sync``, read by :func:`sweep`."""
    parser.add_argument("--gateways", default=gateways, help="comma-separated |G| values")
    parser.add_argument("--datapath-sync", default=SYNC_MODES[0],
                        help="comma-separated ways a gateway's update is made to hold in its "
                        f"datapath, each in a data center of its own ({', '.join(SYNC_MODES)})")


def sweep(gateways: str, datapath_sync: str) -> tuple[list[int], list[str]]:
    """The |G| values and syncs to measure; ValueError with one line saying what is wrong."""
    try:
        sizes = [int(g) for g in gateways.split(",")]
    except ValueError:
        raise ValueError(f"--gateways must be integers, got {gateways!r}") from None
    if min(sizes) < 1:
        raise ValueError(f"--gateways must be at least 1, got {gateways!r}")
    return sizes, named(datapath_sync, SYNC_MODES, "--datapath-sync")


def named(value: str, allowed: Sequence[str], option: str) -> list[str]:
    """The names in the comma-separated ``value`` of ``option``; ValueError with one line
    naming those not ``allowed``."""
    names = value.split(",")
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {option} {', '.join(unknown)}; one of {', '.join(allowed)}")
    return names
