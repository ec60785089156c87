"""The gridding stage on a store: equal to gridding the points whole, one chunk at a time."""

import numpy as np
import zarr

from defoscan.grid import aligned_grid, grid_points
from defoscan.grid_store import grid_store
from defoscan.points import make_points


def test_the_store_grid_equals_the_whole_grid(tmp_path):
    rng = np.random.default_rng(9)
    n = 40_000
    x = rng.uniform(401_000.0, 408_310.0, n)
    y = rng.uniform(5_200_000.0, 5_206_020.0, n)
    x[:50] = 401_000.0 + 50.0 * rng.integers(0, 140, 50)  # points on cell (and chunk) edges
    y[:50] = 5_200_000.0 + 50.0 * rng.integers(0, 120, 50)
    velocity = rng.normal(0.0, 3.0, n)
    velocity[::97] = np.nan  # no velocity: not gridded
    points = make_points(x, y, velocity, crs="EPSG:32633")
    grid = aligned_grid("EPSG:32633", 50.0, x.min(), x.max(), y.min(), y.max())
    whole = grid_points(points, grid=grid)
    seen = []
    group = grid_store(points, grid, tmp_path / "s.zarr", chunk=32, progress=lambda d, t: seen.append(t))
    assert set(seen) == {len(seen)} == {-(-grid.height // 32) * -(-grid.width // 32)}
    stored = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert np.array_equal(stored["velocity"][...], whole["velocity"].values, equal_nan=True)
    assert np.array_equal(stored["count"][...], whole["count"].values)
    assert int(stored["count"][...].sum()) == np.isfinite(velocity).sum()
    assert group.attrs["shape"] == [grid.height, grid.width] and group.attrs["cell_size"] == 50.0
