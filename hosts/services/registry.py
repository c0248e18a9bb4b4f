"""The services the in-group can run, by name: one registration per service.

``beaver run --service``, the agent's ``--service``, ``beaver show`` and
``beaver restore`` take their choices and help from :data:`SERVICES`. To add
a service, write its module (a :class:`~hosts.services.kind.ServiceKind`
subclass beside its runtime class) and add one instance below; see
``docs/extending.md``.
"""

from __future__ import annotations

from hosts.services.bank import BankService
from hosts.services.kind import ServiceKind
from hosts.services.kv import KeyValueService

SERVICES: dict[str, ServiceKind] = {kind.name: kind for kind in (
    BankService(),
    KeyValueService(),
)}
"""Every registered service, by name (the first is the default)."""

DEFAULT_SERVICE = next(iter(SERVICES))


def service_kind(name: str) -> ServiceKind | None:
    """The registered service ``name`` (None if none: e.g. a run stored by an extension)."""
    return SERVICES.get(name)


def titles() -> str:
    """``bank or key-value store``: the registered services as texts name them."""
    return " or ".join(kind.title for kind in SERVICES.values())
