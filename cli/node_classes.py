"""``--node-class MODULE_PATH:CLASS``: another implementation of the in-group node rule.

``beaver simulate --node-class`` and the classroom labs' checkers run a
piggybacking protocol with a node class loaded from a Python file (a
student's solution, say); :func:`node_class_for` loads and checks it.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

from beaver.protocols import PROTOCOLS, PiggybackNodeFactory, piggybacking
from cli.errors import UsageError

NODE_METHODS = ("send", "receive", "notify")
"""What a node class must define to stand in for :class:`PiggybackNode`."""


def load_node_class(spec: str) -> PiggybackNodeFactory:
    """The class ``CLASS`` of the Python file in ``MODULE_PATH:CLASS``; a :class:`UsageError`
    for a missing file, a file that does not import (whatever it raises, also SystemExit),
    or no such class."""
    path_text, _, class_name = spec.rpartition(":")
    if not path_text or not class_name:
        raise UsageError(f"--node-class wants MODULE_PATH:CLASS, got {spec!r}")
    path = Path(path_text)
    if path.suffix != ".py" or not path.is_file():
        raise UsageError(f"--node-class: no Python file {path_text!r}")
    module_name = f"beaver_node_class_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"--node-class: cannot load {path_text!r} as a module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        del sys.modules[module_name]
        raise UsageError(
            f"--node-class: importing {path_text} failed: {type(error).__name__}: "
            f"{' '.join(str(error).split())[:200]}"
        ) from None
    found = getattr(module, class_name, None)
    if not inspect.isclass(found):
        raise UsageError(f"--node-class: {path_text} defines no class {class_name!r}")
    missing = [method for method in NODE_METHODS if not callable(getattr(found, method, None))]
    if missing:
        raise UsageError(f"--node-class: {class_name} has no {', '.join(missing)} method")
    return found


def node_class_for(protocol_name: str, spec: str) -> PiggybackNodeFactory:
    """The node class of ``spec``, for a piggybacking protocol only."""
    if not PROTOCOLS[protocol_name].piggybacks_ids:
        raise UsageError(
            f"--node-class replaces the node of a piggybacking protocol "
            f"({', '.join(piggybacking())}), not of {protocol_name}"
        )
    return load_node_class(spec)
