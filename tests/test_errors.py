"""defoscan.errors: the full disk told from the errors the writing libraries raise."""

import errno
import sqlite3

import pytest

from defoscan.errors import InputError, disk_full


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        # pyarrow: the errno, and the words only in the text of its message
        OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device"),
        sqlite3.OperationalError("database or disk is full"),
    ],
)
def test_full_disk_errors(error):
    assert disk_full(error)


def test_full_disk_found_in_the_error_raised_from():
    # rasterio raises "Write failed" from GDAL's error, which carries libtiff's words
    try:
        try:
            raise RuntimeError("_tiffWriteProc: No space left on device")
        except RuntimeError as gdal:
            raise OSError("Write failed. See previous exception for details.") from gdal
    except OSError as error:
        assert disk_full(error)


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EACCES, "Permission denied"),
        ValueError("could not convert string to float: 'abc'"),
        InputError("a.csv", "no rows"),
    ],
)
def test_other_errors_are_not_a_full_disk(error):
    assert not disk_full(error)


def test_a_cycle_of_errors_ends():
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert not disk_full(first)
