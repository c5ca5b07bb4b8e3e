"""The one exception type for problems the user can fix (bad input, missing files, ...)."""


class UserError(Exception):
    """A problem with the user's input: scripts print its message as one line and exit non-zero."""
