"""How many CPU cores this process may use: the one figure every pool, KD-tree and sort split takes its size from."""

import os


def usable_cores():
    """Cores this process may run on (its CPU affinity on Linux, the machine's count elsewhere), at least 1.

    Returns
    -------
    int
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
