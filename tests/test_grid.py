"""Gridding: properties of grid_points / cell_medians / aligned_grid (hypothesis), and real rasters and points
gridded: the Ustica L3 GeoTIFF kept cell for cell, Kirishima's MintPy map georeferenced to within a cell."""

from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS, Transformer

from defoscan.errors import InputError
from defoscan.grid import (
    NICE_CELL_SIZES,
    cell_medians,
    check_extent,
    check_grid_size,
    default_cell_size,
    degrees_outside_area_of_use,
    grid_points,
    grid_raster,
    model_cell_size,
    nearest_nice_size,
    occupied_cells,
    raster_working_crs,
    scannable_share,
)
from defoscan.gridspec import GridSpec
from defoscan.io import read_input, read_inputs
from defoscan.points import make_points
from defoscan.raster import raster_transform
from defoscan.tracks import grid_inputs

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CELL_SIZES = st.sampled_from([5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 30.0, 7.5])
VELOCITY = st.floats(-100.0, 100.0, width=32, allow_nan=False)
COORDINATE = st.floats(-1e6, 8e6, allow_nan=False, allow_subnormal=False)


@st.composite
def cell_points(draw, max_points=60):
    """Points kept away from cell edges: known cell (ix, iy) plus an offset in (0.05, 0.95) of a cell."""
    cell = draw(CELL_SIZES)
    n = draw(st.integers(1, max_points))
    base_x = draw(st.integers(-5_000, 50_000))
    base_y = draw(st.integers(-5_000, 50_000))
    ix = np.array(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))) + base_x
    iy = np.array(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))) + base_y
    offset = st.floats(0.05, 0.95)
    ux = np.array(draw(st.lists(offset, min_size=n, max_size=n)))
    uy = np.array(draw(st.lists(offset, min_size=n, max_size=n)))
    v = np.array(draw(st.lists(VELOCITY, min_size=n, max_size=n)), dtype=np.float32)
    return cell, ix, iy, ux, uy, v


def _points(x, y, v, crs="EPSG:32631"):
    return make_points(x, y, v, crs=crs, track="T001", sources=["synthetic"])


# --- properties -----------------------------------------------------------------------------------------------------


@st.composite
def scattered_points(draw, max_points=80, nan=True):
    """Arbitrary float coordinates (on cell edges or not) within a few km, anywhere in a projected CRS."""
    n = draw(st.integers(1, max_points))
    x0 = draw(COORDINATE)
    y0 = draw(COORDINATE)
    spread = st.floats(0.0, 3000.0, allow_nan=False)
    x = x0 + np.array(draw(st.lists(spread, min_size=n, max_size=n)))
    y = y0 + np.array(draw(st.lists(spread, min_size=n, max_size=n)))
    values = st.one_of(VELOCITY, st.just(float("nan"))) if nan else VELOCITY
    v = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float32)
    return x, y, v


@PROPERTY
@given(scattered_points(), CELL_SIZES)
def test_counts_sum_to_valid_points(points, cell):
    x, y, v = points
    valid = np.isfinite(v)
    if not valid.any():
        with pytest.raises(ValueError):
            grid_points(_points(x, y, v), cell_size=cell)
        return
    grid = grid_points(_points(x, y, v), cell_size=cell)
    count = grid["count"].values
    assert int(count.sum()) == int(valid.sum())
    # A cell has a velocity exactly where it has points.
    np.testing.assert_array_equal(np.isfinite(grid["velocity"].values), count > 0)


@PROPERTY
@given(cell_points(), VELOCITY)
def test_constant_field_grids_to_the_constant(data, constant):
    cell, ix, iy, ux, uy, _ = data
    grid = grid_points(_points((ix + ux) * cell, (iy + uy) * cell, np.full(ix.size, constant)), cell_size=cell)
    velocity = grid["velocity"].values
    occupied = grid["count"].values > 0
    assert np.all(velocity[occupied] == np.float32(constant))
    assert np.isnan(velocity[~occupied]).all()


