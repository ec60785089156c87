"""What readers drop before anything else sees it: fill values, invalid velocities, low coherence, points outside
``--bbox``; and whether what is left is plausible as an InSAR velocity map at all.

Every reader (tables in memory and streamed, vector files, rasters) filters through these functions, counts what
each dropped and records the counts in the dataset's attrs (:data:`COUNT_ATTRS`) for ``run.json``:

- **Fill values** (:class:`FillValues`): a file that declares no nodata value (a GeoTIFF without its tag, a table)
  often writes one anyway; -9999 mm/yr passes for a (fast) velocity. The values of :data:`FILL_VALUES` are read as
  no data then, with a warning; ``--nodata V`` names the value instead (and stops the guessing).
- **Invalid velocities**: a single value beyond :data:`MAX_SPEED_MM_YR` is dropped, with a warning.
- **Plausibility** (:class:`SpeedTally`): a map of which more than 1 % (and at least 10 values) move faster than
  :data:`PLAUSIBLE_SPEED_MM_YR` is in another unit than it was read in (mm/yr read as m/yr: x 1000), refused in one
  line naming ``--units``; a map of which 99 % lie within :data:`NOISE_FLOOR_MM_YR` is warned about (m/yr read as
  mm/yr: every velocity 1000 times too small, nothing would be detected).
"""

import numpy as np
from pyproj import CRS, Transformer

from defoscan.errors import InputError
from defoscan.log import logger, warn

# No ground deformation measured by InSAR comes near 10 m/yr (the fastest landslides and glaciers tracked this way
# move metres per year at most, and phase unwrapping cannot follow more): a larger rate is a fill value (1e30,
# -9999 m/yr, ...) or a unit mistake, and passing it on would overflow the solvers.
MAX_SPEED_MM_YR = 10_000.0

COUNT_ATTRS = ("fill_values", "invalid_velocities", "low_coherence_dropped", "outside_bbox")

# Values files write where they have no data without declaring them (as the file stores them, before any unit
# conversion): GDAL's and ESRI's -9999 (and -99999), the int16 extremes (SRTM voids, integer rasters), the float32
# extremes (ArcGIS's default nodata). No velocity of a real map is exactly one of them.
FLOAT32_MAX = float(np.finfo(np.float32).max)
FILL_VALUES = (-9999.0, -99999.0, -32768.0, -32767.0, 32767.0, -FLOAT32_MAX, FLOAT32_MAX)

# Plausibility of a whole map (after unit conversion). The fastest map among the real ones (Mexico City's aquifer
# subsidence, PyRate cropA) reaches 317 mm/yr, its 99th percentile of |v| 303 mm/yr; the quietest (EGMS Ustica)
# has a 99th percentile of 3.3 mm/yr, 3300 mm/yr when its mm/yr are read as m/yr. 1 m/yr lies between, a factor of
# 3 from both; a few values beyond it are spikes (despiked later), more than 1 % is the whole map's scale.
PLAUSIBLE_SPEED_MM_YR = 1000.0
MAX_FAST_SHARE = 0.01
MIN_FAST_COUNT = 10
# ... and no InSAR map is quieter than about 1 mm/yr (EGMS Ustica: 99 % within 3.3 mm/yr); a map of m/yr read as
# mm/yr lies within 0.5 mm/yr almost whole (the Tay et al. city maps: 99 % within 0.1; Mexico City: 0.3).
NOISE_FLOOR_MM_YR = 0.5
MIN_JUDGED = 100  # values: fewer say too little about a map's scale to warn about it


class FillValues:
    """Where a file's velocities, as stored (before unit conversion), mark no data: ``--nodata`` or a fill value.

    Parameters
    ----------
    path : str
        Named in messages.
    options : defoscan.io.options.ReadOptions
        ``options.nodata``: the value marking no data; without it, the values of :data:`FILL_VALUES` do when the
        file declares none.
    declared : bool
        The file declares its nodata (a GeoTIFF's tag or mask, MintPy's 0): then only ``--nodata`` is added.

    Attributes
    ----------
    count : int
        Values found so far.
    found : set of float
        Which of the values were found.
    """

    def __init__(self, path, options, declared=False):
        self.path = path
        self.given = options.nodata
        if self.given is not None:
            self.values = (float(self.given),)
        else:
            self.values = () if declared else FILL_VALUES
        self.count = 0
        self.found = set()

    def mask(self, raw):
        """Where ``raw`` (the values as stored, a batch or the whole file) holds one of the values; counted.

        Parameters
        ----------
        raw : numpy.ndarray

        Returns
        -------
        numpy.ndarray of bool
        """
        raw = np.asarray(raw)
        if not self.values:
            return np.zeros(raw.shape, dtype=bool)
        if self.given is not None and np.isnan(self.given):  # NaN is no data anyway
            return np.zeros(raw.shape, dtype=bool)
        hit = np.isin(raw, self.values)
        count = int(np.count_nonzero(hit))
        if count:
            self.count += count
            self.found.update(float(v) for v in np.unique(raw[hit]))
        return hit

    @property
    def counts(self):
        """``{"fill_values": count}`` for the dataset's attrs, or nothing when none was found."""
        return {"fill_values": self.count} if self.count else {}

    @property
    def shown(self):
        """The values found, as text: ``-9999`` or ``-9999 and -32768``."""
        return " and ".join(f"{v:g}" for v in sorted(self.found))

    def report(self):
        """A warning for guessed fill values (one line), a stage message for ``--nodata``'s."""
        if not self.count:
            return
        if self.given is not None:
            logger.info("%s: %d velocities of --nodata %s read as no data", self.path, self.count, self.shown)
            return
        warn(
            f"{self.path}: {self.count:,} velocities of {self.shown} (a common fill value) read as no data: the file "
            "declares no nodata value (pass --nodata V to name it)"
        )

    def none_left(self):
        """The :class:`InputError` for a file whose every value was one of them."""
        what = "--nodata" if self.given is not None else "the fill value"
        return InputError(self.path, f"every velocity is {what} {self.shown}: no valid data")


