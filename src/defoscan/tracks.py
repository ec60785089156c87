"""The read stage of the pipeline: the inputs as tracks, whatever their format and wherever they are held.

A track is one viewing geometry's data (:func:`defoscan.io.read_inputs` groups files by it). The later stages see
only what this module gives them:

- :class:`PointsInMemory`: the points of a track read whole (``defoscan.io.read_inputs``), for a run held in memory;
- :class:`PointsOnDisk`: the points streamed to Parquet, projected, then partitioned by map chunk
  (:mod:`defoscan.points_store`), for a chunked run: never all in memory;
- :class:`RasterTrack`: a track's rasters (MintPy, GeoTIFF), read whole, warped into the map whole.

Points tracks give the chunk tasks the points of a chunk and of its surroundings (:meth:`PointsInMemory.block`,
:meth:`PointsOnDisk.block`: the same sorted arrays), and both kinds give their default cell size and the cells
they occupy at a candidate cell size (the choice of the grid, :func:`defoscan.grid.model_cell_size`).
"""

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rasterio.warp
import xarray as xr
from pyproj import CRS

from defoscan.atomic import atomic_path
from defoscan.errors import InputError
from defoscan.grid import (
    cell_indices,
    check_extent,
    coordinates_cell_size,
    data_cells,
    default_raster_cell_size,
    grid_raster,
    median_grid,
    occupied_cells,
    raster_working_crs,
)
from defoscan.gridspec import GridSpec
from defoscan.io import distinct_inputs, input_format, join_tracks, read_inputs
from defoscan.io.filters import COUNT_ATTRS
from defoscan.points import points_crs
from defoscan.raster import make_raster


