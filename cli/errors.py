"""The errors a command raises: for input it cannot use, and for a failure of its own."""


class UsageError(ValueError):
    """Input a command cannot use: reported as one line, exit status 2."""


class CommandFailed(RuntimeError):
    """The command could not do its job (a database it cannot use, say): one line, exit 1."""
