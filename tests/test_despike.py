"""Despiking: known answers on synthetic maps, and sanity on the real data (../shared)."""

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer

from defoscan.despike import despike_grid, despike_points
from defoscan.io import read_input
from defoscan.points import make_points
from defoscan.raster import make_raster
from defoscan.tracks import grid_inputs

CELL = 50.0
SHINMOEDAKE = (130.883, 31.911)  # lon, lat


def grid_of(velocity):
    return make_raster(velocity, Affine(CELL, 0, 0, 0, -CELL, velocity.shape[0] * CELL), "EPSG:32652")


def inject_spikes(rng, n, rate=0.01, low=10.0, high=100.0, among=None):
    """Indices (of ``n`` values, or of the True entries of ``among``) and offsets of isolated spikes."""
    pool = np.arange(n) if among is None else np.flatnonzero(among)
    index = rng.choice(pool, int(round(rate * pool.size)), replace=False)
    return index, np.exp(rng.uniform(np.log(low), np.log(high), index.size)) * rng.choice([-1.0, 1.0], index.size)


def disc(distance, diameter, amplitude):
    return np.where(distance < diameter / 2, amplitude, 0.0)


def gaussian_bowl(distance, diameter, amplitude):
    return amplitude * np.exp(-0.5 * (distance / (diameter / 4)) ** 2)


# --- synthetic known answers: grids ---------------------------------------------------------------------------

# (row, col, diameter m, amplitude mm/yr, shape): a 200 m quarry of 30 mm/yr is the example of a non-spike.
GRID_SIGNALS = (
    (40, 40, 200.0, -30.0, disc),
    (40, 120, 200.0, 30.0, disc),
    (120, 40, 500.0, -60.0, disc),
    (120, 120, 200.0, -40.0, gaussian_bowl),
    (170, 60, 500.0, -25.0, gaussian_bowl),
    (170, 160, 1000.0, 80.0, gaussian_bowl),
)


def synthetic_grid(seed, coverage=1.0):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:200, 0:200]
    velocity = 0.01 * cols - 0.02 * rows + rng.normal(0.0, 1.5, rows.shape)
    inside = np.zeros(rows.shape, dtype=bool)
    for row, col, diameter, amplitude, shape in GRID_SIGNALS:
        distance = CELL * np.hypot(rows - row, cols - col)
        velocity += shape(distance, diameter, amplitude)
        inside |= distance < diameter / 2
    valid = rng.random(rows.shape) < coverage
    spike = np.zeros(rows.shape, dtype=bool)
    index, offset = inject_spikes(rng, velocity.size, among=valid & ~inside)
    spike.ravel()[index] = True
    velocity.ravel()[index] += offset
    velocity[~valid] = np.nan
    return velocity, spike, inside & valid


@pytest.mark.parametrize("seed, coverage", [(0, 1.0), (1, 1.0), (2, 0.6)])
def test_grid_removes_spikes_and_keeps_quarries_and_bowls(seed, coverage):
    velocity, spike, inside = synthetic_grid(seed, coverage)
    despiked, removed = despike_grid(grid_of(velocity))
    removed = removed.values
    assert removed[spike].mean() >= 0.95
    assert not removed[inside].any()  # every cell of every quarry and bowl stays
    assert removed[~spike].mean() < 0.001
    assert np.isnan(despiked["velocity"].values[removed]).all()


def test_grid_spike_cells_become_no_data_and_nothing_else_changes():
    velocity, _, _ = synthetic_grid(3, coverage=0.8)
    count = np.where(np.isfinite(velocity), 4, 0)
    grid = make_raster(velocity, Affine(CELL, 0, 0, 0, -CELL, 200 * CELL), "EPSG:32652", count=count)
    despiked, removed = despike_grid(grid)
    removed = removed.values
    assert removed.any()
    assert np.isnan(despiked["velocity"].values[removed]).all()
    assert (despiked["count"].values[removed] == 0).all()
    np.testing.assert_array_equal(despiked["velocity"].values[~removed], grid["velocity"].values[~removed])
    np.testing.assert_array_equal(despiked["count"].values[~removed], count[~removed])
    assert np.isfinite(grid["velocity"].values[removed]).all()  # the input is left alone
    assert despiked.rio.crs == grid.rio.crs and despiked.rio.transform() == grid.rio.transform()
    summary = despike_grid(grid)[1].attrs
    assert summary["removed"] == int(removed.sum())
    assert summary["sigma_mm_yr"] == pytest.approx(1.5, rel=0.25)  # the noise of the map, in mm/yr


def test_grid_a_lone_spike_in_a_flat_map_is_the_only_cell_removed():
    velocity = np.full((30, 30), 3.0, dtype=np.float32)
    velocity[12, 17] = -40.0
    velocity[5, 5] = 4.5  # 1.5 mm/yr off a perfectly flat neighbourhood: under min_residual, not a spike
    _, removed = despike_grid(grid_of(velocity))
    assert np.argwhere(removed.values).tolist() == [[12, 17]]


