"""Chunked connected components: the same partition as labelling the whole map, hysteresis, numbering, Zarr."""

import numpy as np
import pytest
import zarr
from scipy import ndimage

from defoscan.labels import label_chunked

EIGHT = np.ones((3, 3), dtype=bool)


def whole_map_labels(mask, seeds=None):
    """Reference: scipy on the whole map, seedless components dropped, numbered by first cell (row-major)."""
    labels, n = ndimage.label(mask, EIGHT)
    keep = np.ones(n + 1, dtype=bool) if seeds is None else np.bincount(labels[seeds & mask], minlength=n + 1) > 0
    keep[0] = False
    flat = labels.ravel()
    first = flat[np.sort(np.unique(flat, return_index=True)[1])]
    numbering = np.zeros(n + 1, dtype=np.int32)
    kept = [label for label in first if keep[label]]
    numbering[kept] = np.arange(1, len(kept) + 1)
    return numbering[labels], len(kept)


@pytest.mark.parametrize("chunk", [1, 3, 7, 16, 64])
def test_chunked_labels_equal_whole_map_labels(chunk):
    rng = np.random.default_rng(chunk)
    mask = ndimage.binary_dilation(rng.random((53, 47)) < 0.08, iterations=1) | (rng.random((53, 47)) < 0.05)
    out = np.zeros(mask.shape, dtype=np.int32)
    n = label_chunked(mask, out, chunk=chunk)
    expected, expected_n = whole_map_labels(mask)
    assert n == expected_n > 10 and np.array_equal(out, expected)


def test_diagonal_touch_across_a_chunk_corner_joins():
    mask = np.zeros((8, 8), dtype=bool)
    mask[3, 3] = mask[4, 4] = True  # touching only diagonally, across the corner of four 4 x 4 chunks
    mask[3, 6] = mask[4, 7] = True  # a diagonal pair across the horizontal border
    out = np.zeros(mask.shape, dtype=np.int32)
    assert label_chunked(mask, out, chunk=4) == 2
    assert out[3, 3] == out[4, 4] == 1 and out[3, 6] == out[4, 7] == 2


def test_hysteresis_keeps_only_seeded_components_into_a_zarr_array(tmp_path):
    rng = np.random.default_rng(11)
    probability = ndimage.gaussian_filter(rng.random((60, 70)), 2)
    mask, seeds = probability >= 0.5, probability >= 0.53
    out = zarr.create_array(str(tmp_path / "labels.zarr"), shape=mask.shape, chunks=(16, 16), dtype="int32")
    n = label_chunked(zarr_of(tmp_path / "mask.zarr", mask), out, chunk=16, seeds=seeds)
    expected, expected_n = whole_map_labels(mask, seeds)
    assert n == expected_n and 0 < n < ndimage.label(mask, EIGHT)[1]  # some components had no seed
    assert np.array_equal(out[...], expected)


def zarr_of(path, array):
    stored = zarr.create_array(str(path), shape=array.shape, chunks=(16, 16), dtype=array.dtype)
    stored[...] = array
    return stored


def test_number_regions_refuses_regions_sharing_cells():
    from defoscan.labels import number_regions

    window = (slice(0, 2), slice(0, 2))
    cells = np.ones((2, 2), dtype=bool)
    found = [{"score": 0.9, "window": window, "cells": cells}, {"score": 0.5, "window": window, "cells": cells}]
    with pytest.raises(ValueError, match="region 2"):
        number_regions(found, np.zeros((4, 4), dtype=np.int32))
