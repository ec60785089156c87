"""Files written whole or not at all: under a temporary name beside the target, renamed into place on success.

The one atomic writer of the package: every output, intermediate and record a killed run could leave half-written
goes through :func:`atomic_path` (``os.replace`` is atomic on one file system, so a reader sees the old file or the
new one, never part of it).
"""

import contextlib
import errno
import json
import os
import shutil
import tempfile

import numpy as np

from defoscan.errors import disk_full

# A write that failed with less than this left on its file system ran out of space (a GeoTIFF block or an SQLite
# page of GDAL's did not fit), whatever its library said.
FULL_MARGIN = 1 << 20


def _read_umask():
    current = os.umask(0)
    os.umask(current)
    return current


# Read once, at import: os.umask can only be read by setting it, which is not safe once threads write files.
_UMASK = _read_umask()


def atomic_path(path):
    """Context manager yielding a temporary path beside ``path``, renamed to ``path`` if the block succeeds.

    The temporary file does not exist when the block starts (writers such as GDAL create it themselves); it is
    removed if the block fails.
    """
    return _AtomicPath(os.fspath(path))


class _AtomicPath(contextlib.AbstractContextManager):
    def __init__(self, path):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        suffix = os.path.splitext(path)[1]
        handle, self.temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
        os.close(handle)
        os.remove(self.temporary)

    def __enter__(self):
        return self.temporary

    def __exit__(self, kind, value, traceback):
        if kind is None:
            if os.path.isfile(self.temporary):
                # Some writers create their file 0600 (as mkstemp does); an output is as readable as any other file.
                os.chmod(self.temporary, 0o666 & ~_UMASK)
            try:
                os.replace(self.temporary, self.path)
            except BaseException:  # a directory in the target's place, say: the temporary goes too
                _remove(self.temporary)
                raise
            return False
        full = isinstance(value, Exception) and not disk_full(value) and _nearly_full(os.path.dirname(self.temporary))
        _remove(self.temporary)
        if full:  # GDAL and SQLite fail without an errno ("IO error writing tag data", "no such table"): say why
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path) from value
        return False


def _remove(temporary):
    with contextlib.suppress(FileNotFoundError):
        os.remove(temporary)


def _nearly_full(directory):
    """Whether the file system of ``directory`` has less than :data:`FULL_MARGIN` bytes left (as it is while the
    temporary file of a write that ran out of space is still there)."""
    try:
        return shutil.disk_usage(directory).free < FULL_MARGIN
    except OSError:
        return False


def write_json(path, document, *, indent=2):
    """Write a JSON document (sorted keys; NumPy scalars and arrays as plain numbers and lists), atomically."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=indent, sort_keys=True, default=json_default)
        handle.write("\n")


def json_default(value):
    """JSON for NumPy scalars and arrays (plain numbers and lists); anything else as its ``str``."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