def test_grid_floor_from_the_map_noise_protects_a_quiet_neighbourhood():
    rng = np.random.default_rng(4)
    velocity = rng.normal(0.0, 2.0, (100, 100))
    velocity[40:60, 40:60] = 0.0  # a perfectly smooth patch: its local MAD is zero
    velocity[50, 50] = 6.0  # 3 map sigmas: too small to be a spike, though infinitely many local MADs
    velocity[45, 45] = 12.0  # 6 map sigmas, unsupported: a spike
    _, removed = despike_grid(grid_of(velocity), min_residual=0.0)
    assert not removed.values[50, 50]
    assert removed.values[45, 45]


def test_grid_support_rule_keeps_a_pair_only_when_one_supporter_is_enough():
    rng = np.random.default_rng(5)
    velocity = rng.normal(0.0, 1.0, (40, 40))
    velocity[20, 20], velocity[20, 21] = -35.0, -33.0  # two adjacent cells that agree
    removed_two = despike_grid(grid_of(velocity), min_support=2)[1].values
    removed_one = despike_grid(grid_of(velocity), min_support=1)[1].values
    assert removed_two[20, 20] and removed_two[20, 21]
    assert not removed_one[20, 20] and not removed_one[20, 21]


def test_grid_cells_with_too_few_neighbours_are_not_judged():
    velocity = np.full((20, 20), np.nan)
    velocity[2:8, 2:8] = 1.0
    velocity[15, 15] = 80.0  # alone: no neighbour within its window
    velocity[15, 13] = 0.0
    _, removed = despike_grid(grid_of(velocity))
    assert not removed.values.any()
    assert removed.attrs["judged"] == 36


def test_grid_window_must_be_odd():
    with pytest.raises(ValueError, match="odd"):
        despike_grid(grid_of(np.zeros((10, 10))), window=4)


def test_grid_and_points_agree_when_the_neighbourhoods_are_the_same():
    # A 3 x 3 window holds the 8 cells within 1.5 cells of the centre: the points on the cell centres, with up
    # to 8 neighbours within 1.5 cells, form exactly the same neighbourhoods, edges and holes included.
    velocity, _, _ = synthetic_grid(6, coverage=0.7)
    grid = grid_of(velocity)
    _, removed_cells = despike_grid(grid, window=3)
    xx, yy = np.meshgrid(grid["x"].values, grid["y"].values)
    valid = np.isfinite(velocity)
    points = make_points(xx[valid], yy[valid], velocity[valid], crs="EPSG:32652")
    _, removed_points = despike_points(points, neighbours=8, radius=1.5 * CELL)
    assert removed_cells.values.sum() > 50
    np.testing.assert_array_equal(removed_points.values, removed_cells.values[valid])
    assert removed_points.attrs["sigma_mm_yr"] == pytest.approx(removed_cells.attrs["sigma_mm_yr"])


# --- synthetic known answers: points --------------------------------------------------------------------------

POINT_SIGNALS = (  # x, y (m), diameter (m), amplitude (mm/yr), shape
    (500.0, 500.0, 100.0, -30.0, disc),
    (1500.0, 500.0, 200.0, -30.0, disc),
    (2500.0, 500.0, 200.0, 45.0, disc),
    (500.0, 1500.0, 500.0, -20.0, gaussian_bowl),
    (1500.0, 1500.0, 1000.0, -60.0, gaussian_bowl),
    (2500.0, 2000.0, 500.0, 80.0, disc),
)


