"""The gap-filling stage of a run's store (:mod:`defoscan.store`): ``velocity_filled``, each fill tile solved once.

Two stages, each chunk by chunk with its own done flags (:func:`defoscan.store.run_stage`, in this process or on a
dask.distributed cluster), so a run stopped at any point and started again redoes only the chunks not finished:

1. ``fill_tiles`` (:func:`solve_chunk_tiles`): each chunk owns the tiles of the global tiling
   (:mod:`defoscan.fill.tiling`) whose first cell in the map falls in it, reads them plus ``reach`` cells around
   (a tile's target cells depend on the data that far out), solves each as the whole-map fill does
   (:func:`defoscan.fill.tiling.solve_tile`) and writes its raw, unblended values into ``fill_tiles``: the tiles
   side by side, tile ``(k, l)`` of the map at ``[(k - k0) tile, (k - k0 + 1) tile)`` x the same for ``l``, one
   Zarr chunk per tile (no two tasks write the same object). Tiles with nothing to fill are not stored (NaN).
2. ``fill`` (:func:`blend_chunk`): each chunk reads the parts of the tiles over it, blends them with the tiling's
   Hann weights (:func:`defoscan.fill.tiling.blend_tile`) and writes its part of ``velocity_filled``.

The tiles are solved from the same cells and blended in the same order as by :func:`defoscan.fill.fill_array` on
the whole map, so the stored map equals it (tested; difference 0 in ``benchmarks/fill_store_cost.py``). Each tile
being solved once, the stage costs about the whole-map fill: measured with

    .venv/bin/python benchmarks/fill_store_cost.py --size 2048   (then --size 3072)

in 1024-cell chunks (2 CPUs, shared with other work): 1.13x the whole-map time on 2048² cells (twice), 1.03x on
3072², the largest difference 0 (it was 4.2x and 5.0x when each chunk was filled from a block of the chunk plus a
tile and the reach around it, its straddling tiles solved again by every chunk). Beyond the tiles' solves both cost
about the same (1.2 s on 2048²); the rest of the spread is the solves' timing noise. ``fill_tiles`` (float64, kept in
the store) holds about ``(tile / (tile - 2 halo))²`` times the map's cells, compressed, NaN where nothing is filled.
Reads ``velocity`` and ``count`` (the fill weighs cells by their points).
"""

import numpy as np
import zarr

from defoscan.fill import DEFAULT_METHOD, HALO, MAX_DISTANCE, TILE, fill_inputs, make_filler, reach_cells
from defoscan.fill.tiling import blend_tile, blended, check_tiling, ramp, solve_tile, tile_index, tile_starts
from defoscan.store import chunk_window, codecs_for, create_array, run_stage, store_like

FILLED = "velocity_filled"
TILES = "fill_tiles"


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
    """Fill the store's ``velocity`` into ``velocity_filled``, skipping work already done.

    Parameters
    ----------
    path : str
        The store (``velocity``, ``count``, attributes ``origin`` and ``shape``).
    cell_size : float
        Metres.
    chunk : int
        Cells per chunk side.
    method, max_distance, tile, halo :
        As for :func:`defoscan.fill.fill_array`. Resuming with other values is refused.
    client : distributed.Client, optional
        Run the tasks on this cluster; in this process by default.
    progress : callable, optional
        ``progress(done, total)`` in chunk tasks: two per chunk, those solving its tiles and then those blending.

    Returns
    -------
    zarr.Array
        ``velocity_filled``.
    """
    check_tiling(tile, halo)
    make_filler(method, {})  # an unknown method is refused here, not on the workers
    group = zarr.open_group(store_like(path), mode="r+")
    options = {"cell_size": float(cell_size), "method": method, "max_distance": float(max_distance)}
    options.update(tile=int(tile), halo=int(halo))
    _tile_array(group, path, options)
    create_array(group, FILLED, "float32", chunk, np.nan)

    def solving(done, total):
        progress(done, 2 * total)

    def blending(done, total):
        progress(total + done, 2 * total)

    report = progress is not None
    run_stage(
        path,
        "fill_tiles",
        solve_chunk_tiles,
        chunk=chunk,
        client=client,
        progress=solving if report else None,
        **options,
    )
    run_stage(
        path,
        "fill",
        blend_chunk,
        chunk=chunk,
        client=client,
        progress=blending if report else None,
        tile=tile,
        halo=halo,
    )
    return zarr.open_group(store_like(path), mode="r")[FILLED]


