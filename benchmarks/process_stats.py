"""Resource figures of the running process, shared by the benchmarks that measure in a child process."""

import resource


def peak_mib():
    """Peak resident memory of this process so far, in MiB.

    Linux's VmHWM, not ``ru_maxrss``: the latter carries over the parent's resident size from before ``exec``
    (the benchmark runner's, with its imports), which would hide the child's own peak.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS: rough


def cpu_seconds():
    """CPU seconds of this process so far: user + system, and system alone."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime
