"""The one exception type the command line turns into a clear line and exit status 2."""


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
