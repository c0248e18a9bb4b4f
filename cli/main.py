"""The ``beaver`` command line: one subcommand per module in :mod:`cli.commands`.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Bad input gets one clear line on stderr and exit 2
(argparse's convention, without its usage lines); a command's own failure
gets one line and exit 1, and so does an error no command foresaw (with
``BEAVER_TRACEBACK=1`` in the environment it shows its traceback instead).
Ctrl-C, SIGTERM and SIGHUP stop a command the same way, after it removed
what it created (:mod:`testbed.termination`): exit 130, 143 or 129.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from cli.commands import (
    clean,
    compare,
    console,
    experiment,
    export,
    plot,
    restore,
    run,
    show,
    simulate,
)
from cli.errors import CommandFailed, UsageError
from testbed.termination import Terminated, raise_on_termination

COMMAND_MODULES = (simulate, experiment, plot, run, console, show, restore, compare, export,
                   clean)
"""The command modules, in the order ``beaver --help`` lists them."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (and exit 2), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {' '.join(message.split())}\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = OneLineParser(
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


def _check_types(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """argparse leaves a value like ``--window=--`` unconverted: refuse it as it would."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = subparsers.choices[args.command]
    for action in command._actions:
        value = getattr(args, action.dest, None)
        if action.type in (int, float) and value is not None and (
                type(value) not in (int, float) or isinstance(value, bool)):
            command.error(f"argument {'/'.join(action.option_strings) or action.dest}: "
                          f"expected one {action.type.__name__}, got {value!r}")


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    _check_types(parser, args)
    raise_on_termination()
    try:
        return commands[args.command].run(args)
    except UsageError as error:
        print(f"beaver {args.command}: {error}", file=sys.stderr)
        return 2
    except CommandFailed as error:
        print(f"beaver {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, Terminated):
            print(f"beaver {args.command}: terminated ({interrupt})", file=sys.stderr)
            return interrupt.exit_status
        print(f"beaver {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``beaver show | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:
        if os.environ.get("BEAVER_TRACEBACK"):
            raise
        print(f"beaver {args.command}: failed: {type(error).__name__}: "
              f"{' '.join(str(error).split())[:300]}", file=sys.stderr)
        return 1

