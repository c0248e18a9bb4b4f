"""Lab 4: find the bots from one snapshot of the service's backends (solution)."""

from __future__ import annotations


def suspects(issued: dict[int, str], shown: list[tuple[str, int]]) -> set[str]:
    """The clients that showed a ticket no backend in this snapshot issued to them."""
    return {client for client, ticket in shown if issued.get(ticket) != client}
