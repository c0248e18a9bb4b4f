"""The fault options of ``beaver simulate`` (:class:`simulator.Faults`, docs/faults.md).

Every option is off by default; each is checked like the other numbers the
command takes (:func:`cli.bounds.check`: finite, in range, one line why).
"""

from __future__ import annotations

import argparse

from cli.bounds import check
from simulator import US, Faults, Summary
from simulator.faults import GATEWAY_RESTARTS

SHARES = {
    "control_loss": ("--control-loss", 0.9, "a lost message is sent again; at 1 none arrives"),
    "control_duplicate": ("--control-duplicate", 1, ""),
    "data_loss": ("--data-loss", 0.9, "a lost packet is sent again; at 1 none arrives"),
    "data_duplicate": ("--data-duplicate", 1, ""),
    "chain_violation_share": ("--chain-violation-share", 1, ""),
}
RATES = {
    "gateway_crash_rate": ("--gateway-crash-rate", 1e5, "a crashed gateway is down 200 us"),
    "node_crash_rate": ("--node-crash-rate", 1e5, "a crashed node is down 200 us"),
}


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """The faults of :class:`simulator.Faults` (docs/faults.md); all off by default."""
    faults = parser.add_argument_group("faults (docs/faults.md)")
    none = Faults()
    faults.add_argument("--control-loss", type=float, default=none.control_loss, metavar="P",
                        help="share of control messages lost (updates, acks, notifications; "
                             "a lost report segment is retransmitted)")
    faults.add_argument("--control-duplicate", type=float, default=none.control_duplicate,
                        metavar="P", help="share of control messages sent twice")
    faults.add_argument("--control-reorder", action="store_true",
                        help="hold every control message back by a random extra delay, so "
                             "later ones overtake earlier ones")
    faults.add_argument("--gateway-crash-rate", type=float, default=none.gateway_crash_rate_hz,
                        metavar="HZ", help="crashes per second of each gateway")
    faults.add_argument("--gateway-restart", choices=GATEWAY_RESTARTS,
                        default=none.gateway_restart,
                        help="what a crashed gateway comes back with: no id (safe), an old id "
                             "it reports, or an old id it does not report (breaks the "
                             "protocol's assumption)")
    faults.add_argument("--node-crash-rate", type=float, default=none.node_crash_rate_hz,
                        metavar="HZ", help="crashes per second of each in-group node")
    faults.add_argument("--data-loss", type=float, default=none.data_loss, metavar="P",
                        help="share of data packets lost (in-group ones are retransmitted)")
    faults.add_argument("--data-duplicate", type=float, default=none.data_duplicate,
                        metavar="P", help="share of data packets duplicated")
    faults.add_argument("--clock-skew-us", type=float, default=none.clock_skew / US,
                        metavar="S", help="largest clock offset of a node or gateway from the "
                                          "coordinator (microseconds)")
    faults.add_argument("--chain-violation-share", type=float,
                        default=none.chain_violation_share, metavar="P",
                        help="share of external chains shorter than the world's tau_min "
                             "(breaks the protocol's assumption)")
    faults.add_argument("--learn-tau-min", action="store_true",
                        help="gateways report measured chains shorter than the coordinator's "
                             "tau_min, which lowers it")
    faults.add_argument("--update-timeout-us", type=float, default=none.update_timeout / US,
                        help="the coordinator's gateway update timeout and retransmission "
                             "period, under control faults or crashes (microseconds)")


def faults_from(args: argparse.Namespace) -> Faults:
    """The :class:`Faults` the arguments ask for (a UsageError for nonsense)."""
    for name, (option, high, why) in SHARES.items():
        check(option, getattr(args, name), 0, high, why)
    for name, (option, high, why) in RATES.items():
        check(option, getattr(args, name), 0, high, why)
    check("--clock-skew-us", args.clock_skew_us, 0, 1e7, "simulated runs last milliseconds")
    check("--update-timeout-us", args.update_timeout_us, 0, 1e7,
          "a timeout past any run never fires", low_open=True)
    return Faults(
        control_loss=args.control_loss,
        control_duplicate=args.control_duplicate,
        control_reorder=args.control_reorder,
        gateway_crash_rate_hz=args.gateway_crash_rate,
        gateway_restart=args.gateway_restart,
        node_crash_rate_hz=args.node_crash_rate,
        data_loss=args.data_loss,
        data_duplicate=args.data_duplicate,
        clock_skew=args.clock_skew_us * US,
        chain_violation_share=args.chain_violation_share,
        learn_tau_min=args.learn_tau_min,
        update_timeout=args.update_timeout_us * US,
    )


def render_faults(s: Summary) -> list[str]:
    """What the injected faults did, and whether the run broke the protocol's assumptions."""
    counts = {
        "control lost": s.control_lost, "control duplicated": s.control_duplicated,
        "report retransmissions": s.report_retransmissions, "data lost": s.data_lost,
        "data duplicated": s.data_duplicated, "gateway crashes": s.gateway_crashes,
        "node crashes": s.node_crashes, "inbound dropped": s.inbound_dropped,
        "updates failed": s.failed_updates, "commands re-sent": s.retransmitted,
    }
    shown = [f"{name} {value:,}" for name, value in counts.items() if value]
    lines = [f"  faults: {', '.join(shown)}"] if shown else []
    if s.revoked:
        lines.append(f"  revoked {s.revoked} accepted snapshots ({s.inconsistent_revoked} of them "
                     f"inconsistent)")
    if s.assumption_broken:
        lines.append(f"  assumption broken: {s.short_chains} external chains shorter than the "
                     f"coordinator's tau_min, {s.gateway_rollbacks} gateway restarts stamping "
                     f"an older id than acknowledged")
    return lines
