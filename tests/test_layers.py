"""The import contracts of pyproject.toml hold, and each of them can fail.

``lint-imports`` checks the layers (README, "How it is built"), the
independence of the gateway app and the coordinator, and that the protocol
core imports nothing of the project outside itself. Each bad import below is
written into a temporary copy of the tree, where ``lint-imports`` must report
exactly the contracts it breaks (and keep the others).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {contract["id"]: contract["name"] for contract in CONFIG["contracts"]}
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> tuple[int, dict[str, str]]:
    """Run lint-imports on the packages under ``tree``: exit status, verdict per contract."""
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(tree / "pyproject.toml")],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True, text=True, timeout=120,
    )
    verdicts = {}
    for contract, name in CONTRACTS.items():
        line = next((line for line in done.stdout.splitlines() if line.startswith(name)), "")
        verdicts[contract] = line.removeprefix(name).strip()
    return done.returncode, verdicts


def test_every_contract_is_kept() -> None:
    code, verdicts = lint_imports(ROOT)
    assert verdicts == dict.fromkeys(CONTRACTS, "KEPT")
    assert code == 0


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The project's packages and pyproject.toml, copied (removed with the temp dir)."""
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__", "reference"))
    return copy


@pytest.mark.parametrize(("module", "bad_import", "broken"), [
    # The gateway app imports the core, so a core that reached the coordinator (directly,
    # or through the CLI) would join the two.
    ("beaver/ids.py", "import controller.coordinator.store",
     {"layers", "pure-core", "control-plane"}),
    ("beaver/node.py", "import hosts.wire", {"layers", "pure-core"}),
    ("beaver/records.py", "import cli.main", {"layers", "pure-core", "control-plane"}),
    ("topologies/addressing.py", "import controller.gateways.rules", {"layers"}),
    ("topologies/record.py", "import controller.coordinator.store", {"layers"}),
    ("controller/gateways/rules.py", "import controller.coordinator.store",
     {"layers", "control-plane"}),
    ("controller/coordinator/store.py", "import controller.gateways.client",
     {"layers", "control-plane"}),
    ("controller/gateways/rules.py", "import topologies.record", set()),
])
def test_a_bad_import_breaks_its_contracts(tree_copy: Path, module: str, bad_import: str,
                                           broken: set[str]) -> None:
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + f"\n{bad_import}  # the import under test\n")
    try:
        code, verdicts = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    assert verdicts == {c: "BROKEN" if c in broken else "KEPT" for c in CONTRACTS}
    assert (code != 0) == bool(broken)
