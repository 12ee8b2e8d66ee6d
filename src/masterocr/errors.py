"""One error type for user mistakes: the CLI prints its message as one line and exits non-zero."""

import os
import stat


class UserError(Exception):
    """A problem the user can fix (bad path, bad file, bad config); the message names the file and the fix."""


def require_regular_file(path: str | os.PathLike, what: str, fix: str) -> None:
    """Raise UserError unless `path` is a regular file (symlinks followed), judged by os.stat alone.

    A FIFO, device or folder is refused without opening it: opening a FIFO for reading blocks until a writer
    comes, and a device can stream forever. `what` names the file's role ("checkpoint"), `fix` says what to pass.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror}); {fix}") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise UserError(f"{what} {path} is {kind}, not a regular file; {fix}")
