"""MintPy HDF5 velocity files (``velocity.h5``), geocoded.

MintPy stores the grid in attributes: ``X_FIRST``/``Y_FIRST`` are the outer corner of the first pixel (checked on
the real Kirishima file of ``shared/data/real``, whose ``REF_LON = X_FIRST + (REF_X + 0.5) * X_STEP`` exactly),
``X_STEP``/``Y_STEP`` the pixel size, ``UNIT`` the velocity unit (``m/year``). Zero marks no data in masked
products, except at the reference pixel (``REF_Y``/``REF_X``), which is zero by construction. ``--min-coherence``
reads MintPy's ``temporalCoherence.h5`` from the folder of the velocity file, as MintPy writes them side by side.
"""

import os

import h5py
import numpy as np
from affine import Affine
from pyproj import CRS
from pyproj.exceptions import CRSError

from defoscan.crs import degrees_out_of_range
from defoscan.errors import InputError
from defoscan.io.filters import FillValues, cropped_transform, filter_raster_cells
from defoscan.io.units import velocity_unit
from defoscan.raster import invertible, make_raster

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
COHERENCE_FILE = "temporalCoherence.h5"
GRID_ATTRIBUTES = ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP")  # the outer corner of the first pixel, the pixel size


def read_mintpy(path, options):
    """Read a geocoded MintPy velocity file into a raster dataset.

    Parameters
    ----------
    path : str
    options : defoscan.io.options.ReadOptions

    Returns
    -------
    xarray.Dataset
        In the file's CRS (EPSG:4326 for MintPy's lat/lon geocoding, else its ``EPSG`` attribute).
    """
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise InputError(path, f"corrupt or unreadable HDF5 file ({err})") from None
    with handle:
        if "velocity" not in handle:
            raise InputError(path, f"no 'velocity' dataset in this HDF5 file (it holds: {', '.join(handle)})")
        attrs = {k: _text(v) for k, v in handle.attrs.items()}
        try:
            velocity = handle["velocity"][()].astype(np.float64)
            std = handle["velocityStd"][()].astype(np.float64) if "velocityStd" in handle else None
        except OSError as err:
            raise InputError(path, f"corrupt HDF5 dataset 'velocity' ({err})") from None
    if velocity.ndim != 2:
        raise InputError(path, f"'velocity' has {velocity.ndim} dimensions, expected 2")
    if velocity.size == 0:
        raise InputError(path, f"'velocity' is empty ({velocity.shape[0]} x {velocity.shape[1]} pixels)")
    if not all(k in attrs for k in GRID_ATTRIBUTES):
        raise InputError(path, "not geocoded (no X_FIRST/Y_FIRST attributes): geocode it with MintPy first")
    transform, crs = _grid(path, attrs, velocity.shape)
    unit = velocity_unit(path, options.units, attrs.get("UNIT"), default="m/year")
    factor = unit.factor
    fills = FillValues(path, options, declared=True)  # 0 marks no data; --nodata may name another value
    nodata = (velocity == 0) | ~np.isfinite(velocity) | fills.mask(velocity)
    if "REF_Y" in attrs and "REF_X" in attrs:  # the reference pixel is 0 by construction, and it is data
        ref = _whole(path, attrs, "REF_Y"), _whole(path, attrs, "REF_X")
        if 0 <= ref[0] < velocity.shape[0] and 0 <= ref[1] < velocity.shape[1]:
            nodata[ref] = False
    velocity[nodata] = np.nan
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing value is invalid, dropped below
        velocity *= factor
    coherence = _coherence(path, velocity.shape) if options.min_coherence is not None else None
    height, width = velocity.shape
    x = transform.c + transform.a * (np.arange(width) + 0.5)
    y = transform.f + transform.e * (np.arange(height) + 0.5)
    counts, window = filter_raster_cells(
        path, velocity, options, x=x, y=y, crs=crs, coherence=coherence, unit=unit, fills=fills
    )
    if std is not None:
        std[np.isnan(velocity)] = np.nan
        with np.errstate(over="ignore", invalid="ignore"):
            std = std[window] * factor
    velocity, transform = velocity[window], cropped_transform(transform, window)
    track = "-".join(str(attrs[k]) for k in ("PLATFORM", "ORBIT_DIRECTION", "trackNumber") if k in attrs)
    raster = make_raster(velocity, transform, crs, track=track or None, sources=[path], velocity_std=std)
    raster.attrs.update(counts)
    return raster


