"""The read stage of a chunked run: point tables streamed to Parquet parts on disk, one directory per map chunk.

A country holds tens of millions of points; a continent billions. They are never all in memory: every pass below
holds one batch (about a million rows).

1. :func:`spill_tables` streams each table (:func:`defoscan.io.table.stream_table`) into one Parquet file of its
   valid rows, coordinates as stored, velocity in mm/yr, noting rows and extent.
2. :func:`choose_crs` takes the working CRS as :func:`defoscan.io.read_inputs` does (the first declared
   projected CRS, else the one the first table's median point calls for, its median found exactly on disk by
   :func:`defoscan.robust.median_of_parts`), and :func:`project_spills` projects every batch to it, per track.
3. :func:`default_cell_size` counts the occupied 100 m cells per track as :func:`defoscan.grid.default_cell_size`
   does (the same figure, from a bitmap of one byte per hectare of the extent).
4. :func:`partition_points` writes each track's points under ``chunk=<k>/`` directories by the map chunk their
   cell falls in (``pyarrow.dataset.write_dataset``), and :func:`read_block` gives back the points of a chunk and
   of its surroundings within a distance (the despike radius), sorted, so every task reads the same arrays.
"""

import glob
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyproj import CRS, Transformer

from defoscan.atomic import atomic_path, write_json
from defoscan.crs import crs_label, straddles_antimeridian, unwrap_longitudes, working_crs
from defoscan.errors import InputError
from defoscan.grid import (
    _OCCUPANCY_CELL,
    _OCCUPANCY_CELL_SPARSE,
    MAX_DEFAULT_CELL,
    MIN_DEFAULT_CELL,
    cell_indices,
    nearest_nice_size,
    occupancy_keys,
    occupied_cells,
)
from defoscan.io import detect_format
from defoscan.io.table import open_table, stream_table
from defoscan.robust import median_of_parts

SPILL_SCHEMA = pa.schema([("a", pa.float64()), ("b", pa.float64()), ("velocity", pa.float32())])
POINT_SCHEMA = pa.schema([("x", pa.float64()), ("y", pa.float64()), ("velocity", pa.float32())])
BATCH_ROWS = 1 << 20


def spill_tables(paths, options, directory):
    """Stream point tables into one Parquet file each, valid rows only.

    Parameters
    ----------
    paths : sequence of str
    options : defoscan.io.options.ReadOptions
    directory : str
        Where ``<k>.parquet`` and ``<k>.json`` (what was read) are written; a table already spilled (its record
        present) is not read again.

    Returns
    -------
    list of dict
        Per table: ``path``, ``file``, ``rows``, ``geographic``, ``crs`` (WKT), ``egms``, ``track``.

    Raises
    ------
    InputError
        A file that is not a point table, or one with no valid row.
    """
    os.makedirs(directory, exist_ok=True)
    records = []
    for index, path in enumerate(paths):
        record_path = os.path.join(directory, f"{index}.json")
        if os.path.exists(record_path):
            with open(record_path) as handle:
                records.append(json.load(handle))
            continue
        if detect_format(path) != "table":
            raise InputError(path, "chunked runs (--chunk, --workers, --scheduler) read point tables only")
        stream = stream_table(open_table(path, options), options)
        target = os.path.join(directory, f"{index}.parquet")
        rows = 0
        # An InputError (no row left: the stream says why) leaves no partial spill behind.
        with atomic_path(target) as temporary:
            with pq.ParquetWriter(temporary, SPILL_SCHEMA) as writer:
                for a, b, velocity in stream.batches:
                    rows += a.size
                    writer.write_batch(pa.record_batch([a, b, velocity], schema=SPILL_SCHEMA))
            if rows == 0:
                raise InputError(path, "no row has finite coordinates and a finite velocity")
        record = {
            "path": os.path.abspath(path),
            "file": target,
            "rows": rows,
            "geographic": stream.geographic,
            "crs": stream.crs.to_wkt(),
            "egms": stream.egms,
            "track": stream.track,
            **stream.counts,  # rows dropped as invalid, below --min-coherence, outside --bbox
        }
        write_json(record_path, record)
        records.append(record)
    return records


