"""Robust statistics shared by the stages: noise scales that signals and outliers do not inflate."""

import numpy as np

MAD_TO_SIGMA = 1.4826  # the MAD of a Gaussian is 0.6745 sigma


def robust_sigma(values):
    """``1.4826 * MAD`` of the finite values: the standard deviation for Gaussian noise, robust to signals.

    Parameters
    ----------
    values : numpy.ndarray

    Returns
    -------
    float
        NaN when there are no finite values.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.nan
    return MAD_TO_SIGMA * float(np.median(np.abs(finite - np.median(finite))))


SELECT_BINS = 1 << 16  # histogram bins per narrowing pass of :func:`median_of_parts`
SELECT_HOLD = 1 << 20  # values a narrowed range may hold to be sorted in memory


def median_of_parts(parts):
    """``np.median`` of values held in parts (on disk, say), exactly, holding one part at a time.

    The two middle ranks are found by narrowing: a histogram of the values in a range locates the bin holding a
    rank, and the range shrinks to that bin until it holds few enough values to collect and sort (or a single
    value). The result has the parts' dtype and the value ``np.median`` gives on their concatenation.

    Parameters
    ----------
    parts : callable
        Returns a fresh iterable of 1-D arrays of one float dtype, all finite, each time it is called.

    Returns
    -------
    numpy.floating
        NaN when there are no values.
    """
    n, low, high, dtype = 0, np.inf, -np.inf, np.float64
    for part in parts():
        if part.size:
            n, dtype = n + part.size, part.dtype
            low, high = min(low, part.min()), max(high, part.max())
    if n == 0:
        return np.float64(np.nan)
    middle = [_select(parts, rank, low, high) for rank in sorted({(n - 1) // 2, n // 2})]
    return np.median(np.asarray(middle, dtype=dtype))


def robust_sigma_of_parts(parts):
    """:func:`robust_sigma` of the values of all parts (see :func:`median_of_parts`), exactly, a part at a time."""
    median = median_of_parts(parts)
    if not np.isfinite(median):
        return np.nan
    return MAD_TO_SIGMA * float(median_of_parts(lambda: (np.abs(part - median) for part in parts())))


def _select(parts, rank, low, high):
    """The value of rank ``rank`` (0-based, ascending) among all values of the parts.

    Works on order-preserving unsigned integer keys of the floats, so every narrowing step is exact and ends.
    """
    dtype = np.asarray(low).dtype
    lo, hi = int(_order_key(np.asarray([low], dtype))[0]), int(_order_key(np.asarray([high], dtype))[0])
    below = 0  # values whose key is under `lo`
    while lo < hi:
        width = -(-(hi - lo + 1) // SELECT_BINS)
        counts = np.zeros(SELECT_BINS, dtype=np.int64)
        held = 0
        for part in parts():
            key = _order_key(part)
            key = key[(key >= lo) & (key <= hi)]
            held += key.size
            counts += np.bincount(((key - np.uint64(lo)) // np.uint64(width)).astype(np.int64), minlength=SELECT_BINS)
        if held <= SELECT_HOLD:
            keys = np.concatenate([k[(k >= lo) & (k <= hi)] for k in map(_order_key, parts())])
            return _from_key(np.partition(keys, rank - below)[rank - below : rank - below + 1], dtype)[0]
        cumulative = np.cumsum(counts)
        k = int(np.searchsorted(cumulative, rank - below, side="right"))
        below += int(cumulative[k - 1]) if k else 0
        lo, hi = lo + k * width, min(lo + (k + 1) * width - 1, hi)
    return _from_key(np.asarray([lo], dtype=np.uint64), dtype)[0]


def _order_key(values):
    """Unsigned integer keys that sort as the floats do (IEEE 754: flip all bits of negatives, the sign of others)."""
    bits = np.dtype(f"u{values.dtype.itemsize}")
    raw = np.ascontiguousarray(values).view(bits)
    sign = bits.type(1 << (8 * values.dtype.itemsize - 1))
    return np.where(raw & sign, ~raw, raw | sign).astype(np.uint64)


def _from_key(keys, dtype):
    """Inverse of :func:`_order_key`."""
    bits = np.dtype(f"u{np.dtype(dtype).itemsize}")
    keys = keys.astype(bits)
    sign = bits.type(1 << (8 * np.dtype(dtype).itemsize - 1))
    return np.where(keys & sign, keys ^ sign, ~keys).view(dtype)
