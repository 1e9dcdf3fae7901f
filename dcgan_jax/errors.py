"""The one error type a user fixes (bad config, missing data, unwritable workdir): reported as one line, exit 1."""


class UserError(Exception):
    """Raised for problems in the user's input; main prints its message alone, without a traceback."""
