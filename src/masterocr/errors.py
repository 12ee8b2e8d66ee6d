"""One error type for user mistakes: the CLI prints its message as one line and exits non-zero."""


class UserError(Exception):
    """A problem the user can fix (bad path, bad file, bad config); the message names the file and the fix."""