class SpeedTally:
    """Counts of a file's kept velocities (mm/yr), batch by batch, judged as a whole by :meth:`check`.

    The counts make the judgement exact and the same read whole or streamed: values, values faster than
    :data:`PLAUSIBLE_SPEED_MM_YR`, values of at least :data:`NOISE_FLOOR_MM_YR`, values not 0.
    """

    def __init__(self):
        self.n = self.fast = self.moving = self.nonzero = 0

    def add(self, velocity):
        """Count a batch of kept velocities (mm/yr; NaN ignored)."""
        speed = np.abs(np.asarray(velocity, dtype=np.float64))
        speed = speed[np.isfinite(speed)]
        self.n += int(speed.size)
        self.fast += int(np.count_nonzero(speed > PLAUSIBLE_SPEED_MM_YR))
        self.moving += int(np.count_nonzero(speed >= NOISE_FLOOR_MM_YR))
        self.nonzero += int(np.count_nonzero(speed))

    def check(self, path, unit):
        """Refuse a map too fast for its unit; warn about one too slow for it.

        Parameters
        ----------
        path : str
        unit : defoscan.io.units.VelocityUnit
            What the values were read in, named in the messages.

        Raises
        ------
        InputError
            More than 1 % of the values, and at least :data:`MIN_FAST_COUNT`, beyond :data:`PLAUSIBLE_SPEED_MM_YR`.
        """
        if self.fast >= MIN_FAST_COUNT and self.fast > MAX_FAST_SHARE * self.n:
            if unit.factor > 1:
                hint = "is the unit wrong? if the file holds mm/yr, pass --units mm/yr"
            else:
                hint = "fill values or another unit? name them with --nodata V or --units"
            raise InputError(
                path,
                f"{self.fast:,} of {self.n:,} velocities are faster than 1 m/yr read in {unit.label}: no InSAR "
                f"velocity map moves so fast; {hint}",
            )
        if self.n >= MIN_JUDGED and self.nonzero and self.moving <= MAX_FAST_SHARE * self.n:
            hint = "if the file holds m/yr, pass --units m/yr" if unit.factor < 1000 else "check the velocity column"
            warn(
                f"{path}: 99 % of the velocities lie within ±{NOISE_FLOOR_MM_YR:g} mm/yr read in {unit.label}, below "
                f"the noise of any InSAR map: nothing can be detected; {hint}"
            )


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


def filter_raster_cells(path, velocity, options, *, x, y, crs, coherence=None, unit=None, fills=None):
    """Set to NaN, in place, the cells a raster reader must drop; return the counts and the window to keep.

    Parameters
    ----------
    path : str
    velocity : numpy.ndarray
        2-D, float, mm/yr; NaN where no data (the fill values already set to NaN by the reader).
    options : defoscan.io.options.ReadOptions
    x, y : numpy.ndarray
        1-D cell-centre coordinates in ``crs``.
    crs : pyproj.CRS or str
    coherence : numpy.ndarray, optional
        2-D temporal coherence, for ``options.min_coherence``.
    unit : defoscan.io.units.VelocityUnit, optional
        The unit the values were read in: the map's plausibility is checked in it (:class:`SpeedTally`).
    fills : FillValues, optional
        The fill values the reader found: counted and reported here, after the checks that refuse the file.

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
    counts = {**(fills.counts if fills is not None else {}), "invalid_velocities": int(invalid.sum())}
    if not np.isfinite(velocity).any() and had_data.any():  # one line then, without the warning
        raise InputError(path, "every velocity is beyond ±10 m/yr or not finite: no valid data")
    if fills is not None and fills.count and not had_data.any():
        raise fills.none_left()
    if unit is not None:
        tally = SpeedTally()
        tally.add(velocity[np.isfinite(velocity)])
        tally.check(path, unit)
    if fills is not None:
        fills.report()
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
