"""Lab 4: find the bots from one snapshot of the service's backends.

The backends hand every client a *ticket* in each reply, and a client's
next request shows the newest ticket it holds. Bots forge theirs. From one
snapshot you get, for every backend, what it recorded before its local
snapshot:

- ``issued``: every ticket a backend issued inside the cut, mapped to the
  client it was issued to (ticket ids are integers);
- ``shown``: every request a backend served inside the cut that showed a
  ticket, as ``(client, ticket)`` pairs (a forged ticket is a negative
  number here, but your detector must not rely on that: a real bot would
  not be so kind).

Return the clients this snapshot shows to be bots.
"""

from __future__ import annotations


def suspects(issued: dict[int, str], shown: list[tuple[str, int]]) -> set[str]:
    """The clients that showed a ticket no backend in this snapshot issued to them."""
    # TODO: a client is a suspect when it showed a ticket that is not in ``issued``,
    # or that ``issued`` says went to another client. Return the set of those clients.
    return set()
