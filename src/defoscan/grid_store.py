"""The gridding stage of a run's store (:mod:`defoscan.store`): points to ``velocity`` and ``count``, chunk by chunk.

The points (in memory: ten million take about half a gigabyte) are sorted once by the chunk their cell falls in,
and each chunk's cells are the medians of its points (:func:`defoscan.grid.grid_points` on the chunk's part of the
grid), so the stored map equals the map gridded whole while only one chunk's grid is in memory. The store's
``origin`` and ``shape`` come from the grid; its CRS and cell size are kept as attributes too.
"""

import numpy as np
import zarr

from defoscan.fill.tiling import grid_origin
from defoscan.grid import GridDefinition, cell_indices, grid_points
from defoscan.store import create_array


def grid_store(points, grid, path, *, chunk=1024, progress=None):
    """Grid points into a new store, chunk by chunk.

    Parameters
    ----------
    points : xarray.Dataset
        Points in the grid's CRS (:mod:`defoscan.points`).
    grid : defoscan.grid.GridDefinition
        The map's grid (:func:`defoscan.grid.aligned_grid`); points outside it are ignored.
    path : str
        Directory of the new Zarr group (replaced if it exists).
    chunk : int
        Cells per chunk side.
    progress : callable, optional
        ``progress(done, total)`` in chunks.

    Returns
    -------
    zarr.Group
    """
    group = zarr.open_group(str(path), mode="w")
    group.attrs.update(
        origin=list(grid_origin(grid.transform)),
        shape=[grid.height, grid.width],
        cell_size=grid.cell_size,
        crs=grid.crs.to_wkt(),
    )
    velocity = create_array(group, "velocity", "float32", chunk, np.nan)
    count = create_array(group, "count", "uint32", chunk, 0)
    x, y, v = points["x"].values, points["y"].values, points["velocity"].values
    rows, cols = cell_indices(x, y, grid)
    inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width) & np.isfinite(v)
    which = np.flatnonzero(inside)
    chunk_cols = -(-grid.width // chunk)
    key = (rows[which] // chunk) * chunk_cols + cols[which] // chunk
    order = np.argsort(key, kind="stable")
    which, key = which[order], key[order]
    total = -(-grid.height // chunk) * chunk_cols
    bounds = np.searchsorted(key, np.arange(total + 1))
    for k in range(total):
        i, j = divmod(k, chunk_cols)
        part = which[bounds[k] : bounds[k + 1]]
        if part.size:
            sub = GridDefinition(
                grid.crs,
                grid.cell_size,
                grid.west + j * chunk * grid.cell_size,
                grid.north - i * chunk * grid.cell_size,
                min(chunk, grid.width - j * chunk),
                min(chunk, grid.height - i * chunk),
            )
            raster = grid_points(points.isel(point=part), grid=sub)
            target = (slice(i * chunk, i * chunk + sub.height), slice(j * chunk, j * chunk + sub.width))
            velocity[target] = raster["velocity"].values
            count[target] = raster["count"].values
        if progress is not None:
            progress(k + 1, total)
    return group
