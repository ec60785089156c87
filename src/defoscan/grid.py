"""Gridding: points (or a raster) onto a north-up grid in the working CRS, aligned to whole cells.

Every grid has its edges at whole multiples of the cell size, so grids of adjacent runs mosaic without
resampling. A cell holds the median velocity of its points (robust to a stray scatterer) and their count.

Default cell size
-----------------
About four points per occupied cell on average: ``2 * sqrt(A / n)`` for ``n`` points spread over an occupied area
``A`` (the area of the 100 m cells holding at least one point; 1 km cells for points sparser than that), rounded
to the nearest of ``NICE_CELL_SIZES`` (log scale) and kept within [10, 1000] m. Measuring density over the
occupied area, not the bounding box, keeps the cell fine in towns however much sea or farmland the map also
covers; four points give the median something to be robust with; round sizes make grids of different runs line
up. For a raster the default is its own resolution in metres, rounded to the nearest nice size.

With a model (the CNN detector), the default is the model's own cell size wherever the data support it
(:func:`model_cell_size`): a network trained on 50 m windows sees a signal of another size, and other noise, on
cells of 100 m or 20 m. The data support it when their own default (above) is at most ``MODEL_SUPPORT_RATIO`` times
the model's cell: finer data are averaged (more points or pixels per cell); data up to 2.5 times sparser leave more
cells empty, which the gap filling bridges. Sparser data are gridded at their own default and scanned on the
model's cells interpolated from it (:mod:`defoscan.scan_upsampled`), with a warning of the scale they resolve.
A model trained across scales (its card's ``cell_sizes``, issue 18) is supported by any data cell within
[smallest, largest x ``MODEL_SUPPORT_RATIO``]: they are gridded at their own default, without a warning.
"""

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import rasterio.warp
from pyproj import CRS, Transformer
from rasterio.enums import Resampling

from defoscan.cores import usable_cores
from defoscan.crs import WGS84, crs_label, working_crs
from defoscan.errors import InputError
from defoscan.gridspec import GridSpec
from defoscan.io.egms import parse_egms_name
from defoscan.points import points_crs
from defoscan.raster import make_raster

NICE_CELL_SIZES = (5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0)
MIN_DEFAULT_CELL, MAX_DEFAULT_CELL = 10.0, 1000.0
_OCCUPANCY_CELL = 100.0  # metres: the scale at which "where there are points" is measured
_OCCUPANCY_CELL_SPARSE = 1000.0  # ... and for points sparser than one per 100 m cell
_MAX_KEY_CELLS = 2**32  # cell indices that fit the high half of a 64-bit sort key
_MIN_SORT_PART = 1_000_000  # keys: below this a sort is too quick to be worth splitting across threads
# The data's own default cell may be this many times the model's for the model's cell to be used: the held-out
# UK-like scenes of issue 16 (EGMS density, own default 100 m) scored F1 0.72 at 50 m against 0.66 at 100 m.
MODEL_SUPPORT_RATIO = 2.5
# ... and the scanner's windows must reach this share of their cells there (defoscan.grid.scannable_share).
MIN_SCANNABLE_SHARE = 0.9


def default_cell_size(points):
    """Default cell size for a points dataset (see the module notes).

    Parameters
    ----------
    points : xarray.Dataset

    Returns
    -------
    float
    """
    return coordinates_cell_size(points["x"].values, points["y"].values)


def coordinates_cell_size(x, y):
    """:func:`default_cell_size` of points given by their projected coordinates (metres)."""
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():  # a NaN would poison min() below
        x, y = x[finite], y[finite]
    if x.size == 0:
        return MAX_DEFAULT_CELL
    spacing = _spacing_over_occupied_area(x, y, _OCCUPANCY_CELL)
    if 2.0 * spacing > 1.5 * _OCCUPANCY_CELL:
        # Sparser than about one point per occupied 100 m cell: at that scale every point occupies a cell of its
        # own and the spacing reads as 100 m however sparse the points. Measure at 1 km instead.
        spacing = _spacing_over_occupied_area(x, y, _OCCUPANCY_CELL_SPARSE)
    return nearest_nice_size(float(np.clip(2.0 * spacing, MIN_DEFAULT_CELL, MAX_DEFAULT_CELL)))