@PROPERTY
@given(cell_points(), st.sampled_from([(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1)]))
def test_shifting_points_by_one_cell_shifts_the_grid(data, shift):
    cell, ix, iy, ux, uy, v = data
    dx, dy = shift
    before = grid_points(_points((ix + ux) * cell, (iy + uy) * cell, v), cell_size=cell)
    after = grid_points(_points((ix + dx + ux) * cell, (iy + dy + uy) * cell, v), cell_size=cell)
    np.testing.assert_array_equal(after["velocity"].values, before["velocity"].values)
    np.testing.assert_array_equal(after["count"].values, before["count"].values)
    t0, t1 = raster_transform(before), raster_transform(after)
    assert (t1.a, t1.e) == (t0.a, t0.e) == (cell, -cell)
    assert t1.c == pytest.approx(t0.c + dx * cell, abs=1e-6)
    assert t1.f == pytest.approx(t0.f + dy * cell, abs=1e-6)
    np.testing.assert_allclose(after["x"].values, before["x"].values + dx * cell, atol=1e-6)
    np.testing.assert_allclose(after["y"].values, before["y"].values + dy * cell, atol=1e-6)


@PROPERTY
@given(cell_points())
def test_cell_medians_equal_pandas_groupby_median(data):
    cell, ix, iy, ux, uy, v = data
    grid = grid_points(_points((ix + ux) * cell, (iy + uy) * cell, v), cell_size=cell)
    # Cells computed here from the integer indices: column from the west, row from the north.
    frame = pd.DataFrame({"row": iy.max() - iy, "col": ix - ix.min(), "v": v})
    expected = frame.groupby(["row", "col"])["v"].agg(["median", "size"])
    height, width = grid["velocity"].shape
    assert (height, width) == (iy.max() - iy.min() + 1, ix.max() - ix.min() + 1)
    transform = raster_transform(grid)
    assert transform.c == pytest.approx(ix.min() * cell, abs=1e-6)
    assert transform.f == pytest.approx((iy.max() + 1) * cell, abs=1e-6)
    expected_velocity = np.full((height, width), np.nan, np.float32)
    expected_count = np.zeros((height, width), np.int32)
    rows, cols = expected.index.get_level_values(0), expected.index.get_level_values(1)
    expected_velocity[rows, cols] = expected["median"].to_numpy(np.float32)
    expected_count[rows, cols] = expected["size"].to_numpy()
    np.testing.assert_array_equal(grid["velocity"].values, expected_velocity)
    np.testing.assert_array_equal(grid["count"].values, expected_count)


@PROPERTY
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=300).map(np.array),
    st.data(),
)
def test_cell_medians_direct(cells, data):
    values = np.array(
        data.draw(
            st.lists(
                st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=cells.size, max_size=cells.size
            )
        ),
        dtype=np.float32,
    )
    n_cells = int(cells.max()) + 1 + data.draw(st.integers(0, 3))
    median, count = cell_medians(cells.astype(np.int64), values, n_cells)
    assert median.dtype == np.float32 and count.dtype == np.int32
    assert median.shape == count.shape == (n_cells,)
    frame = pd.DataFrame({"cell": cells, "v": values.astype(np.float64)})
    expected = frame.groupby("cell")["v"].agg(["median", "size"])
    expected_median = np.full(n_cells, np.nan, np.float32)
    expected_median[expected.index] = expected["median"].to_numpy(np.float32)
    expected_count = np.zeros(n_cells, np.int32)
    expected_count[expected.index] = expected["size"].to_numpy()
    np.testing.assert_array_equal(count, expected_count)
    np.testing.assert_array_equal(median, expected_median)


