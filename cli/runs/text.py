"""The summary of a run as the lines ``beaver run`` prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beaver.protocols import protocol
from hosts.services.registry import DEFAULT_SERVICE, service_kind


def format_summary(summary: dict[str, Any]) -> str:
    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} us"

    return "\n".join([
        f"run {summary['run']} ({summary['protocol']}, {summary.get('service', 'bank')}): "
        f"{summary['snapshots']} snapshots, "
        f"{summary['valid']} valid, {summary['complete']} complete, "
        f"{summary['accepted']} accepted (valid and complete)",
        invariant_line(summary),
        *client_lines(summary.get("clients", [])),
        oracle_line(summary),
        f"{update_times(summary, us)}; tau_min {us(summary['tau_min_us'])} "
        f"({summary['tau_source']})",
        start_line(summary),
        failures_line(summary),
        f"in-group retransmissions: {summary['retransmissions']} (data loss "
        f"{summary['data_loss']:g}); forged credits refused: {summary['forged_credits']}; "
        f"ignored input: {summary['rejected_input'] or 'none'}",
        *capture_lines(summary.get("capture")),
        f"rejected agent reports: {summary['rejected_reports'] or 'none'}; "
        f"stored in {summary['db']} (beaver show --db {summary['db']} --run {summary['run']})",
    ])


def failures_line(summary: dict[str, Any]) -> str:
    """The components that died during the run and the snapshots that stayed open."""
    failures = summary.get("failures") or []
    if not failures:
        return "failed components: none"
    named = "; ".join(f"{f['component']} ({f['reason']})" for f in failures)
    given_up = summary.get("given_up_snapshots") or []
    return (f"failed components: {named}; snapshots stored incomplete because of it: "
            f"{given_up or 'none'}")


def update_times(summary: dict[str, Any], us: Callable[[float | None], str]) -> str:
    """t1 - t0, or n/a for a protocol without gateways (there is no gateway phase)."""
    if not protocol(summary["protocol"]).uses_gateways:
        return f"t1 - t0: n/a ({summary['protocol']} has no gateways)"
    return f"t1 - t0: p50 {us(summary['t1_t0_p50_us'])}, p99 {us(summary['t1_t0_p99_us'])}"


def start_line(summary: dict[str, Any]) -> str:
    rate = summary.get("start_rate_hz")
    started = "-" if rate is None else f"{rate:.0f} snapshots/s"
    return (f"started at {started}, up to {summary.get('window', 1)} gateway updates "
            "in flight")


def invariant_line(summary: dict[str, Any]) -> str:
    if summary["invariant_violations"] is None:
        return (f"bank invariant: not applicable (the service is "
                f"{summary.get('service', 'bank')}, not the bank)")
    kind = service_kind(summary.get("service", DEFAULT_SERVICE))
    name = kind.invariant_name if kind and kind.invariant_name else "invariant"
    return (f"{name} violations among accepted snapshots: "
            f"{summary['invariant_violations']}"
            + (f" (snapshots {summary['violating_snapshots']})"
               if summary["violating_snapshots"] else ""))


def client_lines(clients: list[dict[str, Any]]) -> list[str]:
    """One line per external key-value client: its requests, replies and latency."""
    return [f"kv client {n}: {c['sent']} requests, {c['replies']} replies "
            f"({c['from_vip']} from the VIP), {c['lost']} unanswered; latency p50 "
            f"{c['latency_ms']['p50']} ms, p99 {c['latency_ms']['p99']} ms"
            for n, c in enumerate(clients, start=1)]


def oracle_line(summary: dict[str, Any]) -> str:
    if summary["inconsistent"] is None:
        return "oracle (ground truth from the hosts' logs): not judged"
    return (f"oracle (ground truth from the hosts' logs): {summary['inconsistent']} of "
            f"{summary['judged']} snapshots causally inconsistent, "
            f"{summary['inconsistent_valid']} of {summary['accepted']} accepted; channel state "
            f"inexact in {summary['channel_inexact']} of {summary['complete']} complete")


def capture_lines(capture: dict[str, Any] | None) -> list[str]:
    """The wire check of ``--capture``: datagrams seen at the backends, wire-code mismatches."""
    if capture is None:
        return []
    return [f"wire check: {capture['packets']} datagrams that crossed a gateway captured at "
            f"the backends, {capture['mismatches']} with a wire code no gateway stamped then"
            + (f" (first: {capture['first_mismatches']})" if capture["mismatches"] else "")]
