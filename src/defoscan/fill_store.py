"""The gap-filling stage of a run's store (:mod:`defoscan.store`): ``velocity_filled``, chunk by chunk.

Each chunk is filled by :func:`defoscan.fill.fill_array` from its block read with
:func:`defoscan.fill.tiling.chunk_margin` cells of context, with the block's global origin: the fill's tiles are
anchored to the global grid and each is solved on the same cells however the map is cut, so the stored map equals
the map filled whole (tested). Reads ``velocity`` and ``count`` (the fill weighs cells by their points).
"""

import numpy as np
import zarr

from defoscan.fill import DEFAULT_METHOD, HALO, MAX_DISTANCE, TILE, fill_array, reach_cells
from defoscan.fill.tiling import chunk_margin
from defoscan.store import chunk_window, create_array, run_stage

FILLED = "velocity_filled"


def fill_store(
    path,
    *,
    cell_size,
    chunk=1024,
    method=DEFAULT_METHOD,
    max_distance=MAX_DISTANCE,
    tile=TILE,
    halo=HALO,
    client=None,
    progress=None,
):
    """Fill the store's ``velocity`` into ``velocity_filled``, skipping chunks already done.

    Parameters
    ----------
    path : str
        The store (``velocity``, ``count``, attributes ``origin`` and ``shape``).
    cell_size : float
        Metres.
    chunk : int
        Cells per chunk side.
    method, max_distance, tile, halo :
        As for :func:`defoscan.fill.fill_array`.
    client : distributed.Client, optional
        Fill the chunks on this cluster; in this process by default.
    progress : callable, optional
        ``progress(done, total)`` in chunks.

    Returns
    -------
    zarr.Array
        ``velocity_filled``.
    """
    group = zarr.open_group(str(path), mode="r+")
    create_array(group, FILLED, "float32", chunk, np.nan)
    options = {"cell_size": float(cell_size), "method": method, "max_distance": float(max_distance)}
    options.update(tile=int(tile), halo=int(halo))
    run_stage(path, "fill", fill_chunk, chunk=chunk, client=client, progress=progress, **options)
    return zarr.open_group(str(path), mode="r")[FILLED]


def fill_chunk(path, i, j, chunk, *, cell_size, method, max_distance, tile, halo):
    """Fill chunk ``(i, j)`` of a store (the task a worker runs)."""
    group = zarr.open_group(path, mode="r+")
    context = chunk_margin(tile, halo, reach_cells(max_distance, cell_size))
    block, core, target, origin = chunk_window(group.attrs["shape"], group.attrs["origin"], i, j, chunk, context)
    filled = fill_array(
        group["velocity"][block],
        group["count"][block],
        cell_size=cell_size,
        method=method,
        max_distance=max_distance,
        tile=tile,
        halo=halo,
        origin=origin,
    )
    group[FILLED][target] = filled[core[0] : core[1], core[2] : core[3]]