def test_cell_medians_of_millions_of_values():
    # Large enough for the sort to be split across threads where there are several cores.
    rng = np.random.default_rng(42)
    n, n_cells = 2_500_000, 60_000
    cells = rng.integers(0, n_cells, n)
    values = np.round(rng.normal(0.0, 5.0, n), 1).astype(np.float32)  # rounded: many ties, as in EGMS files
    median, count = cell_medians(cells, values, n_cells + 7)
    expected = pd.DataFrame({"cell": cells, "v": values}).groupby("cell")["v"].agg(["median", "size"])
    np.testing.assert_array_equal(count[expected.index], expected["size"].to_numpy())
    np.testing.assert_array_equal(median[expected.index], expected["median"].to_numpy(np.float32))
    empty = np.setdiff1d(np.arange(n_cells + 7), expected.index)
    assert empty.size >= 7 and np.isnan(median[empty]).all() and (count[empty] == 0).all()


@PROPERTY
@given(COORDINATE, COORDINATE, COORDINATE, COORDINATE, st.sampled_from(NICE_CELL_SIZES + (30.0, 7.5)))
def test_aligned_grid_edges_are_whole_cells_and_hold_the_region(a, b, c, d, cell):
    west, east = min(a, b), max(a, b)
    south, north = min(c, d), max(c, d)
    grid = GridSpec.aligned(CRS.from_epsg(3035), cell, west, east, south, north)
    g_west, g_east, g_south, g_north = grid.bounds
    for edge in grid.bounds:
        assert edge / cell == np.round(edge / cell)
    assert g_west <= west and east <= g_east
    assert g_south <= south and north <= g_north
    # Smallest such grid: at most one cell of slack on each side.
    assert g_east - g_west <= east - west + 2 * cell
    assert g_north - g_south <= north - south + 2 * cell
    assert grid.width >= 1 and grid.height >= 1
    assert tuple(grid.transform)[:6] == (cell, 0.0, g_west, 0.0, -cell, g_north)


@PROPERTY
@given(scattered_points(nan=False), st.sampled_from((5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 1000.0)))
def test_every_point_falls_inside_its_grid(points, cell):
    x, y, _ = points
    grid = grid_points(_points(x, y, np.zeros(x.size)), cell_size=cell)
    transform = raster_transform(grid)
    height, width = grid["count"].shape
    assert transform.c <= x.min() and x.max() <= transform.c + width * cell
    assert transform.f - height * cell <= y.min() and y.max() <= transform.f
    assert int(grid["count"].values.sum()) == x.size
    for edge in (transform.c, transform.f):
        assert edge / cell == np.round(edge / cell)


@PROPERTY
@given(
    st.sampled_from((5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 1000.0, 7.5, 30.0)),
    st.one_of(st.integers(-100_000, -21), st.integers(1, 800_000)),  # never 0, whose neighbours are subnormal
    st.one_of(st.integers(-100_000, -21), st.integers(1, 800_000)),
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.sampled_from((-1, 0, 1))), min_size=1, max_size=40),
)
def test_points_on_and_next_to_cell_edges_fall_inside(cell, kx, ky, steps):
    # Whole multiples of the cell size, and the floats just below and above them.
    x = np.array([(kx + i) * cell for i, _, _ in steps])
    y = np.array([(ky + j) * cell for _, j, _ in steps])
    nudge = np.array([n for _, _, n in steps], dtype=float)
    x = _nudge(x, nudge)
    y = _nudge(y, -nudge)
    grid = grid_points(_points(x, y, np.ones(x.size)), cell_size=cell)
    transform = raster_transform(grid)
    height, width = grid["count"].shape
    assert int(grid["count"].values.sum()) == x.size
    assert transform.c <= x.min() and x.max() <= transform.c + width * cell
    assert transform.f - height * cell <= y.min() and y.max() <= transform.f


def _nudge(values, direction):
    """One float step up (+1), down (-1) or none (0)."""
    up, down = np.nextafter(values, np.inf), np.nextafter(values, -np.inf)
    return np.where(direction > 0, up, np.where(direction < 0, down, values))


