"""The summary of a stored run: the numbers ``beaver run`` prints (and ``--json`` gives).

Everything is read back from the store, so the summary says what a later
``beaver show`` would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.coordinator.store import Store
from hosts.services.registry import DEFAULT_SERVICE, service_kind
from stats import percentile, start_rate


def summarize(store: Store, run_id: int, db: Path) -> dict[str, Any]:
    """The run's summary from what is stored (the same numbers ``beaver show`` gives).

    A service's invariant (the bank's) is checked on every accepted snapshot; for a
    service without one ``invariant_violations`` is None and ``violating_snapshots``
    empty."""
    run_row = store.run(run_id)
    service = run_row["parameters"].get("service", DEFAULT_SERVICE)
    kind = service_kind(service)
    checked = kind is not None and kind.invariant_name is not None
    rows = store.snapshot_rows(run_id)
    accepted = [r for r in rows if r["valid"] and r["complete"]]
    violating = []
    for row in accepted if checked else []:
        assert kind is not None
        snapshot = store.snapshot(run_id, row["snapshot_id"])
        if kind.invariant(snapshot.node_states(), snapshot.in_flight, run_row["parameters"]):
            violating.append(row["snapshot_id"])
    verdicts = store.verdicts(run_id)
    judged = [r for r in rows if r["snapshot_id"] in verdicts]
    inconsistent = [r["snapshot_id"] for r in judged
                    if not verdicts[r["snapshot_id"]]["consistent"]]
    inexact = [r["snapshot_id"] for r in judged
               if r["complete"] and not verdicts[r["snapshot_id"]]["channel_exact"]]

    def oracle(count: int) -> int | None:
        return count if verdicts else None

    updates = [r["update_us"] for r in rows if r["update_us"] is not None]
    components = store.component_counters(run_id)
    counters = store.node_counters(run_id)
    chains = [c["chain_min_us"] for c in counters.values() if c["chain_min_us"] is not None]
    return {
        "run": run_id, "protocol": run_row["protocol"], "service": service,
        "snapshots": len(rows),
        "valid": sum(r["valid"] for r in rows), "complete": sum(r["complete"] for r in rows),
        "accepted": len(accepted),
        "invariant_violations": len(violating) if checked else None,
        "violating_snapshots": violating,
        "judged": len(judged), "inconsistent": oracle(len(inconsistent)),
        "inconsistent_valid": oracle(sum(r["snapshot_id"] in set(inconsistent) for r in accepted)),
        "channel_inexact": oracle(len(inexact)), "inconsistent_snapshots": inconsistent,
        "t1_t0_p50_us": percentile(updates, 0.5), "t1_t0_p99_us": percentile(updates, 0.99),
        "start_rate_hz": start_rate([r["t0"] for r in rows]),
        "window": run_row["parameters"].get("window", 1),
        "tau_min_us": run_row["tau_min_us"], "tau_source": run_row["tau_source"],
        "shortest_chain_us": min(chains, default=None),
        "rejected_reports": store.rejections(run_id),
        "data_loss": run_row["parameters"].get("data_loss", 0.0),
        "retransmissions": sum(c.get("retransmissions", 0) for c in components.values()),
        "forged_credits": sum(c.get("service_ignored_by.forged_credit", 0)
                              for c in components.values()),
        "rejected_input": rejected_input(components), "db": str(db),
    }


IGNORED_PREFIXES = ("malformed_by.", "service_ignored_by.")
"""Component counters of input ignored by reason: by the runtime, by the service."""


def rejected_input(components: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per component, the input it ignored by reason (components that ignored some)."""
    rejected = {
        component: {name.split(".", 1)[1]: value for name, value in counters.items()
                    if name.startswith(IGNORED_PREFIXES) and value}
        for component, counters in components.items()}
    return {component: reasons for component, reasons in rejected.items() if reasons}