def _spacing_over_occupied_area(x, y, scale):
    """``sqrt(A / n)``: the mean point spacing over the area ``A`` of the ``scale`` cells holding a point."""
    ny = int(np.floor((y.max() - y.min()) / scale)) + 1
    flat = occupancy_keys(x, y, scale, x.min(), y.min(), ny)
    if flat.max() < 500_000_000:  # a bitmap is an order of magnitude faster than a sort
        seen = np.zeros(int(flat.max()) + 1, dtype=bool)
        seen[flat] = True
        occupied = int(np.count_nonzero(seen))
    else:
        occupied = np.unique(flat).size
    return float(np.sqrt(occupied * scale**2 / x.size))


def occupancy_keys(x, y, scale, west, south, rows):
    """Flat index ``column * rows + row`` of the ``scale`` cell holding each point, counted from ``(west, south)``.

    The cells by which :func:`default_cell_size` measures the occupied area; a chunked run counts them batch by
    batch (:mod:`defoscan.points_store`).
    """
    iy = _floor_div(y, scale, np.floor, origin=south)
    flat = _floor_div(x, scale, np.floor, origin=west)
    flat *= rows
    flat += iy
    return flat


def grid_points(points, cell_size=None, grid=None):
    """Grid points: per-cell median velocity and point count.

    Parameters
    ----------
    points : xarray.Dataset
        Points in a projected CRS (:mod:`defoscan.points`).
    cell_size : float, optional
        Cell size in metres; the default of :func:`default_cell_size` when not given.
    grid : GridSpec, optional
        Grid to fill (for several inputs on one grid); points outside it are ignored.

    Returns
    -------
    xarray.Dataset
        Raster dataset (:mod:`defoscan.raster`) with ``velocity`` (median, mm/yr) and ``count``.
    """
    x, y, v = points["x"].values, points["y"].values, points["velocity"].values
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(v)
    if not keep.all():  # copies only when there is something to drop
        x, y, v = x[keep], y[keep], v[keep]
    v = v.astype(np.float32, copy=False)
    if grid is None:
        if x.size == 0:
            raise ValueError("no valid points to grid")
        cell_size = cell_size or default_cell_size(points)
        grid = GridSpec.aligned(points_crs(points), cell_size, x.min(), x.max(), y.min(), y.max())
    median, count = median_grid(x, y, v, grid)
    return make_raster(
        median,
        grid.transform,
        grid.crs,
        count=count,
        track=points.attrs.get("track"),
        sources=points.attrs.get("sources", []),
    )


def median_grid(x, y, v, grid):
    """Per-cell median velocity and point count of points on a grid (a map, or a chunk of it); points outside it
    are ignored.

    Parameters
    ----------
    x, y : numpy.ndarray
        Finite coordinates in the grid's CRS.
    v : numpy.ndarray of float32
        Finite velocities.
    grid : defoscan.gridspec.GridSpec

    Returns
    -------
    median : numpy.ndarray of float32
        ``grid.shape``, NaN in cells without a point.
    count : numpy.ndarray of uint32
        ``grid.shape``.
    """
    rows, cols = cell_indices(x, y, grid)
    inside = (cols >= 0) & (cols < grid.width) & (rows >= 0) & (rows < grid.height)
    if not inside.all():
        rows, cols, v = rows[inside], cols[inside], v[inside]
    flat = rows  # in place: a country's points make these arrays large
    flat *= grid.width
    flat += cols
    del cols
    median, count = cell_medians(flat, v, grid.width * grid.height)
    return median.reshape(grid.shape), count.reshape(grid.shape)