def synthetic_points(seed, n=30_000):
    """Scatterers clustered in towns on a 3 x 3 km square, with signals and 1 % spikes off the signals."""
    rng = np.random.default_rng(seed)
    towns = rng.uniform(0, 3000, (12, 2))
    xy = towns[rng.integers(0, 12, n)] + rng.normal(0.0, 400.0, (n, 2))
    xy = np.vstack([xy, rng.uniform(0, 3000, (n // 3, 2))])  # a sparse rural scatter
    velocity = 0.001 * xy[:, 0] + rng.normal(0.0, 1.5, len(xy))
    inside = np.zeros(len(xy), dtype=bool)
    for x, y, diameter, amplitude, shape in POINT_SIGNALS:
        distance = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
        velocity += shape(distance, diameter, amplitude)
        inside |= distance < diameter / 2
    spike = np.zeros(len(xy), dtype=bool)
    index, offset = inject_spikes(rng, len(xy), among=~inside)
    spike[index] = True
    velocity[index] += offset
    return make_points(xy[:, 0], xy[:, 1], velocity, crs="EPSG:32632", track="T001"), spike, inside


@pytest.mark.parametrize("seed", [0, 1])
def test_points_removes_spikes_and_keeps_small_quarries(seed):
    points, spike, inside = synthetic_points(seed)
    assert inside.sum() > 1000 and (inside & (np.hypot(points.x - 500, points.y - 500) < 50)).sum() >= 3
    despiked, removed = despike_points(points)
    removed = removed.values
    assert removed[spike].mean() >= 0.95
    assert removed[inside].mean() <= 0.01  # the 100 m quarry and everything larger stays
    assert removed[~spike].mean() < 0.001
    assert despiked.sizes["point"] == points.sizes["point"] - removed.sum()


def test_points_keep_their_variables_and_attributes_and_skip_missing_values():
    points, spike, _ = synthetic_points(2, n=6000)
    points["coherence"] = ("point", np.linspace(0.5, 1.0, points.sizes["point"], dtype=np.float32))
    velocity = points["velocity"].values.copy()
    velocity[:10] = np.nan
    points["velocity"] = ("point", velocity)
    despiked, removed = despike_points(points)
    assert not removed.values[:10].any()
    assert removed.dims == ("point",) and removed.sizes["point"] == points.sizes["point"]
    kept = ~removed.values
    np.testing.assert_array_equal(despiked["coherence"].values, points["coherence"].values[kept])
    np.testing.assert_array_equal(despiked["x"].values, points["x"].values[kept])
    assert despiked.attrs == points.attrs
    assert removed.attrs["removed"] == int(removed.sum()) > 0
    assert removed.attrs["judged"] <= points.sizes["point"] - 10


def test_points_a_lone_point_is_not_judged_and_a_shared_position_is_not_its_own_support():
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 1000, (2000, 2))
    velocity = rng.normal(0.0, 1.0, 2000)
    xy = np.vstack([xy, [[5000.0, 5000.0], [5000.0, 5000.0], [500.0, 500.0], [500.0, 500.0], [500.0, 500.0]]])
    # far away: a pair at one position (too few neighbours); in the cloud: three values at one position
    velocity = np.concatenate([velocity, [90.0, 90.0, -50.0, 0.0, 0.0]])
    points = make_points(xy[:, 0], xy[:, 1], velocity, crs="EPSG:32632")
    _, removed = despike_points(points, neighbours=16, radius=150.0)
    assert not removed.values[2000:2002].any()
    assert removed.values[2002]  # the two zeros at its own position do not back it up
    assert not removed.values[2003:].any()


# --- real data ------------------------------------------------------------------------------------------------


def test_ustica_points_lose_only_a_small_fraction(ustica_l2b_022_zip, ustica_l2b_117_zip):
    # Ustica is a quiet volcanic island (robust noise about 0.5 mm/yr, no known deformation): what despiking
    # takes there is isolated scatterers several mm/yr off their neighbours. A bad-scatterer rate of a few per
    # thousand is usual for PS processing; more than 1 % would mean the test eats the map.
    for path in (ustica_l2b_022_zip, ustica_l2b_117_zip):
        points = read_input(path)
        despiked, removed = despike_points(points)
        fraction = removed.values.mean()
        assert 0.0 < fraction < 0.01, (path.name, fraction)
        assert removed.attrs["sigma_mm_yr"] < 1.0
        # Independent evidence that they are poor scatterers: their temporal coherence (not used by the test) is
        # lower than the kept points'.
        coherence = points["coherence"].values
        assert np.median(coherence[removed.values]) < np.median(coherence[~removed.values]) - 0.05
        # The map as a whole is unchanged: the same median and spread, within the 0.1 mm/yr step the file rounds to.
        before, after = points["velocity"].values, despiked["velocity"].values
        for q in (10, 25, 50, 75, 90):
            assert np.percentile(after, q) == pytest.approx(np.percentile(before, q), abs=0.101)


def test_kirishima_keeps_the_crater(kirishima_velocity_h5):
    (grid,) = grid_inputs([read_input(kirishima_velocity_h5)])
    despiked, removed = despike_grid(grid)
    x, y = Transformer.from_crs("EPSG:4326", grid.rio.crs, always_xy=True).transform(*SHINMOEDAKE)
    crater = {"x": slice(x - 1500, x + 1500), "y": slice(y + 1500, y - 1500)}
    before, after = grid["velocity"].sel(crater).values, despiked["velocity"].sel(crater).values
    assert np.nanmin(before) < -30 and np.nanmax(before) > 30  # the crater's subsidence and uplift lobes
    assert np.nanmin(after) < -30 and np.nanmax(after) > 30
    # The lobes themselves stay whole: every cell beyond 30 mm/yr is kept.
    assert np.isfinite(after[np.abs(np.nan_to_num(before)) > 30]).all()
    assert removed.values.mean() < 0.001


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_values_remove_nothing(n):
    points = make_points(np.arange(n) * 10.0, np.zeros(n), np.full(n, 50.0), crs="EPSG:32632")
    despiked, removed = despike_points(points)
    assert despiked.sizes["point"] == n and not removed.values.any()
    assert removed.attrs["judged"] == 0 and removed.attrs["sigma_mm_yr"] is None
    grid = grid_of(np.full((6, 6), np.nan))
    assert not despike_grid(grid)[1].values.any()