def choose_crs(spills):
    """The working CRS of a run, as :func:`defoscan.io.read_inputs` takes it.

    Raises
    ------
    InputError
        Tables declared in different projected CRSs.
    """
    declared = {}
    for spill in spills:
        if not spill["geographic"]:
            declared.setdefault(crs_label(CRS.from_wkt(spill["crs"])), spill)
    if len(declared) > 1:
        listed = ", ".join(f"{label} in {os.path.basename(s['path'])}" for label, s in declared.items())
        raise InputError(spills[0]["path"], f"inputs are in different CRSs ({listed}); reproject them to one CRS first")
    if declared:
        return CRS.from_wkt(next(iter(declared.values()))["crs"])
    first = spills[0]
    low, high = np.inf, -np.inf
    for part in _column(first["file"], "a"):
        if part.size:
            low, high = min(low, part.min()), max(high, part.max())
    straddling = straddles_antimeridian(low, high)  # continuous longitudes across it, as working_crs takes them
    lon = median_of_parts(lambda: (unwrap_longitudes(part, straddling) for part in _column(first["file"], "a")))
    lat = median_of_parts(lambda: _column(first["file"], "b"))
    return working_crs([lon], [lat], egms=first["egms"])


def project_spills(spills, crs, directory):
    """Project every spilled table to ``crs``, one Parquet file per track.

    Parameters
    ----------
    spills : list of dict
        From :func:`spill_tables`.
    crs : pyproj.CRS
    directory : str

    Returns
    -------
    list of dict
        Per track, in the order tracks first appear: ``track``, ``file``, ``rows``, ``sources``, and the extent
        ``west``, ``east``, ``south``, ``north``.
    """
    os.makedirs(directory, exist_ok=True)
    tracks = {}
    for spill in spills:
        tracks.setdefault(spill["track"], []).append(spill)
    projected = []
    for index, (track, members) in enumerate(tracks.items()):
        record_path = os.path.join(directory, f"{index}.json")
        if os.path.exists(record_path):
            with open(record_path) as handle:
                projected.append(json.load(handle))
            continue
        target = os.path.join(directory, f"{index}.parquet")
        extent = [np.inf, -np.inf, np.inf, -np.inf]
        rows = 0
        with atomic_path(target) as temporary, pq.ParquetWriter(temporary, POINT_SCHEMA) as writer:
            for spill in members:
                source = CRS.from_wkt(spill["crs"])
                transformer = None if source == crs else Transformer.from_crs(source, crs, always_xy=True)
                for batch in pq.ParquetFile(spill["file"]).iter_batches(batch_size=BATCH_ROWS):
                    a, b = batch.column("a").to_numpy(), batch.column("b").to_numpy()
                    x, y = (a, b) if transformer is None else transformer.transform(a, b)
                    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
                    rows += x.size
                    extent = [
                        min(extent[0], x.min()),
                        max(extent[1], x.max()),
                        min(extent[2], y.min()),
                        max(extent[3], y.max()),
                    ]
                    writer.write_batch(pa.record_batch([x, y, batch.column("velocity")], schema=POINT_SCHEMA))
        record = {
            "track": track,
            "file": target,
            "rows": rows,
            "sources": [m["path"] for m in members],
            **dict(zip(("west", "east", "south", "north"), (float(v) for v in extent), strict=True)),
        }
        write_json(record_path, record)
        projected.append(record)
    return projected


def default_cell_size(track):
    """:func:`defoscan.grid.default_cell_size` of one track's projected points, read batch by batch."""
    spacing = _spacing_over_occupied_area(track, _OCCUPANCY_CELL)
    if 2.0 * spacing > 1.5 * _OCCUPANCY_CELL:  # as in defoscan.grid: too sparse to measure at 100 m
        spacing = _spacing_over_occupied_area(track, _OCCUPANCY_CELL_SPARSE)
    return nearest_nice_size(float(np.clip(2.0 * spacing, MIN_DEFAULT_CELL, MAX_DEFAULT_CELL)))


def _spacing_over_occupied_area(track, scale):
    """``sqrt(A / n)`` over the ``scale`` cells (from the extent's south-west corner) holding a point."""
    ny = int(np.floor((track["north"] - track["south"]) / scale)) + 1
    nx = int(np.floor((track["east"] - track["west"]) / scale)) + 1
    seen = np.zeros(nx * ny, dtype=bool) if nx * ny < 2_000_000_000 else None
    keys = []
    for batch in pq.ParquetFile(track["file"]).iter_batches(batch_size=BATCH_ROWS, columns=["x", "y"]):
        x, y = batch.column("x").to_numpy(), batch.column("y").to_numpy()
        flat = occupancy_keys(x, y, scale, track["west"], track["south"], ny)
        if seen is not None:
            seen[flat] = True
        else:
            keys.append(np.unique(flat))
    occupied = int(np.count_nonzero(seen)) if seen is not None else np.unique(np.concatenate(keys)).size
    return float(np.sqrt(occupied * scale**2 / track["rows"]))