@dataclass
class PointsInMemory:
    """A track's points held in memory (projected ``x``, ``y`` in metres, ``velocity`` in mm/yr)."""

    name: str
    sources: list
    x: np.ndarray
    y: np.ndarray
    velocity: np.ndarray
    dropped: dict = field(default_factory=dict)
    kind = "points"

    @classmethod
    def from_dataset(cls, points):
        """The track of a points dataset (:mod:`defoscan.points`), its invalid rows left out."""
        x, y, v = points["x"].values, points["y"].values, points["velocity"].values
        keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(v)
        return cls(
            points.attrs.get("track") or "all",
            list(points.attrs.get("sources", [])),
            x[keep].astype(np.float64, copy=False),
            y[keep].astype(np.float64, copy=False),
            v[keep].astype(np.float32, copy=False),
            {key: int(points.attrs[key]) for key in COUNT_ATTRS if key in points.attrs},
        )

    @property
    def rows(self):
        """Points read."""
        return int(self.x.size)

    @property
    def extent(self):
        """``(west, east, south, north)`` of the points."""
        return (float(self.x.min()), float(self.x.max()), float(self.y.min()), float(self.y.max()))

    def default_cell_size(self):
        """:func:`defoscan.grid.default_cell_size` of the points."""
        return coordinates_cell_size(self.x, self.y)

    def occupied_cells(self, cell_size):
        """Global indices of the cells of ``cell_size`` holding a point."""
        return occupied_cells(self.x, self.y, cell_size)

    def partition(self, grid, chunk):
        """Nothing to do: the points are held (the blocks are cut from them)."""
        return self

    def gridded(self, grid):
        """The points on ``grid`` as a raster dataset: per-cell median velocity and count."""
        median, count = median_grid(self.x, self.y, self.velocity, grid)
        return make_raster(median, grid.transform, grid.crs, count=count, track=self.name, sources=self.sources)

    def block(self, grid, chunk, i, j, margin):
        """Points of chunk ``(i, j)`` and of its surroundings within ``margin`` metres, as
        :func:`defoscan.points_store.read_block` gives them from the parts on disk."""
        rows, cols = cell_indices(self.x, self.y, grid)
        own = (rows // chunk == i) & (cols // chunk == j) & (rows >= 0) & (cols >= 0)
        own &= (rows < grid.height) & (cols < grid.width)
        cell = grid.cell_size
        west = grid.west + j * chunk * cell - margin
        east = grid.west + min((j + 1) * chunk, grid.width) * cell + margin
        north = grid.north - i * chunk * cell + margin
        south = grid.north - min((i + 1) * chunk, grid.height) * cell - margin
        near = own | ((self.x >= west) & (self.x <= east) & (self.y >= south) & (self.y <= north))
        x, y, v, mine = self.x[near], self.y[near], self.velocity[near], own[near]
        order = np.lexsort((v, y, x))
        return x[order], y[order], v[order], np.flatnonzero(mine[order])


@dataclass
class PointsOnDisk:
    """A track's points projected into one Parquet file, partitioned by map chunk once the grid is known."""

    name: str
    sources: list
    record: dict  # from defoscan.points_store.project_spills
    parts: str  # directory of the chunk partitions
    dropped: dict = field(default_factory=dict)
    kind = "points"

    @property
    def rows(self):
        """Points read."""
        return int(self.record["rows"])

    @property
    def extent(self):
        """``(west, east, south, north)`` of the points."""
        return tuple(float(self.record[k]) for k in ("west", "east", "south", "north"))

    def default_cell_size(self):
        """:func:`defoscan.grid.default_cell_size` of the points, read batch by batch."""
        from defoscan.points_store import default_cell_size as streamed_default

        return streamed_default(self.record)

    def occupied_cells(self, cell_size):
        """Global indices of the cells of ``cell_size`` holding a point, read batch by batch."""
        from defoscan.points_store import occupied_cells_of

        return occupied_cells_of(self.record, cell_size)

    def partition(self, grid, chunk):
        """Write the points under ``parts`` by map chunk, once (a resumed run finds them done)."""
        from defoscan.points_store import partition_points

        done = os.path.join(self.parts, "_done")
        if not os.path.exists(done):
            partition_points(self.record, grid, chunk, self.parts)
            open(done, "w").close()
        return self

    def block(self, grid, chunk, i, j, margin):
        """Points of chunk ``(i, j)`` and around it (:func:`defoscan.points_store.read_block`)."""
        from defoscan.points_store import read_block

        return read_block(self.parts, grid, chunk, i, j, margin)


@dataclass
class RasterTrack:
    """A track's rasters (adjacent frames are mosaicked), read whole, and the working CRS they are gridded in."""

    name: str
    sources: list
    rasters: list
    crs: CRS
    dropped: dict = field(default_factory=dict)
    kind = "raster"
    rows = None  # not points

    @property
    def extent(self):
        """``(west, east, south, north)`` of the rasters in the working CRS (far edges: see :func:`map_grid`)."""
        boxes = [
            rasterio.warp.transform_bounds(CRS.from_user_input(r.rio.crs), self.crs, *r.rio.bounds())
            for r in self.rasters
        ]
        return (
            min(b[0] for b in boxes),
            max(b[2] for b in boxes),
            min(b[1] for b in boxes),
            max(b[3] for b in boxes),
        )

    def default_cell_size(self):
        """The rasters' finest resolution in metres, rounded to a nice size."""
        return min(default_raster_cell_size(r, self.crs) for r in self.rasters)

    def occupied_cells(self, cell_size):
        """Global indices of the cells of ``cell_size`` holding a pixel centre with data."""
        return np.unique(np.concatenate([data_cells(r, cell_size) for r in self.rasters]), axis=0)

    def warp(self, grid):
        """Velocity and count of the track on ``grid``: each raster averaged into the cells,
        frames of the track joined by a count-weighted mean where they overlap (:func:`defoscan.grid.grid_raster`,
        a count-weighted mean)."""
        total = np.zeros(grid.shape)
        weighted = np.zeros(grid.shape)
        for raster in self.rasters:
            warped = grid_raster(raster, grid=grid)
            count = warped["count"].values.astype(np.float64)
            total += count
            weighted += np.nan_to_num(warped["velocity"].values) * count
        with np.errstate(invalid="ignore", divide="ignore"):
            velocity = np.where(total > 0, weighted / total, np.nan)
        return velocity.astype(np.float32), total

    def gridded(self, grid):
        """The rasters on ``grid`` as one raster dataset (velocity, count)."""
        velocity, count = self.warp(grid)
        count = np.where(np.isfinite(velocity), np.maximum(np.rint(count), 1), 0)
        return make_raster(velocity, grid.transform, grid.crs, count=count, track=self.name, sources=self.sources)


def read_tracks(inputs, options, spill_directory=None):
    """Read the inputs as tracks.

    Parameters
    ----------
    inputs : sequence of str or xarray.Dataset
        Files, or datasets already read (points or rasters of :mod:`defoscan.points`, :mod:`defoscan.raster`).
    options : defoscan.io.ReadOptions
        How files are read.
    spill_directory : str, optional
        A chunked run's work directory: point tables are then streamed to Parquet there, never held whole
        (other point formats are read whole and written there). Without it everything is read into memory.

    Returns
    -------
    crs : pyproj.CRS
        The working CRS.
    tracks : list
        :class:`PointsInMemory`, :class:`PointsOnDisk` or :class:`RasterTrack`, in the order tracks first appear.

    Raises
    ------
    InputError
        Mixed points and rasters, different projected CRSs, unreadable files.
    """
    inputs = distinct_inputs(inputs)  # a file given twice is read once (its points would count twice)
    given = [item for item in inputs if isinstance(item, xr.Dataset)]
    if given:
        if len(given) != len(inputs) or spill_directory is not None:
            raise InputError(None, "datasets held in memory cannot be mixed with files, nor run chunked")
        datasets = join_tracks(given)
    elif spill_directory is not None and all(input_format(path).streams for path in inputs):
        return _streamed_tracks(inputs, options, spill_directory)
    else:
        datasets = read_inputs(list(inputs), options)
    crs, tracks = tracks_of(datasets)
    if spill_directory is None or tracks[0].kind == "raster":
        return crs, tracks
    return crs, [_written(track, spill_directory, index) for index, track in enumerate(tracks)]


def tracks_of(datasets):
    """The tracks of datasets as read (:func:`defoscan.io.read_inputs`): held in memory.

    Returns
    -------
    crs : pyproj.CRS
    tracks : list of PointsInMemory or RasterTrack

    Raises
    ------
    InputError
        A track without a valid value, or at no place on the Earth (:func:`defoscan.grid.check_extent`).
    """
    crs, tracks = _held_tracks(datasets)
    check_extent(crs, tracks)
    return crs, tracks


def _held_tracks(datasets):
    if "point" not in datasets[0].dims:
        crs = raster_working_crs(datasets[0])
        grouped = {}
        for raster in datasets:
            grouped.setdefault(raster.attrs.get("track") or "all", []).append(raster)
        tracks = [
            RasterTrack(
                name,
                [s for r in group for s in r.attrs.get("sources", [])],
                group,
                crs,
                {key: sum(int(r.attrs.get(key, 0)) for r in group) for key in COUNT_ATTRS if key in group[0].attrs},
            )
            for name, group in grouped.items()
        ]
        return crs, tracks
    tracks = [PointsInMemory.from_dataset(points) for points in datasets]
    if any(t.rows == 0 for t in tracks):
        raise InputError((datasets[0].attrs.get("sources") or [None])[0], "no valid velocity values to grid")
    return points_crs(datasets[0]), tracks


def grid_inputs(datasets, cell_size=None):
    """Grid datasets as read onto one common grid, whole and as read (no despiking): one raster dataset per track.

    Points: per-cell medians and counts (:func:`defoscan.grid.median_grid`); rasters: averaged into the cells,
    frames of one track joined (:meth:`RasterTrack.warp`). The grid is the pipeline's (:func:`map_grid`) at
    ``cell_size``, by default the finest of the tracks' own defaults.

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
        All points datasets (in one CRS) or all raster datasets.
    cell_size : float, optional

    Returns
    -------
    list of xarray.Dataset
        :mod:`defoscan.raster` datasets (``velocity``, ``count``), one per track, all on the same grid.
    """
    joined = join_tracks(datasets)
    crs, tracks = tracks_of(joined)
    grid = map_grid(crs, tracks, cell_size or min(track.default_cell_size() for track in tracks))
    declared = {(ds.attrs.get("track") or "all"): ds.attrs.get("track") or "" for ds in joined}
    gridded = [track.gridded(grid) for track in tracks]
    for raster, track in zip(gridded, tracks, strict=True):  # an unnamed track stays unnamed (not "all")
        raster.attrs["track"] = declared[track.name]
    return gridded


def _streamed_tracks(inputs, options, directory):
    """Point tables streamed to Parquet and projected (:mod:`defoscan.points_store`), one track per geometry."""
    from defoscan.points_store import choose_crs, project_spills, spill_tables

    spills = spill_tables(list(inputs), options, os.path.join(directory, "spill"))
    crs = choose_crs(spills)
    tracks = []
    for index, record in enumerate(project_spills(spills, crs, os.path.join(directory, "projected"))):
        members = [s for s in spills if s["track"] == record["track"]]
        dropped = {
            key: sum(int(s[key]) for s in members if key in s) for key in COUNT_ATTRS if any(key in s for s in members)
        }
        name = record["track"] or "all"
        parts = os.path.join(directory, "parts", str(index))
        tracks.append(PointsOnDisk(name, record["sources"], record, parts, dropped))
    check_extent(crs, tracks)
    return crs, tracks


def _written(track, directory, index):
    """A track read whole, written as the projected Parquet file of :func:`defoscan.points_store.project_spills`."""
    from defoscan.points_store import POINT_SCHEMA

    os.makedirs(os.path.join(directory, "projected"), exist_ok=True)
    target = os.path.join(directory, "projected", f"{index}.parquet")
    table = pa.table([track.x, track.y, track.velocity], schema=POINT_SCHEMA)
    with atomic_path(target) as temporary:
        pq.write_table(table, temporary)
    west, east, south, north = track.extent
    record = {"track": track.name, "file": target, "rows": track.rows, "sources": track.sources}
    record.update(west=west, east=east, south=south, north=north)
    return PointsOnDisk(track.name, track.sources, record, os.path.join(directory, "parts", str(index)), track.dropped)


def map_grid(crs, tracks, cell_size):
    """The map's grid: the tracks' common extent on cells of ``cell_size``.

    Raises
    ------
    InputError
        A grid too large to hold or without a cell (:func:`defoscan.grid.check_grid_size`).
    """
    from defoscan.grid import check_grid_size

    extents = [t.extent for t in tracks]
    west, east = min(e[0] for e in extents), max(e[1] for e in extents)
    south, north = min(e[2] for e in extents), max(e[3] for e in extents)
    if tracks[0].kind == "raster":  # a raster's far edges are not cells of it (as defoscan.grid.grid_raster has it)
        east, south = east - 1e-6 * cell_size, south + 1e-6 * cell_size
    grid = GridSpec.aligned(crs, cell_size, west, east, south, north)
    check_grid_size(grid, (tracks[0].sources or [None])[0])
    return grid
