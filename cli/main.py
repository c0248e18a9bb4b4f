"""The ``beaver`` command line: one subcommand per module in :mod:`cli.commands`.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Bad input gets one clear line on stderr and exit 2
(argparse's convention); a command's own failure gets one line and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from cli.commands import clean, experiment, plot, restore, run, show, simulate
from cli.errors import UsageError

COMMAND_MODULES = (simulate, experiment, plot, run, show, restore, clean)
"""The command modules, in the order ``beaver --help`` lists them."""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="beaver",
        description="Beaver partial-snapshot testbed: simulate, emulate and inspect snapshots.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands = {}
    for module in COMMAND_MODULES:
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        commands[module.NAME] = module
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.command].run(args)
    except UsageError as error:
        print(f"beaver {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"beaver {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``beaver show | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141