def cell_indices(x, y, grid):
    """Row and column of the cell of ``grid`` that holds each point (outside the grid: out of range).

    Parameters
    ----------
    x, y : numpy.ndarray
        Coordinates in the grid's CRS.
    grid : GridSpec

    Returns
    -------
    rows, cols : numpy.ndarray of int64
        A point on a cell's west or north edge belongs to that cell, as the grid's edges are whole multiples of the
        cell size.
    """
    cell = grid.cell_size
    cols = _floor_div(x, cell, np.floor)
    cols -= int(round(grid.west / cell))
    rows = _floor_div(y, cell, np.ceil)
    np.subtract(int(round(grid.north / cell)), rows, out=rows)
    return rows, cols


def _floor_div(a, step, rounding, origin=None):
    """``rounding((a - origin) / step)`` as int64, with one temporary instead of three.

    Fresh memory is slow to come by on some machines (a virtual machine's first touch of a page), so the
    arithmetic is done in place; the results are the same, operation for operation.
    """
    if origin is None:
        q = a / step
    else:
        q = a - origin
        q /= step
    rounding(q, out=q)
    return q.astype(np.int64)


def cell_medians(cells, values, n_cells):
    """Median and count of ``values`` per cell index.

    One sort of a combined 64-bit key (cell index in the high half, the value's order-preserving bits in the
    low half) groups values by cell and orders them within it, which is several times faster than a lexsort.
    Counts and medians then come from the runs of equal cells in the sorted keys, touching only occupied cells.

    Parameters
    ----------
    cells : numpy.ndarray of int64
        Flat cell index of each value, in ``[0, n_cells)``.
    values : numpy.ndarray of float32
        Finite values.
    n_cells : int

    Returns
    -------
    median : numpy.ndarray of float32, shape (n_cells,)
        NaN where a cell has no value.
    count : numpy.ndarray of int32, shape (n_cells,)
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    cells = np.asarray(cells, dtype=np.int64)
    median = np.full(n_cells, np.nan, dtype=np.float32)
    count = np.zeros(n_cells, dtype=np.int32)
    if values.size == 0:
        return median, count
    if n_cells <= _MAX_KEY_CELLS:
        keys = _sorted_keys(cells, values)
        if sys.byteorder == "little":  # the halves of the keys as strided views, no copies
            sorted_cells, low_bits = keys.view(np.uint32)[1::2], keys.view(np.uint32)[0::2]
        else:
            sorted_cells, low_bits = keys >> np.uint64(32), keys.astype(np.uint32)

        def value_at(index):
            # Undo the order-preserving map of _sorted_keys, only where a median needs it.
            low = low_bits[index]
            return np.where(low & np.uint32(0x80000000), low & np.uint32(0x7FFFFFFF), ~low).view(np.float32)

    else:  # grids of more than 4 billion cells: slower, same answer
        order = np.lexsort((values, cells))
        sorted_cells, sorted_values = cells[order], values[order]
        del order

        def value_at(index):
            return sorted_values[index]

    # Runs of equal cells in sorted order: where each starts, which cell, how long.
    starts = np.flatnonzero(sorted_cells[1:] != sorted_cells[:-1])
    starts += 1
    starts = np.concatenate([[0], starts])
    occupied = sorted_cells[starts].astype(np.int64)
    runs = np.diff(starts, append=sorted_cells.size)
    del sorted_cells
    count[occupied] = runs
    lower = value_at(starts + (runs - 1) // 2)
    upper = value_at(starts + runs // 2)
    median[occupied] = 0.5 * (lower.astype(np.float64) + upper)
    return median, count


def _sorted_keys(cells, values):
    """Sorted ``cell << 32 | ordered(value)`` keys, ``ordered`` mapping float32 bits to uint32 in value order.

    The map flips all bits of negative values and only the sign bit of the others (so -0.0 sorts just before
    0.0). With several cores the keys are first partitioned in place (``ndarray.partition``: every key before a
    split point is no greater than every key after it), then the pieces are sorted in threads (numpy releases
    the GIL while sorting): the same result as one sort, in about half the time on two cores. Arrays are
    updated in place throughout: fresh memory is slow to come by on some machines.
    """
    flip = (values.view(np.int32) >> 31).view(np.uint32)  # all ones for negative values, else zeros
    flip |= np.uint32(0x80000000)
    flip ^= values.view(np.uint32)
    keys = cells.astype(np.uint64)
    keys <<= np.uint64(32)
    keys |= flip
    del flip
    parts = min(usable_cores(), keys.size // _MIN_SORT_PART)
    if parts < 2:
        keys.sort()
        return keys
    splits = [keys.size * i // parts for i in range(1, parts)]
    keys.partition(splits)
    bounds = [0, *splits, keys.size]
    with ThreadPoolExecutor(max_workers=parts) as pool:
        list(pool.map(lambda i: keys[bounds[i] : bounds[i + 1]].sort(), range(parts)))
    return keys


def grid_raster(raster, cell_size=None, grid=None, crs=None):
    """Resample a raster dataset onto an aligned grid in the working CRS.

    Velocity is averaged over the source pixels falling in each cell (NaN ignored); ``count`` is the number of
    source pixels behind a cell.

    Parameters
    ----------
    raster : xarray.Dataset
        Raster dataset (:mod:`defoscan.raster`) in any CRS.
    cell_size : float, optional
        Metres; the raster's own resolution rounded to a nice size when not given.
    grid : GridSpec, optional
        Target grid; derived from the raster's footprint when not given.
    crs : pyproj.CRS, optional
        Working CRS when ``grid`` is not given; the rule of docs/DESIGN-NOTES.md ("Conventions") when neither is.

    Returns
    -------
    xarray.Dataset
    """
    src_crs = CRS.from_user_input(raster.rio.crs)
    src_transform = raster.rio.transform(recalc=True)
    if grid is None:
        crs = CRS.from_user_input(crs) if crs is not None else raster_working_crs(raster)
        west, south, east, north = rasterio.warp.transform_bounds(src_crs, crs, *raster.rio.bounds())
        cell_size = cell_size or default_raster_cell_size(raster, crs)
        grid = GridSpec.aligned(crs, cell_size, west, east - 1e-6 * cell_size, south + 1e-6 * cell_size, north)
    velocity = _warp(raster["velocity"].values, src_crs, src_transform, grid, Resampling.average)
    valid = np.isfinite(raster["velocity"].values).astype(np.float32)
    count = _warp(valid, src_crs, src_transform, grid, Resampling.sum)
    count = np.where(np.isfinite(velocity), np.maximum(np.rint(np.nan_to_num(count)), 1), 0)
    return make_raster(
        velocity,
        grid.transform,
        grid.crs,
        count=count,
        track=raster.attrs.get("track"),
        sources=raster.attrs.get("sources", []),
    )


def raster_working_crs(raster):
    """The raster's CRS if projected, else the working-CRS rule (docs/DESIGN-NOTES.md) at its centre."""
    crs = CRS.from_user_input(raster.rio.crs)
    if crs.is_projected:
        return crs
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(
        float(raster["x"].mean()), float(raster["y"].mean())
    )
    egms = any(parse_egms_name(str(s)) for s in raster.attrs.get("sources", []))
    return working_crs([lon], [lat], egms=egms)