def test_points_on_cell_edges_fall_inside():
    # East and south edges of the region are whole cell multiples: the points there still count.
    x = np.array([0.0, 100.0, 200.0])
    y = np.array([0.0, 100.0, 200.0])
    grid = grid_points(_points(x, y, [1.0, 2.0, 3.0]), cell_size=100.0)
    assert int(grid["count"].values.sum()) == 3
    west, east, south, north = 0.0, 300.0, -100.0, 200.0
    transform = raster_transform(grid)
    height, width = grid["count"].shape
    assert (transform.c, transform.c + width * 100.0, transform.f - height * 100.0, transform.f) == (
        west,
        east,
        south,
        north,
    )


def test_grid_points_into_a_given_grid_ignores_points_outside():
    grid = GridSpec.from_corner(CRS.from_epsg(32631), 10.0, 0.0, 30.0, 3, 3)
    points = _points([5.0, 15.0, 15.5, 45.0, -5.0], [25.0, 15.0, 14.0, 15.0, 15.0], [1.0, 2.0, 4.0, 8.0, 16.0])
    result = grid_points(points, grid=grid)
    expected = np.full((3, 3), np.nan, np.float32)
    expected[0, 0] = 1.0
    expected[1, 1] = 3.0  # median of 2 and 4
    np.testing.assert_array_equal(result["velocity"].values, expected)
    assert int(result["count"].values.sum()) == 3
    assert result.attrs["track"] == "T001" and result.attrs["sources"] == ["synthetic"]
    assert CRS.from_user_input(result.rio.crs).to_epsg() == 32631


# --- cell size ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "nice"), [(7.0, 5.0), (8.0, 10.0), (30.0, 25.0), (40.0, 50.0), (140.0, 100.0), (3.0, 5.0), (1e5, 5000.0)]
)
def test_nearest_nice_size(size, nice):
    assert nearest_nice_size(size) == nice


@pytest.mark.parametrize(("spacing", "expected"), [(5.0, 10.0), (10.0, 20.0), (25.0, 50.0), (100.0, 200.0)])
def test_default_cell_size_gives_about_four_points_per_cell(spacing, expected):
    n = int(2000 / spacing)
    gx, gy = np.meshgrid(np.arange(n) * spacing, np.arange(n) * spacing)
    points = _points(gx.ravel() + 400_000.0, gy.ravel() + 5_000_000.0, np.zeros(gx.size))
    assert default_cell_size(points) == expected


def test_default_cell_size_ignores_empty_area():
    # Two dense towns 50 km apart: the sea between does not coarsen the cell.
    gx, gy = np.meshgrid(np.arange(100) * 10.0, np.arange(100) * 10.0)
    x = np.concatenate([gx.ravel(), gx.ravel() + 50_000.0])
    y = np.concatenate([gy.ravel(), gy.ravel() + 50_000.0])
    assert default_cell_size(_points(x, y, np.zeros(x.size))) == 20.0


def test_default_cell_size_is_bounded():
    assert default_cell_size(_points(np.zeros(1000), np.zeros(1000), np.zeros(1000))) == 10.0
    assert default_cell_size(_points([], [], [])) == 1000.0


def test_default_cell_size_for_sparse_points():
    gx, gy = np.meshgrid(np.arange(50) * 400.0, np.arange(50) * 400.0)
    points = _points(gx.ravel() + 400_000.0, gy.ravel() + 5_000_000.0, np.zeros(gx.size))
    assert default_cell_size(points) == 1000.0


def test_check_grid_size():
    check_grid_size(GridSpec.from_corner(CRS.from_epsg(3035), 100.0, 0.0, 0.0, 1000, 1000), "f.csv", max_cells=10**6)
    with pytest.raises(InputError, match="cells at 100 m"):
        check_grid_size(
            GridSpec.from_corner(CRS.from_epsg(3035), 100.0, 0.0, 0.0, 1001, 1000), "f.csv", max_cells=10**6
        )


