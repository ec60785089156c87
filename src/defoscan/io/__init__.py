"""Readers: every supported file into one points representation or one raster representation.

Points (tables, EGMS L2/L3 CSVs, DePSI CSVs, vector files) become a points dataset (:mod:`defoscan.points`);
rasters (GeoTIFF/COG, MintPy HDF5) a raster dataset (:mod:`defoscan.raster`). Several files are joined per viewing
geometry (``track``): adjacent bursts of one track are merged, different tracks are kept apart, never averaged.
"""

import filecmp
import os
import zipfile
from dataclasses import dataclass

from pyproj import CRS

from defoscan.crs import crs_label
from defoscan.errors import InputError
from defoscan.io.filters import COUNT_ATTRS
from defoscan.io.geotiff import read_geotiff
from defoscan.io.mintpy import HDF5_SIGNATURE, read_mintpy
from defoscan.io.options import ReadOptions
from defoscan.io.table import open_table, read_table
from defoscan.io.vector import VECTOR_SUFFIXES, read_vector
from defoscan.log import warn
from defoscan.points import concat_points, points_crs, reproject_points

__all__ = [
    "FORMATS",
    "Format",
    "ReadOptions",
    "detect_format",
    "distinct_inputs",
    "input_format",
    "join_tracks",
    "read_input",
    "read_inputs",
]

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".parquet", ".pq")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")
HDF5_SUFFIXES = (".h5", ".he5", ".hdf5")
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass(frozen=True)
class Format:
    """A registry entry: how a format is recognised and read.

    Attributes
    ----------
    name : str
    suffixes : tuple of str
        Lower-case file name endings that name it.
    signature : callable
        ``signature(head, path) -> bool`` on the file's first 8 bytes, for files whose suffix says nothing.
    reader : callable
        ``reader(path, options) -> xarray.Dataset`` (points or a raster).
    streams : bool
        A chunked run can stream it batch by batch (:func:`defoscan.io.table.stream_table`) instead of reading it
        whole.
    """

    name: str
    suffixes: tuple
    signature: object
    reader: object
    streams: bool = False


def _read_table(path, options):
    return read_table(open_table(path, options), options)


# In the order they are tried: a suffix decides first, then the signatures in this order.
FORMATS = (
    Format("mintpy", HDF5_SUFFIXES, lambda head, path: head == HDF5_SIGNATURE, read_mintpy),
    Format("raster", RASTER_SUFFIXES, lambda head, path: head[:4] in TIFF_SIGNATURES, read_geotiff),
    Format("vector", VECTOR_SUFFIXES, lambda head, path: False, read_vector),
    Format(
        "table",
        (*TABLE_SUFFIXES, ".zip"),
        lambda head, path: head[:4] == b"PAR1" or zipfile.is_zipfile(path),
        _read_table,
        streams=True,
    ),
)


def input_format(path):
    """The registry entry of an input file (:data:`FORMATS`): by its suffix where known, else its first bytes.

    Raises
    ------
    InputError
        If the file is missing, a directory, empty, or of no format defoscan reads.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(path, "no such file")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, expected a file")
    if os.path.getsize(path) == 0:
        raise InputError(path, "empty file")
    lower = path.lower()
    for entry in FORMATS:
        if lower.endswith(entry.suffixes):
            return entry
    with open(path, "rb") as handle:
        head = handle.read(8)
    for entry in FORMATS:
        if entry.signature(head, path):
            return entry
    raise InputError(
        path, "unknown format: expected CSV/TSV/Parquet, EGMS zip, MintPy HDF5, GeoTIFF, Shapefile or GeoPackage"
    )


def detect_format(path):
    """The name of an input file's format: ``table``, ``mintpy``, ``raster`` or ``vector`` (:func:`input_format`)."""
    return input_format(path).name


def read_input(path, options=None):
    """Read one input file with its format's reader (:data:`FORMATS`).

    Parameters
    ----------
    path : str or os.PathLike
    options : ReadOptions, optional

    Returns
    -------
    xarray.Dataset
        A points dataset (dimension ``point``) or a raster dataset (dimensions ``y``, ``x``). Its ``attrs`` count
        what the reader dropped: ``invalid_velocities`` always, ``fill_values`` when it found some (or
        ``options.nodata``'s), ``low_coherence_dropped`` with ``options.min_coherence``, ``outside_bbox`` with
        ``options.bbox`` (summed per track by :func:`read_inputs`).

    Raises
    ------
    InputError
        On a file defoscan cannot read, or whose velocities are implausible in the unit they are read in
        (:class:`defoscan.io.filters.SpeedTally`).
    """
    path = os.fspath(path)
    return input_format(path).reader(path, options or ReadOptions())


