"""Subcommands of the ``beaver`` command line (see :mod:`cli.main`)."""