# --- real data ------------------------------------------------------------------------------------------------------


def test_grid_raster_keeps_the_ustica_l3_tiff(ustica_l3_u_tiff):
    source = read_input(ustica_l3_u_tiff)
    grid = grid_raster(source)
    assert CRS.from_user_input(grid.rio.crs).to_epsg() == 3035
    assert tuple(raster_transform(grid))[:6] == tuple(raster_transform(source))[:6]
    assert grid["velocity"].shape == source["velocity"].shape
    valid = np.isfinite(source["velocity"].values)
    assert int(np.isfinite(grid["velocity"].values).sum()) == int(valid.sum()) == 522
    np.testing.assert_array_equal(np.isfinite(grid["velocity"].values), valid)
    np.testing.assert_allclose(grid["velocity"].values[valid], source["velocity"].values[valid], rtol=1e-6)
    np.testing.assert_array_equal(grid["count"].values, valid.astype(np.int32))
    assert grid.attrs["track"] == "L3-U"


def test_grid_points_of_ustica_l3_matches_the_tiff(ustica_l3_u_zip, ustica_l3_u_tiff):
    # The L3 CSV gridded at 100 m lands cell for cell on the GeoTIFF of the same product.
    points = grid_points(read_input(ustica_l3_u_zip), cell_size=100.0)
    tiff = read_input(ustica_l3_u_tiff)
    t = raster_transform(points)
    col0 = int(round((t.c - 4_500_000) / 100))
    row0 = int(round((1_800_000 - t.f) / 100))
    height, width = points["velocity"].shape
    window = tiff["velocity"].values[row0 : row0 + height, col0 : col0 + width]
    np.testing.assert_array_equal(np.isfinite(points["velocity"].values), np.isfinite(window))
    np.testing.assert_allclose(points["velocity"].values, window, rtol=1e-6)
    assert int(points["count"].values.sum()) == 522


@pytest.fixture(scope="module")
def kirishima_grid(kirishima_velocity_h5):
    with h5py.File(kirishima_velocity_h5, "r") as handle:
        velocity = handle["velocity"][()].astype(np.float64)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
    velocity[velocity == 0] = np.nan
    return grid_raster(read_input(kirishima_velocity_h5)), velocity * 1000.0, attrs


def _pixel_centres_in_utm(attrs, rows, cols):
    # MintPy's X_FIRST/Y_FIRST are the outer corner of the first pixel: centres are half a step in.
    lon = float(attrs["X_FIRST"]) + (cols + 0.5) * float(attrs["X_STEP"])
    lat = float(attrs["Y_FIRST"]) + (rows + 0.5) * float(attrs["Y_STEP"])
    return Transformer.from_crs(4326, 32652, always_xy=True).transform(lon, lat)


def test_kirishima_grid_crs_and_cell(kirishima_grid, kirishima_velocity_h5):
    grid, _, _ = kirishima_grid
    assert CRS.from_user_input(grid.rio.crs).to_epsg() == 32652
    assert raster_working_crs(read_input(kirishima_velocity_h5)).to_epsg() == 32652
    t = raster_transform(grid)
    assert t.a == -t.e == 20.0  # 0.000185 deg ~ 18-20 m, rounded to a nice size
    assert t.c % 20.0 == 0 and t.f % 20.0 == 0