def _grid(path, attrs, shape):
    """The geotransform and CRS the attributes give the ``shape`` of 'velocity', each attribute checked.

    Raises
    ------
    InputError
        Naming the attribute that is not a finite number (a pixel size of 0 too), pixels GDAL cannot invert, a
        WIDTH/LENGTH other than the dataset's, an EPSG code PROJ does not know or of no map CRS, or a grid
        outside longitude/latitude without an EPSG code.
    """
    first_x, first_y, step_x, step_y = (_number(path, attrs, key) for key in GRID_ATTRIBUTES)
    for key, step in (("X_STEP", step_x), ("Y_STEP", step_y)):
        if step == 0:
            raise InputError(path, f"MintPy attribute {key} is {attrs[key]!r}: a pixel size cannot be 0")
    for key, size, along in (("LENGTH", shape[0], "rows"), ("WIDTH", shape[1], "columns")):
        if key in attrs and _whole(path, attrs, key) != size:
            raise InputError(path, f"MintPy attribute {key} is {attrs[key]!r}, but 'velocity' has {size} {along}")
    transform = Affine(step_x, 0.0, first_x, 0.0, step_y, first_y)
    if not invertible(transform):
        raise InputError(
            path, f"MintPy attributes X_STEP {attrs['X_STEP']!r} and Y_STEP {attrs['Y_STEP']!r} make degenerate pixels"
        )
    crs = _crs(path, attrs)
    xs, ys = first_x + step_x * np.array([0, shape[1]]), first_y + step_y * np.array([0, shape[0]])
    out = degrees_out_of_range(xs, ys) if crs.is_geographic else None
    if out is not None:
        name, value, low, high = out
        key = "Y" if name == "latitude" else "X"
        raise InputError(
            path,
            f"MintPy attributes {key}_FIRST/{key}_STEP put the grid at {name} {value:g}, out of [{low:g}, {high:g}] "
            "(a projected grid needs its EPSG attribute)",
        )
    return transform, crs


def _crs(path, attrs):
    """The CRS of the ``EPSG`` attribute, checked; EPSG:4326 without one (MintPy's longitude/latitude geocoding)."""
    if "EPSG" not in attrs:
        return CRS.from_epsg(4326)
    try:
        crs = CRS.from_epsg(_whole(path, attrs, "EPSG"))
    except CRSError:
        raise InputError(path, f"MintPy attribute EPSG is {attrs['EPSG']!r}, not an EPSG code PROJ knows") from None
    if not (crs.is_projected or crs.is_geographic):
        raise InputError(path, f"MintPy attribute EPSG is {attrs['EPSG']!r}, {crs.name}: not a map CRS")
    return crs


def _number(path, attrs, key):
    """Attribute ``key`` as a finite float; an :class:`InputError` naming it otherwise."""
    value = attrs[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(path, f"MintPy attribute {key} is {value!r}, not a number") from None
    if not np.isfinite(number):
        raise InputError(path, f"MintPy attribute {key} is {value!r}, not a finite number")
    return number


def _whole(path, attrs, key):
    """Attribute ``key`` as an int (``"541"`` or ``541.0``); an :class:`InputError` naming it otherwise."""
    number = _number(path, attrs, key)
    if number != int(number):
        raise InputError(path, f"MintPy attribute {key} is {attrs[key]!r}, not a whole number")
    return int(number)


def _coherence(path, shape):
    """MintPy's temporal coherence of the grid of ``path``, from ``temporalCoherence.h5`` beside it."""
    coherence_path = os.path.join(os.path.dirname(os.path.abspath(path)), COHERENCE_FILE)
    if not os.path.exists(coherence_path):
        raise InputError(path, f"--min-coherence needs {coherence_path} (MintPy's {COHERENCE_FILE} beside it): missing")
    try:
        with h5py.File(coherence_path, "r") as handle:
            name = "temporalCoherence" if "temporalCoherence" in handle else next(iter(handle), None)
            if name is None:
                raise InputError(coherence_path, "no dataset in this HDF5 file")
            coherence = handle[name][()].astype(np.float64)
    except OSError as err:
        raise InputError(coherence_path, f"corrupt or unreadable HDF5 file ({err})") from None
    if coherence.shape != shape:
        raise InputError(coherence_path, f"grid {coherence.shape} differs from the velocity's {shape}")
    return coherence


def is_hdf5(path):
    """True when the file starts with the HDF5 signature."""
    with open(path, "rb") as handle:
        return handle.read(8) == HDF5_SIGNATURE


def _text(value):
    """An attribute as text or a plain number (h5py gives numpy scalars: shown as such in messages)."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode(errors="replace")
    return value.item() if isinstance(value, np.generic) else value