def occupied_cells_of(track, cell_size):
    """:func:`defoscan.grid.occupied_cells` of one track's projected points, read batch by batch."""
    parts = []
    for batch in pq.ParquetFile(track["file"]).iter_batches(batch_size=BATCH_ROWS, columns=["x", "y"]):
        parts.append(occupied_cells(batch.column("x").to_numpy(), batch.column("y").to_numpy(), cell_size))
    return np.unique(np.concatenate(parts), axis=0) if parts else np.zeros((0, 2), dtype=np.int64)


def partition_points(track, grid, chunk, directory):
    """Write a track's points under ``directory/chunk=<k>/`` by the map chunk of their cell.

    Parameters
    ----------
    track : dict
        From :func:`project_spills`.
    grid : defoscan.gridspec.GridSpec
    chunk : int
        Cells per chunk side; chunk ``k`` is row ``k // columns``, column ``k % columns`` of the chunk layout.
    directory : str
        Replaced if it exists.
    """
    columns = -(-grid.width // chunk)

    def batches():
        for batch in pq.ParquetFile(track["file"]).iter_batches(batch_size=BATCH_ROWS):
            x, y = batch.column("x").to_numpy(), batch.column("y").to_numpy()
            rows, cols = cell_indices(x, y, grid)
            key = ((rows // chunk) * columns + cols // chunk).astype(np.int32)
            yield pa.record_batch([*batch.columns, key], schema=POINT_SCHEMA.append(pa.field("chunk", pa.int32())))

    pads.write_dataset(
        batches(),
        directory,
        schema=POINT_SCHEMA.append(pa.field("chunk", pa.int32())),
        format="parquet",
        partitioning=pads.partitioning(pa.schema([("chunk", pa.int32())]), flavor="hive"),
        existing_data_behavior="delete_matching",
        max_partitions=1 << 30,
        max_open_files=256,
        # An open file holds its row group in memory until the group is full: small groups keep the memory of all
        # open files bounded (256 x 64 Ki rows), where the default (1 Mi rows) held nearly every point.
        max_rows_per_group=1 << 16,
        use_threads=False,  # the order of rows within a part is then that of the file
    )


def read_block(directory, grid, chunk, i, j, margin):
    """Points of chunk ``(i, j)`` and of its surroundings within ``margin`` metres.

    Parameters
    ----------
    directory : str
        Parts written by :func:`partition_points`.
    grid : defoscan.gridspec.GridSpec
    chunk : int
    i, j : int
        Chunk row and column.
    margin : float
        Metres around the chunk.

    Returns
    -------
    x, y, velocity : numpy.ndarray
        Sorted by ``x``, then ``y``, then velocity.
    own : numpy.ndarray of int
        Indices of the chunk's own points (its cells').
    """
    cell = grid.cell_size
    rings = max(1, int(np.ceil(margin / (chunk * cell))))
    rows_n, cols_n = -(-grid.height // chunk), -(-grid.width // chunk)
    west = grid.west + j * chunk * cell - margin
    east = grid.west + min((j + 1) * chunk, grid.width) * cell + margin
    north = grid.north - i * chunk * cell + margin
    south = grid.north - min((i + 1) * chunk, grid.height) * cell - margin
    tables = []
    for r in range(max(i - rings, 0), min(i + rings + 1, rows_n)):
        for c in range(max(j - rings, 0), min(j + rings + 1, cols_n)):
            for path in sorted(glob.glob(os.path.join(directory, f"chunk={r * cols_n + c}", "*.parquet"))):
                table = pq.read_table(path, columns=["x", "y", "velocity"])
                if (r, c) != (i, j):
                    x, y = table.column("x").to_numpy(), table.column("y").to_numpy()
                    table = table.filter((x >= west) & (x <= east) & (y >= south) & (y <= north))
                tables.append((table, (r, c) == (i, j)))
    if not tables:
        empty = np.zeros(0)
        return empty, empty, empty.astype(np.float32), np.zeros(0, dtype=np.int64)
    x = np.concatenate([t.column("x").to_numpy() for t, _ in tables])
    y = np.concatenate([t.column("y").to_numpy() for t, _ in tables])
    velocity = np.concatenate([t.column("velocity").to_numpy() for t, _ in tables])
    mine = np.concatenate([np.full(t.num_rows, is_own) for t, is_own in tables])
    order = np.lexsort((velocity, y, x))
    return x[order], y[order], velocity[order], np.flatnonzero(mine[order])


def _column(path, name):
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=[name]):
        yield batch.column(name).to_numpy()
