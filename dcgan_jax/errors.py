"""The one error type a user fixes (bad config, missing data, unwritable workdir): reported as one
line, exit 1."""


class UserError(Exception):
    """Raised for problems in the user's input; main prints its message alone, without a
    traceback."""


class AbandonedWork(UserError):
    """A UserError after which background threads of a library may still run or hang (a failed
    checkpoint write): the entry point prints the line and ends the process at once instead of
    waiting for them."""
