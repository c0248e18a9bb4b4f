"""Beaver testbed: partial snapshots of cloud services that stay causally consistent.

Packages: :mod:`beaver.core` (the protocol, pure), :mod:`beaver.sim` (a
discrete-event simulator), :mod:`beaver.oracle` (ground-truth judge of
snapshots) and :mod:`beaver.cli` (the ``beaver`` command).
"""

__version__ = "0.1.0"