def test_kirishima_peak_lands_in_its_cell(kirishima_grid):
    grid, velocity, attrs = kirishima_grid
    values = grid["velocity"].values
    row, col = np.unravel_index(np.nanargmax(np.abs(velocity)), velocity.shape)
    x, y = _pixel_centres_in_utm(attrs, np.array([row]), np.array([col]))
    t = raster_transform(grid)
    grid_col, grid_row = int(np.floor((x[0] - t.c) / t.a)), int(np.floor((y[0] - t.f) / t.e))
    # The cell holding the projected pixel centre has about the pixel's velocity (the crater's -55.7 mm/yr,
    # within the range of the pixel's neighbours: the signal changes by tens of mm/yr over a few pixels) ...
    neighbours = velocity[row - 1 : row + 2, col - 1 : col + 2]
    assert velocity[row, col] == pytest.approx(-55.685, abs=0.01)
    assert np.nanmin(neighbours) <= values[grid_row, grid_col] <= np.nanmax(neighbours)
    assert np.nanmax(neighbours) - np.nanmin(neighbours) > 15.0
    # ... and the gridded map's own peak is in that cell or next to it.
    peak_row, peak_col = np.unravel_index(np.nanargmax(np.abs(values)), values.shape)
    assert abs(peak_row - grid_row) <= 1 and abs(peak_col - grid_col) <= 1


def test_kirishima_georeferenced_to_within_a_cell(kirishima_grid):
    # Looking every valid pixel up in the grid at its projected centre matches the pixel values better than
    # looking it up one cell off in any direction: the grid is placed to within a cell.
    grid, velocity, attrs = kirishima_grid
    values = grid["velocity"].values
    rows, cols = np.nonzero(np.isfinite(velocity))
    x, y = _pixel_centres_in_utm(attrs, rows, cols)
    t = raster_transform(grid)
    grid_cols = np.floor((x - t.c) / t.a).astype(int)
    grid_rows = np.floor((y - t.f) / t.e).astype(int)
    height, width = values.shape
    assert grid_rows.min() >= 0 and grid_cols.min() >= 0 and grid_rows.max() < height and grid_cols.max() < width
    errors = {}
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = grid_rows + dr, grid_cols + dc
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            looked_up = values[r[inside], c[inside]]
            errors[dr, dc] = np.nanmean(np.abs(looked_up - velocity[rows[inside], cols[inside]]))
    # Every valid pixel's own cell holds a value.
    assert np.isfinite(values[grid_rows, grid_cols]).all()
    assert errors[0, 0] < 0.6 * min(e for k, e in errors.items() if k != (0, 0))
    assert errors[0, 0] < 0.5  # mm/yr, against a signal of tens of mm/yr


def test_grid_inputs_puts_two_tracks_on_one_grid(ustica_l2b_022_zip, ustica_l2b_117_zip):
    datasets = read_inputs([ustica_l2b_022_zip, ustica_l2b_117_zip])
    grids = grid_inputs(datasets, cell_size=50.0)
    assert len(grids) == 2
    assert tuple(raster_transform(grids[0])) == tuple(raster_transform(grids[1]))
    assert grids[0]["velocity"].shape == grids[1]["velocity"].shape
    assert [int(g["count"].values.sum()) for g in grids] == [11_590, 11_759]
    assert [g.attrs["track"] for g in grids] == ["T022", "T117"]
    t = raster_transform(grids[0])
    assert t.c % 50.0 == 0 and t.f % 50.0 == 0
    # The common grid holds both tracks' extents.
    for ds in datasets:
        height, width = grids[0]["count"].shape
        assert t.c <= ds["x"].values.min() and ds["x"].values.max() <= t.c + width * 50.0
        assert t.f - height * 50.0 <= ds["y"].values.min() and ds["y"].values.max() <= t.f


def test_grid_points_of_real_track_median_per_cell(ustica_l2b_117_zip, l2b_117_frame):
    grid = grid_points(read_input(ustica_l2b_117_zip), cell_size=100.0)
    t = raster_transform(grid)
    col = np.floor((l2b_117_frame["easting"].to_numpy() - t.c) / 100.0).astype(int)
    row = np.ceil((t.f - l2b_117_frame["northing"].to_numpy()) / 100.0).astype(int) - 1
    frame = pd.DataFrame({"row": row, "col": col, "v": l2b_117_frame["mean_velocity"].to_numpy(np.float32)})
    expected = frame.groupby(["row", "col"])["v"].median()
    got = grid["velocity"].values[expected.index.get_level_values(0), expected.index.get_level_values(1)]
    np.testing.assert_allclose(got, expected.to_numpy(np.float32), rtol=1e-6)
    assert int(grid["count"].values.sum()) == 11_759
    assert int(np.isfinite(grid["velocity"].values).sum()) == len(expected)


