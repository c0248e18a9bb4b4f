"""docs/security.md: every claim names its test, and every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "security.md"
REFERENCE = re.compile(r"`(tests/\w+\.py)::(\w+)`")
DESCRIPTIVE = ("Threat model", "Who is who", "Not claimed here")
"""Sections that describe (the actors, what is outside the model) rather than claim."""


def sections() -> dict[str, str]:
    parts = re.split(r"^#+ (.+)$", DOC.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def claims(text: str) -> list[str]:
    """The bullets of a section, and its paragraphs that say **can** / **cannot**."""
    blocks = re.split(r"\n(?=- )|\n\n", text)
    return [b for b in blocks if b.startswith("- ") or "**can**" in b]


def test_every_claim_names_a_test() -> None:
    checked = 0
    for title, text in sections().items():
        if title.startswith(DESCRIPTIVE):
            continue
        for claim in claims(text):
            assert REFERENCE.search(claim), f"{title}: a claim without its test: {claim!r}"
            checked += 1
    assert checked >= 15


def test_every_named_test_exists() -> None:
    for path, name in set(REFERENCE.findall(DOC.read_text())):
        tree = ast.parse((REPO / path).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in defined, f"docs/security.md names {path}::{name}, which does not exist"
