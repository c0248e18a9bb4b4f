"""The ``beaver`` command line (:mod:`cli.main`): a subcommand per module of :mod:`cli.commands`."""
