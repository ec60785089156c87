"""The gap-filling stage on a store: equal to filling the map whole, resumable."""

import numpy as np
import pytest
import zarr
from scipy import ndimage

from defoscan.fill import fill_array
from defoscan.fill_store import fill_store
from defoscan.scan_store import write_map

ORIGIN = (-40017, 3021)  # a global index not on a tile boundary
OPTIONS = {"cell_size": 50.0, "method": "completion", "max_distance": 400.0, "tile": 48, "halo": 8}


@pytest.fixture(scope="module")
def sparse_map():
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:130, 0:115]
    velocity = (0.05 * rows - 0.03 * cols + 8.0 * np.exp(-((rows - 60) ** 2 + (cols - 50) ** 2) / 200.0)).astype(
        np.float32
    )
    observed = ndimage.binary_dilation(rng.random(velocity.shape) < 0.05, iterations=2) & (
        rng.random(velocity.shape) < 0.6
    )
    velocity[~observed] = np.nan
    count = np.where(observed, rng.integers(1, 6, velocity.shape), 0)
    return velocity, count


def test_the_store_fill_equals_the_whole_map_fill(sparse_map, tmp_path):
    velocity, count = sparse_map
    whole = fill_array(velocity, count, origin=ORIGIN, **OPTIONS)
    assert np.isfinite(whole).sum() > np.isfinite(velocity).sum() + 2000  # something was filled
    write_map(tmp_path / "s.zarr", velocity, ORIGIN, chunk=40, count=count)
    seen = []
    filled = fill_store(tmp_path / "s.zarr", chunk=40, progress=lambda d, t: seen.append((d, t)), **OPTIONS)[...]
    assert seen == [(k, 12) for k in range(1, 13)]  # 4 x 3 chunks
    assert np.array_equal(np.isnan(filled), np.isnan(whole))
    assert np.nanmax(np.abs(filled - whole)) < 1e-4


def test_a_stopped_fill_resumes_with_the_chunks_left(sparse_map, tmp_path):
    velocity, count = sparse_map
    write_map(tmp_path / "s.zarr", velocity, ORIGIN, chunk=40, count=count)

    def stop_after_five(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fill_store(tmp_path / "s.zarr", chunk=40, progress=stop_after_five, **OPTIONS)
    assert int(zarr.open_group(str(tmp_path / "s.zarr"))["done"]["fill"][...].sum()) == 5
    seen = []
    fill_store(tmp_path / "s.zarr", chunk=40, progress=lambda d, t: seen.append(d), **OPTIONS)
    assert seen == list(range(6, 13))
    with pytest.raises(ValueError, match="other chunks"):
        fill_store(tmp_path / "s.zarr", chunk=30, **OPTIONS)
