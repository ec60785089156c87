"""One run at a time into an output directory: an exclusive lock held for the run's life.

A run writing into ``OUT`` (its staging directories ``.OUT.partial-*`` and, chunked, its work directory
``.OUT.defoscan-work`` beside it) holds ``fcntl.flock`` on ``.OUT.defoscan-lock``, a file beside ``OUT``. A second
run into the same ``OUT`` is refused in one line (:class:`~defoscan.errors.InputError`), or waits for the first
with ``wait=True``. The kernel drops the lock when its process ends, however it ends (SIGKILL too), so a killed
run never leaves a stale lock: the file it leaves is taken by the next run.

Whoever takes the lock removes what killed runs of ``OUT`` left (:func:`remove_stale_staging`): every writer of
``OUT``'s staging holds the lock, so while it is held no staging directory of ``OUT`` belongs to a live run. This is
the one clean-up rule, for in-memory and chunked runs alike.

The lock is re-entrant in its thread (``detect`` holds it for the run, and the writing of the outputs takes it
again); another thread or process is refused.
"""

import contextlib
import errno
import glob
import os
import shutil
import threading

from defoscan.errors import InputError
from defoscan.log import warn

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None

LOCK_SUFFIX = ".defoscan-lock"
# flock's errors on a file system that has no locks (some network file systems): the run goes on, with a warning.
UNLOCKABLE = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL})
STAGING_INFIX = ".partial-"  # staging directories: .OUT.partial-XXXXXXXX (defoscan.outputs.staged_directory)

_held = threading.local()  # lock file path -> times taken, in this thread


def lock_path(out_dir):
    """The lock file of an output directory: ``.OUT.defoscan-lock`` beside it."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    return os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}{LOCK_SUFFIX}")


def staging_pattern(out_dir):
    """The glob pattern of ``out_dir``'s staging directories."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    name = glob.escape(os.path.basename(out_dir))
    return os.path.join(glob.escape(os.path.dirname(out_dir)), f".{name}{STAGING_INFIX}*")


@contextlib.contextmanager
def output_lock(out_dir, *, wait=False, log=None):
    """Hold the exclusive lock of ``out_dir`` (and of its work directory) for the block.

    Taking it removes the staging directories that killed runs of ``out_dir`` left (:func:`remove_stale_staging`).
    The lock file's parent directories are created if need be, and removed again if they are left empty.

    Parameters
    ----------
    out_dir : str or os.PathLike
    wait : bool
        Wait for another run holding the lock to finish, instead of refusing.
    log : callable, optional
        ``log(message)`` when waiting.

    Raises
    ------
    InputError
        Another run holds the lock (and ``wait`` is false), or the lock file cannot be created.
    """
    path = lock_path(out_dir)
    counts = _counts()
    if counts.get(path):
        counts[path] += 1
        try:
            yield
        finally:
            counts[path] -= 1
        return
    parent = os.path.dirname(path)
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        descriptor = _acquire(path, os.path.abspath(os.fspath(out_dir)), wait, log or (lambda message: None))
    except BaseException:
        _remove_empty(parent, existing)
        raise
    counts[path] = 1
    try:
        remove_stale_staging(out_dir)
        yield
    finally:
        del counts[path]
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # while still held: a run that opened the old file sees it gone and opens it again
        os.close(descriptor)
        _remove_empty(parent, existing)


def remove_stale_staging(out_dir):
    """Remove the staging directories of ``out_dir`` (``.OUT.partial-*``); only with its lock held.

    Under the lock, they are all left by runs that were killed while writing: a live run's staging is held under
    the same lock.
    """
    for stale in glob.glob(staging_pattern(out_dir)):
        shutil.rmtree(stale, ignore_errors=True)


def _counts():
    if not hasattr(_held, "counts"):
        _held.counts = {}
    return _held.counts


def _acquire(path, out_dir, wait, log):
    """An open descriptor of the lock file ``path``, flock-ed exclusively, with this process's id written in it."""
    waited = False
    while True:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # a parent removed meanwhile by a run that ended: again
            continue
        except OSError as error:
            raise InputError(out_dir, f"cannot create the lock file {path} ({error.strerror})") from None
        if fcntl is None:
            return descriptor
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(descriptor)
                if not wait:
                    raise InputError(
                        out_dir,
                        f"another defoscan run{holder} is writing this output directory; wait until it ends, or "
                        "pass --wait to start then",
                    ) from None
                if not waited:
                    log(f"waiting for the other defoscan run{holder} writing {out_dir} to end")
                    waited = True
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except OSError as error:
                if error.errno not in UNLOCKABLE:
                    raise
                warn(f"cannot lock {path} ({error.strerror}): another run into {out_dir} would not be stopped")
                return descriptor
            if _same_file(descriptor, path):
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)  # the run before removed the file as it ended: lock the one there now


def _same_file(descriptor, path):
    """Whether ``path`` still names the file open as ``descriptor`` (a run ending removes its lock file)."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(descriptor)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def _holder(descriptor):
    """`` (process N)`` from the lock file, or nothing when it names no process."""
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""


def _remove_empty(directory, existing):
    """Remove ``directory`` and its parents up to ``existing`` (excluded) while they are empty."""
    while directory != existing and len(directory) > len(existing):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)