def test_rasters_of_one_track_mosaic_into_one_grid(tmp_path, ustica_l3_u_tiff):
    """The L3 U tile cut into a west and an east file grids back to the whole tile, one band, every cell kept."""
    import rasterio
    from rasterio.windows import Window

    from defoscan.io import read_inputs

    halves = []
    with rasterio.open(ustica_l3_u_tiff) as src:
        whole = src.read(1)
        for name, window in (("west", Window(0, 0, 980, 1000)), ("east", Window(980, 0, 20, 1000))):
            profile = {
                **src.profile,
                "width": window.width,
                "height": window.height,
                "transform": src.window_transform(window),
            }
            path = tmp_path / f"EGMS_L3_E45N17_100km_U_2020_2024_1_{name}.tif"
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(src.read(1, window=window), 1)
            halves.append(path)
    (grid,) = grid_inputs(read_inputs(halves))
    valid = whole != -9999
    assert grid.attrs["track"] == "L3-U" and len(grid.attrs["sources"]) == 2
    assert int(np.isfinite(grid["velocity"].values).sum()) == int(valid.sum()) == 522
    np.testing.assert_allclose(
        np.sort(grid["velocity"].values[np.isfinite(grid["velocity"].values)]), np.sort(whole[valid]), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("data_cell", "model_cell", "expected"),
    [(100.0, 50.0, 50.0), (20.0, 50.0, 50.0), (125.0, 50.0, 50.0), (200.0, 50.0, 200.0), (1000.0, 50.0, 1000.0)],
)
def test_model_cell_size_where_the_data_support_it(data_cell, model_cell, expected):
    cell, why = model_cell_size(data_cell, model_cell)
    assert cell == expected
    assert (why is None) == (expected == model_cell)
    if why:
        assert f"{data_cell:g} m" in why and f"{model_cell:g} m" in why


@pytest.mark.parametrize(
    "data_cell, expected, warned",
    [
        (20.0, 50.0, False),  # finer than the finest: the finest, as for a one-size model
        (50.0, 50.0, False),
        (100.0, 100.0, False),  # within the trained range: the data's own, no warning
        (500.0, 500.0, False),  # up to MODEL_SUPPORT_RATIO x the coarsest (200 m)
        (1000.0, 1000.0, True),  # beyond: the data's own, warned
    ],
)
def test_a_model_of_several_cell_sizes_scans_at_the_data_cell_within_its_range(data_cell, expected, warned):
    cell, why = model_cell_size(data_cell, 50.0, cell_sizes=[50.0, 100.0, 200.0])
    assert cell == expected and (why is not None) == warned
    if why:
        assert "50-200 m cells" in why and "1000 m" in why


def _block(row0, col0, size):
    rows, cols = np.mgrid[row0 : row0 + size, col0 : col0 + size]
    return np.stack([rows.ravel(), cols.ravel()], axis=1)


def test_scannable_share_counts_the_cells_that_windows_reach():
    # Windows of 128 cells need 10 % of 128² = 1,639 cells with data.
    assert scannable_share(_block(0, 0, 256), 128, 0.1) == 1.0
    assert scannable_share(_block(5_000, -7_000, 30), 128, 0.1) == 0.0  # 900 cells: no window passes
    big, small = _block(0, 0, 200), _block(10_000, 10_000, 10)  # a town, and a village 500 km away
    assert scannable_share(np.concatenate([big, small]), 128, 0.1) == pytest.approx(40_000 / 40_100)
    # Sparse but even (one cell in four everywhere): every window holds 25 % and passes.
    assert scannable_share(_block(0, 0, 400)[::4], 128, 0.1) == 1.0
    assert scannable_share(np.zeros((0, 2), dtype=np.int64), 128, 0.1) == 1.0