def default_raster_cell_size(raster, crs):
    """The raster's resolution in metres in ``crs``, rounded to the nearest nice size."""
    transform, _, _ = rasterio.warp.calculate_default_transform(
        CRS.from_user_input(raster.rio.crs), crs, raster.sizes["x"], raster.sizes["y"], *raster.rio.bounds()
    )
    return nearest_nice_size(transform.a)


MAX_COORDINATE = 1e9  # CRS units (metres, feet): beyond any map CRS's coordinates of the Earth


def check_grid_size(grid, path=None, max_cells=2_000_000_000):
    """Refuse grids too large to hold (a wrong CRS or unit usually) or without a cell (a raster narrower than a
    millionth of one: a degenerate pixel size), with a clear message."""
    size = f"{_cells(grid.width)} x {_cells(grid.height)} cells at {grid.cell_size:g} m"
    if grid.width * grid.height > max_cells:
        raise InputError(
            path, f"the grid would have {size}; check the CRS and coordinates, or pass a larger --cell-size"
        )
    if grid.width < 1 or grid.height < 1:
        raise InputError(path, f"the grid would have {size}: the input covers no cell; check its georeferencing")


def check_extent(crs, tracks):
    """Refuse tracks whose extent in the working CRS is no place on the Earth, or far from where the CRS is
    defined (a wrong CRS or unit usually).

    No map CRS reaches :data:`MAX_COORDINATE` (the Earth is 4e7 m round): beyond, or not finite, the coordinates
    or their CRS are wrong, and the grid's cell indices would overflow. Within it, the centre of the data must lie
    within :data:`AREA_OF_USE_MARGIN` degrees of the CRS's area of use (:func:`degrees_outside_area_of_use`):
    UTM coordinates taken for the Dutch grid (EPSG:28992) put Ustica at 85 degrees north.
    """
    for track in tracks:
        west, east, south, north = track.extent
        path = (track.sources or [None])[0]
        for name, value in (("easting", west), ("easting", east), ("northing", south), ("northing", north)):
            if not abs(value) <= MAX_COORDINATE:
                raise InputError(
                    path,
                    f"the data lie at {name} {value:g} in {crs_label(crs)}: no place on the Earth; check the "
                    "coordinates and their CRS",
                )
        fix = "check its georeferencing (or --crs)" if getattr(track, "kind", None) == "raster" else "check --crs"
        _check_area_of_use(path, crs, (west + east) / 2.0, (south + north) / 2.0, fix)