def read_inputs(paths, options=None):
    """Read several files of one area, joined per viewing geometry.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        A file given twice (by the same path, a link to it, or a copy of it) is read once (:func:`distinct_inputs`).
    options : ReadOptions, optional

    Returns
    -------
    list of xarray.Dataset
        One dataset per track, in the order tracks first appear. Points are all in one working CRS.

    Raises
    ------
    InputError
        On mixed points and rasters, or on inputs declared in different projected CRSs.
    """
    paths = distinct_inputs(paths)
    return join_tracks([read_input(p, options) for p in paths], paths)


def distinct_inputs(paths):
    """The inputs with every file given again left out, each with a warning: read twice, its points would count
    twice (twice the density: a finer default cell, and every signal twice as well supported).

    A file is given again when it is the same file (the same path, however written, or a link to it: the same
    device and inode) or has the same content as one before it (a copy: compared byte by byte, only with files
    of the same size). Files that overlap without being the same (a burst and a mosaic holding it) are not found.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Anything else (a dataset held in memory, a missing file) is passed on as it is.

    Returns
    -------
    list
        In the order given, the first of each file kept.
    """
    kept, files, sizes = [], {}, {}
    for path in paths:
        if not isinstance(path, str | os.PathLike) or not os.path.isfile(path):
            kept.append(path)
            continue
        status = os.stat(path)
        first = files.get((status.st_dev, status.st_ino))
        if first is not None:
            warn(f"{path}: given twice (the same file as {first}): read once")
            continue
        first = next((p for p in sizes.get(status.st_size, []) if filecmp.cmp(p, path, shallow=False)), None)
        if first is not None:
            warn(f"{path}: the same content as {first}, given before it: read once")
            continue
        files[(status.st_dev, status.st_ino)] = path
        sizes.setdefault(status.st_size, []).append(path)
        kept.append(path)
    return kept


def join_tracks(datasets, paths=None):
    """Datasets as read (points or rasters) joined per viewing geometry, as :func:`read_inputs` gives them.

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
    paths : sequence of str, optional
        Where they were read from, for the messages.

    Returns
    -------
    list of xarray.Dataset

    Raises
    ------
    InputError
        On mixed points and rasters, or on datasets declared in different projected CRSs.
    """
    paths = list(paths) if paths is not None else [(ds.attrs.get("sources") or [None])[0] for ds in datasets]
    kinds = {"point" in ds.dims for ds in datasets}
    if len(kinds) > 1:
        raise InputError(paths[0], "cannot mix point tables and rasters in one run; pass them separately")
    _check_same_projected_crs(paths, datasets)
    groups = {}
    for ds in datasets:
        groups.setdefault(ds.attrs["track"], []).append(ds)
    if "point" not in datasets[0].dims:
        return [ds for group in groups.values() for ds in group]
    declared = [points_crs(ds) for ds in datasets if ds.attrs.get("crs_declared")]
    target = declared[0] if declared else points_crs(datasets[0])
    return [_joined(group, target) for group in groups.values()]


def _joined(group, target):
    """The points of one track in one dataset, with the dropped-row counts of its files summed."""
    joined = concat_points([reproject_points(ds, target) for ds in group])
    for name in COUNT_ATTRS:
        if any(name in ds.attrs for ds in group):
            joined.attrs[name] = sum(int(ds.attrs.get(name, 0)) for ds in group)
    return joined


def _check_same_projected_crs(paths, datasets):
    declared = {}
    for path, ds in zip(paths, datasets, strict=True):
        crs = _declared_crs(ds)
        if crs is not None and crs.is_projected:
            declared.setdefault(crs_label(crs), path)
    if len(declared) > 1:
        listed = ", ".join(
            f"{label} in {os.path.basename(os.fspath(p or 'a dataset'))}" for label, p in declared.items()
        )
        raise InputError(paths[0], f"inputs are in different CRSs ({listed}); reproject them to one CRS first")


def _name(path):
    return "a dataset" if path is None else os.path.basename(os.fspath(path))


def _declared_crs(ds):
    if "point" in ds.dims:
        return points_crs(ds) if ds.attrs.get("crs_declared") else None
    return CRS.from_user_input(ds.rio.crs)
