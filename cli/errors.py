"""The one error every command raises for input it cannot use."""


class UsageError(ValueError):
    """Input a command cannot use: reported as one line, exit status 2."""
