"""What readers drop before anything else sees it: invalid velocities, low coherence, points outside ``--bbox``.

Every reader (tables in memory and streamed, vector files, rasters) filters through these functions, counts what
each dropped and records the counts in the dataset's attrs (:data:`COUNT_ATTRS`) for ``run.json``.
"""

import numpy as np
from pyproj import CRS, Transformer

from defoscan.errors import InputError
from defoscan.log import logger, warn

# No ground deformation measured by InSAR comes near 10 m/yr (the fastest landslides and glaciers tracked this way
# move metres per year at most, and phase unwrapping cannot follow more): a larger rate is a fill value (1e30,
# -9999 m/yr, ...) or a unit mistake, and passing it on would overflow the solvers.
MAX_SPEED_MM_YR = 10_000.0

COUNT_ATTRS = ("invalid_velocities", "low_coherence_dropped", "outside_bbox")


def invalid_velocity(velocity):
    """Where a velocity in mm/yr is infinite or beyond :data:`MAX_SPEED_MM_YR` (NaN, missing, is not invalid).

    Parameters
    ----------
    velocity : numpy.ndarray

    Returns
    -------
    numpy.ndarray of bool
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return np.isinf(velocity) | (np.abs(velocity) > MAX_SPEED_MM_YR)


def scale_velocity(values, factor):
    """``values * factor`` as float64 (no overflow warning: an overflowing value is invalid anyway)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values, dtype=np.float64) * factor


def warn_invalid(path, count):
    """The one warning per input file about velocities dropped as invalid."""
    if count:
        warn(f"{path}: {count} velocities beyond ±10 m/yr or not finite were dropped as invalid")


def report_dropped(path, counts):
    """Stage message for the points dropped by ``--min-coherence`` and ``--bbox`` (what the user asked for)."""
    if counts.get("low_coherence_dropped"):
        logger.info("%s: %d points below --min-coherence dropped", path, counts["low_coherence_dropped"])
    if counts.get("outside_bbox"):
        logger.info("%s: %d points outside --bbox dropped", path, counts["outside_bbox"])


def low_coherence(coherence, options):
    """Where ``coherence`` is below ``options.min_coherence`` (or missing); all False when no minimum is set."""
    coherence = np.asarray(coherence)
    if options.min_coherence is None:
        return np.zeros(coherence.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return ~(coherence >= options.min_coherence)


class BBox:
    """The ``--bbox`` of a run, tested against coordinates in any CRS.

    Parameters
    ----------
    options : defoscan.io.options.ReadOptions
    path : str, optional
        File named in errors.

    Raises
    ------
    InputError
        On a bbox with west >= east or south >= north, out of range lon/lat, or an unknown ``bbox_crs``.
    """

    def __init__(self, options, path=None):
        west, east, south, north = (float(v) for v in options.bbox)
        label = f"--bbox {west:g} {east:g} {south:g} {north:g}"
        if not all(np.isfinite([west, east, south, north])):
            raise InputError(path, f"{label}: the bounds must be finite numbers")
        if west >= east or south >= north:
            raise InputError(path, f"{label}: expected WEST EAST SOUTH NORTH with west < east and south < north")
        try:
            self.crs = CRS.from_user_input(options.bbox_crs)
        except Exception:
            raise InputError(path, f"unknown --bbox-crs {options.bbox_crs!r}") from None
        if self.crs.is_geographic and not (-180 <= west and east <= 180 and -90 <= south and north <= 90):
            raise InputError(path, f"{label}: longitude must lie in [-180, 180] and latitude in [-90, 90]")
        self.bounds = west, east, south, north
        self.label = label
        self._transformers = {}

    def outside(self, a, b, crs):
        """Where points ``(a, b)`` in ``crs`` lie outside the box (a point on its edge is inside)."""
        a, b = self._to_bbox_crs(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), crs)
        west, east, south, north = self.bounds
        with np.errstate(invalid="ignore"):
            return ~((a >= west) & (a <= east) & (b >= south) & (b <= north))

    def _to_bbox_crs(self, a, b, crs):
        crs = CRS.from_user_input(crs)
        if crs == self.crs:
            return a, b
        key = crs.to_wkt()
        if key not in self._transformers:
            self._transformers[key] = Transformer.from_crs(crs, self.crs, always_xy=True)
        return self._transformers[key].transform(a, b)