def solve_chunk_tiles(path, i, j, chunk, *, cell_size, method, max_distance, tile, halo):
    """Solve the tiles that chunk ``(i, j)`` owns and store them in ``fill_tiles`` (a task of stage ``fill_tiles``)."""
    group = zarr.open_group(path, mode="r+")
    shape, origin = group.attrs["shape"], group.attrs["origin"]
    rows = _owned_starts(origin[0], shape[0], i, chunk, tile, halo)
    cols = _owned_starts(origin[1], shape[1], j, chunk, tile, halo)
    if not rows or not cols:
        return
    # One block holding the owned tiles and `reach` cells around them, clipped to the map.
    reach = reach_cells(max_distance, cell_size)
    r0, r1 = max(rows[0] - origin[0] - reach, 0), min(rows[-1] - origin[0] + tile + reach, shape[0])
    c0, c1 = max(cols[0] - origin[1] - reach, 0), min(cols[-1] - origin[1] + tile + reach, shape[1])
    block = np.s_[r0:r1, c0:c1]
    velocity, weight, observed, target = fill_inputs(group["velocity"][block], group["count"][block], reach)
    if not target.any():
        return
    filler = make_filler(method, {})
    first = _first_tiles(shape, origin, tile, halo)
    tiles = group[TILES]
    for r in rows:
        for c in cols:
            corner = (r - origin[0] - r0, c - origin[1] - c0)
            solved = solve_tile(filler, velocity, weight, target, observed, corner, tile, reach)
            if solved is None:
                continue
            (win_rows, win_cols), values = solved
            if not np.isfinite(values).any():
                continue
            whole = np.full((tile, tile), np.nan)
            whole[
                win_rows.start - corner[0] : win_rows.stop - corner[0],
                win_cols.start - corner[1] : win_cols.stop - corner[1],
            ] = values
            slot_r = (tile_index(r, tile, halo) - first[0]) * tile
            slot_c = (tile_index(c, tile, halo) - first[1]) * tile
            tiles[slot_r : slot_r + tile, slot_c : slot_c + tile] = whole


def blend_chunk(path, i, j, chunk, *, tile, halo):
    """Blend the stored tiles over chunk ``(i, j)`` into ``velocity_filled`` (a task of stage ``fill``)."""
    group = zarr.open_group(path, mode="r+")
    shape, origin = group.attrs["shape"], group.attrs["origin"]
    _, _, target, (top, left) = chunk_window(shape, origin, i, j, chunk, 0)
    height, width = target[0].stop - target[0].start, target[1].stop - target[1].start
    first = _first_tiles(shape, origin, tile, halo)
    profile = ramp(tile, halo)
    tiles = group[TILES]
    total, norm = np.zeros((height, width)), np.zeros((height, width))
    for r in tile_starts(top, height, tile, halo):
        for c in tile_starts(left, width, tile, halo):
            corner = (r - top, c - left)
            window = (
                slice(max(corner[0], 0), min(corner[0] + tile, height)),
                slice(max(corner[1], 0), min(corner[1] + tile, width)),
            )
            # Chunk cell (y, x) is cell (slot_r + y, slot_c + x) of the stored tiles.
            slot_r = (tile_index(r, tile, halo) - first[0]) * tile - corner[0]
            slot_c = (tile_index(c, tile, halo) - first[1]) * tile - corner[1]
            values = tiles[
                slot_r + window[0].start : slot_r + window[0].stop, slot_c + window[1].start : slot_c + window[1].stop
            ]
            blend_tile(total, norm, window, values, corner, profile)
    velocity = group["velocity"][target]
    group[FILLED][target] = np.where(np.isfinite(velocity), velocity, blended(total, norm)).astype(np.float32)


def _owned_starts(origin, size, index, chunk, tile, halo):
    """Global starts, along one axis, of the tiles whose first cell in the map lies in chunk ``index``."""
    return [s for s in tile_starts(origin, size, tile, halo) if max(s - origin, 0) // chunk == index]


def _first_tiles(shape, origin, tile, halo):
    """Global ``(row, column)`` index of the map's first tile: slot 0 of ``fill_tiles``."""
    return tuple(tile_index(tile_starts(o, n, tile, halo)[0], tile, halo) for o, n in zip(origin, shape, strict=True))


def _tile_array(group, path, options):
    """``fill_tiles``, created for the map's tiles (one Zarr chunk each), or the existing one if the options match."""
    if TILES in group:
        array = group[TILES]
        if dict(array.attrs).get("fill_options") != options:
            raise ValueError(f"{path}: tiles were filled with other options ({dict(array.attrs).get('fill_options')})")
        return array
    shape, origin = group.attrs["shape"], group.attrs["origin"]
    tile, halo = options["tile"], options["halo"]
    counts = [len(tile_starts(o, n, tile, halo)) for o, n in zip(origin, shape, strict=True)]
    return group.create_array(
        TILES,
        shape=(counts[0] * tile, counts[1] * tile),
        chunks=(tile, tile),
        dtype="float64",
        fill_value=np.nan,
        attributes={"fill_options": options},
        **codecs_for(group),
    )
