"""One exception type for mistakes the user can fix.

The CLI turns a `UserError` into a single line on stderr and a non-zero exit, with no traceback:
bad paths, bad config keys, mismatched checkpoints. Anything else that escapes is a bug in growgpt
and keeps its traceback so it can be reported.
"""


class UserError(Exception):
    """A problem with the user's input, files or settings; the message says what and where."""

    exit_code = 2