def bbox_of(options, path=None):
    """A :class:`BBox` when ``options.bbox`` is set, else ``None``."""
    return None if options.bbox is None else BBox(options, path)


def filter_raster_cells(path, velocity, options, *, x, y, crs, coherence=None):
    """Set to NaN, in place, the cells a raster reader must drop; return the counts and the window to keep.

    Parameters
    ----------
    path : str
    velocity : numpy.ndarray
        2-D, float, mm/yr; NaN where no data.
    options : defoscan.io.options.ReadOptions
    x, y : numpy.ndarray
        1-D cell-centre coordinates in ``crs``.
    crs : pyproj.CRS or str
    coherence : numpy.ndarray, optional
        2-D temporal coherence, for ``options.min_coherence``.

    Returns
    -------
    counts : dict
        The counts of :data:`COUNT_ATTRS` (cells with data that were dropped).
    window : tuple of slice
        Rows and columns of the cells inside ``--bbox`` (all of them without one): readers crop to it.

    Raises
    ------
    InputError
        When no cell is left.
    """
    had_data = ~np.isnan(velocity)
    invalid = invalid_velocity(velocity)
    velocity[invalid] = np.nan
    counts = {"invalid_velocities": int(invalid.sum())}
    if not np.isfinite(velocity).any() and had_data.any():  # one line then, without the warning
        raise InputError(path, "every velocity is beyond ±10 m/yr or not finite: no valid data")
    warn_invalid(path, counts["invalid_velocities"])
    if coherence is not None and options.min_coherence is not None:
        low = low_coherence(coherence, options) & np.isfinite(velocity)
        velocity[low] = np.nan
        counts["low_coherence_dropped"] = int(low.sum())
        if not np.isfinite(velocity).any():
            raise InputError(path, f"no cell has a temporal coherence of at least {options.min_coherence:g}")
    window = (slice(None), slice(None))
    box = bbox_of(options, path)
    if box is not None:
        xx, yy = np.meshgrid(x, y)
        outside = box.outside(xx, yy, crs)
        out = outside & np.isfinite(velocity)
        velocity[out] = np.nan
        counts["outside_bbox"] = int(out.sum())
        if not np.isfinite(velocity).any():
            raise InputError(path, f"no cell with data inside {box.label}")
        rows, cols = np.flatnonzero(~outside.all(axis=1)), np.flatnonzero(~outside.all(axis=0))
        window = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    report_dropped(path, counts)
    return counts, window


def cropped_transform(transform, window):
    """The geotransform of ``window`` (rows, columns slices) of a grid with ``transform``."""
    rows, cols = window
    return transform * transform.translation(cols.start or 0, rows.start or 0)


def check_lonlat(path, lon, lat, fix="pass --x/--y and --crs"):
    """Refuse longitudes and latitudes out of their ranges (projected numbers, swapped columns), with a hint.

    ``fix`` says what to do about projected numbers taken for degrees (a table's columns by default).
    """
    # Infinite coordinates are none, as NaN ones are (the rows are dropped): no range to tell about.
    with np.errstate(invalid="ignore"):
        lat_bad = np.isfinite(lat) & (np.abs(lat) > 90)
        lon_bad = np.isfinite(lon) & (np.abs(lon) > 180)
    if lat_bad.any():
        hint = "; are longitude and latitude swapped?" if (np.abs(lon[lat_bad]) <= 90).all() else ""
        raise InputError(path, f"latitude {np.abs(lat[lat_bad]).max():g} out of range [-90, 90]{hint}")
    if lon_bad.any():
        raise InputError(
            path,
            f"longitude {np.abs(lon[lon_bad]).max():g} out of range [-180, 180]; "
            f"are these projected coordinates? {fix}",
        )