# Degrees the centre of the data may lie outside the area of use of their CRS: national grids and UTM zones are used
# well beyond it (Germany, 6-15 degrees east, in UTM zone 32, defined for 6-12 degrees), a wrong CRS misses by far
# more (tens of degrees: another continent, or the pole).
AREA_OF_USE_MARGIN = 10.0


def degrees_outside_area_of_use(lon, lat, bounds):
    """How far, in degrees of longitude or latitude (the larger), a point lies outside a CRS's area of use.

    Parameters
    ----------
    lon, lat : float
        Degrees.
    bounds : tuple of float
        ``(west, south, east, north)`` as :attr:`pyproj.CRS.area_of_use` gives them; ``west > east`` for an area
        across the antimeridian.

    Returns
    -------
    float
        0 inside.

    Examples
    --------
    >>> degrees_outside_area_of_use(20.26, 85.35, (3.2, 50.75, 7.22, 53.7))
    31.65
    >>> degrees_outside_area_of_use(-179.5, -17.0, (176.0, -21.0, -178.0, -12.0))
    0.0
    """
    west, south, east, north = bounds
    if east < west:
        east += 360.0
    dlat = max(south - lat, lat - north, 0.0)
    dlon = min(max(west - shifted, shifted - east, 0.0) for shifted in (lon - 360.0, lon, lon + 360.0))
    return float(round(max(dlat, dlon), 6))


def _check_area_of_use(path, crs, x, y, fix="check --crs"):
    crs = CRS.from_user_input(crs)
    area = crs.area_of_use
    if area is None and crs.to_epsg() is not None:  # a GeoTIFF's WKT has no area of use; its EPSG entry has
        area = CRS.from_epsg(crs.to_epsg()).area_of_use
    if area is None:  # a CRS of the user's own (WKT, PROJ string): nothing to compare with
        return
    with np.errstate(all="ignore"):
        lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)
    label = crs_label(crs)
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise InputError(
            path,
            f"the data's centre (easting {x:g}, northing {y:g}) is no place on the Earth in {label}: check the "
            f"coordinates and their CRS ({fix})",
        )
    outside = degrees_outside_area_of_use(lon, lat, area.bounds)
    if outside > AREA_OF_USE_MARGIN:
        west, south, east, north = area.bounds
        raise InputError(
            path,
            f"{label} puts the data at latitude {lat:.2f}, longitude {lon:.2f}, {outside:.0f} degrees outside the "
            f"area it is defined for (latitude {south:g} to {north:g}, longitude {west:g} to {east:g}): are the "
            f"coordinates in another CRS? {fix}",
        )