def test_scattered_points_keep_their_own_cell_size_with_a_warning():
    # Data whose windows at the model's cells would hold too few cells with data (scannable_share above).
    cell, why = model_cell_size(100.0, 50.0, scannable=0.0)
    assert cell == 100.0 and "only 0% of them would be scanned at 50 m" in why
    cell, why = model_cell_size(20.0, 50.0, scannable=0.3)
    assert cell == 50.0 and "only 30% of the data would be scanned" in why


def test_occupied_cells_are_global_indices():
    x = np.array([0.0, 49.9, 50.0, -0.1, np.nan])
    y = np.array([0.0, -49.9, -50.0, 0.1, 3.0])
    np.testing.assert_array_equal(occupied_cells(x, y, 50.0), [[-1, -1], [0, 0], [1, 1]])


def test_check_grid_size_refuses_a_grid_without_a_cell():
    with pytest.raises(InputError, match="the grid would have 0 x 16 cells at 5 m: the input covers no cell"):
        check_grid_size(GridSpec.from_corner(CRS.from_epsg(32633), 5.0, 0.0, 0.0, 0, 16), "f.tif")


@pytest.mark.parametrize("value", [1e308, np.inf, np.nan, -2e9])
def test_check_extent_refuses_no_place_on_earth(value):
    track = SimpleNamespace(extent=(4.5e6, 4.6e6, value, 1.8e6), sources=["EGMS.zip"])
    with pytest.raises(InputError, match="no place on the Earth") as err:
        check_extent(CRS.from_epsg(3035), [track])
    assert err.value.path == "EGMS.zip" and "in EPSG:3035" in err.value.problem
    check_extent(CRS.from_epsg(3035), [SimpleNamespace(extent=(4.5e6, 4.6e6, 1.7e6, 1.8e6), sources=[])])


def test_check_extent_refuses_data_far_from_their_crs_area_of_use():
    # Issue 24: UTM 33N coordinates of Ustica given --crs 28992 (Amersfoort / RD New) put the points at 85 N.
    track = SimpleNamespace(extent=(300_000.0, 305_000.0, 4_290_000.0, 4_295_000.0), sources=["p.csv"])
    with pytest.raises(InputError) as err:
        check_extent(CRS.from_epsg(28992), [track])
    assert err.value.path == "p.csv"
    assert err.value.problem == (
        "EPSG:28992 puts the data at latitude 85.37, longitude 20.57, 32 degrees outside the area it is defined for "
        "(latitude 50.75 to 53.7, longitude 3.2 to 7.22): are the coordinates in another CRS? check --crs"
    )
    check_extent(CRS.from_epsg(32633), [track])  # their own CRS
    # A national grid or UTM zone used beyond its area (Germany's east in UTM 32N: 3 degrees) is no mistake.
    x, y = Transformer.from_crs(4326, 32632, always_xy=True).transform(15.0, 51.0)
    check_extent(CRS.from_epsg(32632), [SimpleNamespace(extent=(x, x + 1e3, y, y + 1e3), sources=[])])
    # Beyond the projection's domain (UTM at 1e7 m east): no place on the Earth.
    with pytest.raises(InputError, match="is no place on the Earth in EPSG:32633"):
        check_extent(CRS.from_epsg(32633), [SimpleNamespace(extent=(9e8, 9e8, 0.0, 1.0), sources=["f"])])


def test_degrees_outside_area_of_use_across_the_antimeridian():
    fiji = (176.0, -21.0, -178.0, -12.0)
    assert degrees_outside_area_of_use(179.5, -17.0, fiji) == 0.0
    assert degrees_outside_area_of_use(-179.5, -17.0, fiji) == 0.0
    assert degrees_outside_area_of_use(170.0, -17.0, fiji) == 6.0
    assert degrees_outside_area_of_use(-170.0, -10.0, fiji) == 8.0
