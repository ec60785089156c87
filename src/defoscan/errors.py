"""The one exception type the command line turns into a clear line and exit status 2, and the full disk it
recognises in the errors of the libraries that write (:func:`disk_full`)."""

import errno
import os

# The errors of a full file system, by errno and by the words libraries put in messages without one: GDAL
# (libtiff's "No space left on device" reaches its message or not), SQLite (SQLITE_FULL) and others.
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
FULL_DISK_WORDS = (
    *(os.strerror(code).lower() for code in sorted(FULL_DISK_ERRNOS)),
    "database or disk is full",
)


class InputError(Exception):
    """Bad input or an unusable output location, reported to the user as one line.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file or directory the problem is about, named first in the message.
    problem : str
        What is wrong, in plain words, ideally with what to do about it.
    """

    def __init__(self, path, problem):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def disk_full(error):
    """True when ``error``, or an error it was raised from or during, says the file system is full.

    Parameters
    ----------
    error : BaseException

    Returns
    -------
    bool
        An ``OSError`` with errno ``ENOSPC`` or ``EDQUOT``, or an error whose message says so (pyarrow's, GDAL's and
        SQLite's carry no errno, or carry it only in the text).
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS:
            return True
        if any(words in str(error).lower() for words in FULL_DISK_WORDS):
            return True
        error = error.__cause__ or error.__context__
    return False