def _cells(count):
    return f"{count}" if count < 10**12 else f"{float(count):.3g}"  # a 300-digit count says no more


def _warp(values, src_crs, src_transform, grid, resampling):
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    rasterio.warp.reproject(
        np.asarray(values, dtype=np.float32),
        out,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=np.nan,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


def model_cell_size(data_cell, model_cell, scannable=1.0, cell_sizes=None):
    """The cell size to scan at with a model: the model's own where the data support it, else the data's.

    Parameters
    ----------
    data_cell : float
        The data's own default (the finest of the tracks' :func:`default_cell_size`), metres.
    model_cell : float
        The cell size the model was trained on (its card's ``input.cell_size``), metres.
    scannable : float
        Share of the data's cells that the scanner's windows would reach at the model's cell size
        (:func:`scannable_share`); under ``MIN_SCANNABLE_SHARE`` the data do not support it.
    cell_sizes : sequence of float, optional
        The cell sizes of a model trained across scales (its card's ``input.cell_sizes``): data whose own default
        lies in [smallest, largest x ``MODEL_SUPPORT_RATIO``] are scanned at it; finer data as for a model of the
        smallest size (``model_cell`` and ``scannable`` are then that size's).

    Returns
    -------
    cell : float
        Metres.
    warning : str or None
        Why the model's cell size was not used, for the user; None when it was.
    """
    data_cell, model_cell = float(data_cell), float(model_cell)
    if cell_sizes:
        low, high = min(cell_sizes), MODEL_SUPPORT_RATIO * max(cell_sizes)
        if low <= data_cell <= high:
            return data_cell, None
        if data_cell > high:
            return data_cell, (
                f"the data are too sparse for the model's {low:g}-{max(cell_sizes):g} m cells (their own default is "
                f"{data_cell:g} m, more than {MODEL_SUPPORT_RATIO:g} times the coarsest): gridded at {data_cell:g} m "
                f"and scanned on {max(cell_sizes):g} m cells interpolated from it; signals under about "
                f"{2 * data_cell:g} m across are not resolved (set --cell-size to choose)"
            )
    if data_cell <= MODEL_SUPPORT_RATIO * model_cell and scannable >= MIN_SCANNABLE_SHARE:
        return model_cell, None
    if data_cell <= model_cell:  # fine data, but too scattered for the scanner's windows at any finer scale
        why = f"only {scannable:.0%} of the data would be scanned on the model's {model_cell:g} m cells"
        return model_cell, why + ": the rest lies where windows hold too few cells with data"
    if data_cell > MODEL_SUPPORT_RATIO * model_cell:  # scanned on the model's cells (defoscan.scan_upsampled)
        return data_cell, (
            f"the data are too sparse for the model's {model_cell:g} m cells (their own default is {data_cell:g} m, "
            f"more than {MODEL_SUPPORT_RATIO:g} times coarser): gridded at {data_cell:g} m and scanned on "
            f"{model_cell:g} m cells interpolated from it; signals under about {2 * data_cell:g} m across are not "
            "resolved (set --cell-size to choose)"
        )
    return data_cell, (
        f"the data are too sparse for the model's {model_cell:g} m cells (their own default is {data_cell:g} m; "
        f"only {scannable:.0%} of them would be scanned at {model_cell:g} m): gridded at {data_cell:g} m, a scale "
        "the model was not trained for; its probabilities may not hold (set --cell-size to choose)"
    )


def scannable_share(cells, window, min_valid):
    """Share of the cells with data that a scan's windows would reach: the "data support it" test of the model.

    The scanner (:func:`defoscan.scan.scan_probability`) skips windows with less than ``min_valid`` of their cells
    with data; on scattered points a fine grid leaves most windows under it. Counted on blocks of ``window // 4``
    cells (the scanner's stride) on the global grid: windows of 4 x 4 blocks, a cell reached when a window over its
    block passes. The count uses only the cells' global indices, so a chunked run gets the same share.

    Parameters
    ----------
    cells : numpy.ndarray of int64
        ``(n, 2)`` global (row, column) indices of the distinct cells holding data, at the candidate cell size.
    window : int
        The model's window, cells.
    min_valid : float
        Share of a window's cells that must hold data for it to be scanned.

    Returns
    -------
    float
        In [0, 1]; 1 when there are no cells.
    """
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    if not len(cells):
        return 1.0
    stride = max(int(window) // 4, 1)
    span = -(-int(window) // stride)  # blocks across a window
    blocks = cells // stride
    blocks -= blocks.min(axis=0) - span  # room for windows reaching before the first block
    shape = tuple(blocks.max(axis=0) + span + 1)
    counts = np.zeros(shape, dtype=np.int64)
    np.add.at(counts, (blocks[:, 0], blocks[:, 1]), 1)
    # Cells with data of the window whose first block is (i, j): a sum over span x span blocks (summed-area table).
    table = np.zeros((shape[0] + 1, shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = counts.cumsum(axis=0).cumsum(axis=1)
    sums = table[span:, span:] - table[:-span, span:] - table[span:, :-span] + table[:-span, :-span]
    passing = np.zeros(shape, dtype=bool)
    passing[: sums.shape[0], : sums.shape[1]] = sums >= max(min_valid * window * window, 1)
    reached = _reached_blocks(passing, span)
    return float(counts[reached].sum() / len(cells))


def _reached_blocks(passing, span):
    """Blocks covered by at least one passing window (a window starting at block b covers b .. b + span - 1)."""
    reached = np.zeros_like(passing)
    for di in range(span):
        for dj in range(span):
            reached[di:, dj:] |= passing[: passing.shape[0] - di, : passing.shape[1] - dj]
    return reached


def data_cells(dataset, cell_size):
    """:func:`occupied_cells` of a dataset's points, or of a raster's pixel centres with data, in the working CRS."""
    if "point" in dataset.dims:
        return occupied_cells(dataset["x"].values, dataset["y"].values, cell_size)
    rows, cols = np.nonzero(np.isfinite(dataset["velocity"].values))
    x, y = dataset["x"].values[cols], dataset["y"].values[rows]
    to_working = Transformer.from_crs(CRS.from_user_input(dataset.rio.crs), raster_working_crs(dataset), always_xy=True)
    x, y = to_working.transform(x, y)
    return occupied_cells(np.asarray(x), np.asarray(y), cell_size)


def occupied_cells(x, y, cell_size):
    """Distinct global (row, column) indices of the cells of ``cell_size`` holding at least one point.

    Rows count southwards from northing 0, columns eastwards from easting 0 (the global grid of every run).

    Returns
    -------
    numpy.ndarray of int64
        ``(n, 2)``, sorted.
    """
    finite = np.isfinite(x) & np.isfinite(y)
    rows = np.floor(-np.asarray(y)[finite] / cell_size).astype(np.int64)
    cols = np.floor(np.asarray(x)[finite] / cell_size).astype(np.int64)
    return np.unique(np.stack([rows, cols], axis=1), axis=0)


def nearest_nice_size(size):
    """The entry of ``NICE_CELL_SIZES`` nearest to ``size`` on a log scale."""
    return min(NICE_CELL_SIZES, key=lambda nice: abs(np.log(nice / size)))
