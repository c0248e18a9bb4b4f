"""What the experiments run in the emulated data center share.

They need root and a running Open vSwitch (:func:`testbed.network.machine_problem` says why
not, before anything is built) and take one seed by default: each point is
one emulated run, minutes where a simulated world takes seconds.
"""

from __future__ import annotations

from typing import Any

from experiments.base import Experiment
from testbed.network import machine_problem


def emulated_experiment(**fields: Any) -> Experiment:
    """An :class:`Experiment` that runs in the emulated data center."""
    return Experiment(default_seeds=1, machine_problem=machine_problem, **fields)
