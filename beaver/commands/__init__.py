"""Subcommands of the ``beaver`` command line (see :mod:`beaver.cli`)."""
