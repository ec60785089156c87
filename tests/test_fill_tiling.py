"""The global tiling: blending weights sum to one, tiles anchored to global cells, chunked = whole."""

import numpy as np
import pytest
from affine import Affine

from defoscan.benchmark.truth_fields import synthetic_map
from defoscan.fill import fill_array, reach_cells
from defoscan.fill.tiling import chunk_margin, grid_origin, ramp, run_tiled, tile_starts


@pytest.mark.parametrize(("tile", "halo"), [(64, 8), (100, 20), (1024, 64)])
def test_ramps_of_overlapping_tiles_sum_to_one(tile, halo):
    stride = tile - 2 * halo
    total = np.zeros(5 * stride + 2 * tile)
    for k in range(6):
        total[k * stride : k * stride + tile] += ramp(tile, halo)
    inside = total[tile : 5 * stride]  # covered by two tiles wherever they overlap
    np.testing.assert_allclose(inside, 1.0, atol=1e-12)
    assert ramp(tile, halo)[0] < 0.01 and ramp(tile, halo)[tile // 2] == 1.0


@pytest.mark.parametrize(("origin", "size"), [(0, 10), (-37, 500), (12345, 3000), (5, 1)])
def test_tile_starts_cover_the_range_on_the_global_grid(origin, size):
    tile, halo = 256, 32
    starts = tile_starts(origin, size, tile, halo)
    stride = tile - 2 * halo
    assert all((s + halo) % stride == 0 for s in starts)  # anchored to global cell indices
    cells = np.arange(origin, origin + size)
    covered = np.zeros(size, dtype=bool)
    for s in starts:
        assert s < origin + size and s + tile > origin  # every tile overlaps the range
        covered |= (cells >= s) & (cells < s + tile)
    assert covered.all()


def test_grid_origin_counts_cells_from_the_crs_origin():
    assert grid_origin(Affine(50.0, 0, 1_000_000.0, 0, -50.0, 6_000_000.0)) == (-120_000, 20_000)


def test_run_tiled_blends_a_filler_that_returns_the_same_everywhere_exactly():
    # A filler returning a fixed global field: blending tiles must give it back unchanged.
    field = np.random.default_rng(0).standard_normal((300, 420))
    origin = (1000, -77)
    velocity = np.where(np.random.default_rng(1).random(field.shape) < 0.2, field, np.nan)
    calls = []

    def echo(v, w, t):
        calls.append(v.shape)
        rows, cols = np.argwhere(np.isfinite(v))[0]
        # Find where this window sits by matching its first data cell (windows are exact slices).
        r0, c0 = np.argwhere(velocity == v[rows, cols])[0] - (rows, cols)
        return field[r0 : r0 + v.shape[0], c0 : c0 + v.shape[1]]

    out = run_tiled(
        echo, velocity, np.ones(field.shape), np.ones(field.shape, dtype=bool), origin=origin, tile=128, halo=16
    )
    assert len(calls) > 4
    np.testing.assert_allclose(out, field, atol=1e-12)


def test_run_tiled_rejects_a_halo_too_large():
    with pytest.raises(ValueError, match="halo"):
        run_tiled(lambda v, w, t: v, np.zeros((4, 4)), np.ones((4, 4)), np.ones((4, 4), dtype=bool), tile=64, halo=16)


@pytest.mark.parametrize("method", ["completion", "knn"])
def test_filled_whole_and_chunk_by_chunk_agree(method):
    m = synthetic_map((200, 230), 0.15, 11)
    kw = {"cell_size": 50.0, "tile": 128, "halo": 16, "method": method, "max_distance": 500.0}
    origin = (777, 1234)
    whole = fill_array(m.velocity, m.count, origin=origin, **kw)
    margin = chunk_margin(128, 16, reach_cells(500.0, 50.0))
    pieces = np.full(whole.shape, np.nan, dtype=np.float32)
    for r in range(0, 200, 110):
        for c in range(0, 230, 150):
            r0, r1, c0, c1 = (
                max(r - margin, 0),
                min(r + 110 + margin, 200),
                max(c - margin, 0),
                min(c + 150 + margin, 230),
            )
            part = fill_array(
                m.velocity[r0:r1, c0:c1], m.count[r0:r1, c0:c1], origin=(origin[0] + r0, origin[1] + c0), **kw
            )
            pieces[r : r + 110, c : c + 150] = part[r - r0 : r - r0 + 110, c - c0 : c - c0 + 150]
    assert np.array_equal(np.isnan(whole), np.isnan(pieces))
    assert np.nanmax(np.abs(whole - pieces)) <= 1e-3


def test_tiled_fill_has_no_seams():
    # Across tile boundaries the blended fill stays close to one solve over the whole map, for one smoothing
    # weight everywhere (the blend itself adds no seam).
    m = synthetic_map((256, 256), 0.3, 12, spike_fraction=0.0)
    kw = {"cell_size": 50.0, "max_distance": 500.0, "membrane": 0.03, "plate": 0.3}
    tiled = fill_array(m.velocity, m.count, tile=96, halo=16, **kw)
    single = fill_array(m.velocity, m.count, tile=1024, halo=16, **kw)
    gap = np.isfinite(tiled) & np.isnan(m.velocity)
    difference = np.abs(tiled - single)[gap]
    assert np.sqrt(np.mean(difference**2)) < 0.05 * np.nanstd(m.velocity)


def test_tiles_that_choose_their_own_smoothing_are_as_accurate_as_one_solve():
    # With the default data-driven weights each tile smooths by its own variogram, so small tiles differ from one
    # solve over the map (measured 0.2 mm/yr RMS here) but must not be worse against the truth.
    m = synthetic_map((256, 256), 0.3, 12, spike_fraction=0.0)
    kw = {"cell_size": 50.0, "max_distance": 500.0}
    tiled = fill_array(m.velocity, m.count, tile=96, halo=16, **kw)
    single = fill_array(m.velocity, m.count, tile=1024, halo=16, **kw)
    gap = np.isfinite(tiled) & np.isnan(m.velocity)

    def rmse(values):
        return np.sqrt(np.mean((values - m.truth)[gap] ** 2))

    assert rmse(tiled) < 1.05 * rmse(single)
