"""The working coordinate reference system: the input's projected CRS, else a rule on lon/lat (docs/DESIGN-NOTES.md).

For lon/lat input the working CRS is EPSG:27700 (British National Grid) inside Great Britain, EPSG:3035 (ETRS89
LAEA Europe, the EGMS grid) for EGMS inputs, else the local UTM zone of the data's centre.
"""

import numpy as np
import shapely
from pyproj import CRS
from shapely import Polygon

BRITISH_NATIONAL_GRID = CRS.from_epsg(27700)
EGMS_LAEA = CRS.from_epsg(3035)
WGS84 = CRS.from_epsg(4326)

# Great Britain (not Northern Ireland, which uses the Irish grid) as [west, east, south, north] in degrees:
# the extent of EPSG:27700's area of use, which is where the grid is defined and its distortion small.
_GREAT_BRITAIN = (-9.01, 2.01, 49.75, 61.01)

# Land inside that box that is not Great Britain, as coarse (lon, lat) polygons drawn through the sea between the
# coasts. The island of Ireland (Republic and Northern Ireland): through St George's Channel, the Irish Sea west of
# the Isle of Man and the North Channel between Antrim and Kintyre, Rathlin on Ireland's side, Islay on Britain's.
_IRELAND = Polygon(
    [(-11.0, 51.2), (-5.85, 51.2), (-5.85, 53.3), (-5.3, 54.2), (-5.3, 54.6), (-5.95, 55.2), (-6.1, 55.35)]
    + [(-6.4, 55.5), (-11.0, 55.5)]
)
# The French Channel coast from Normandy to Calais: through the English Channel and the Strait of Dover.
_FRANCE = Polygon([(-0.5, 49.5), (0.0, 49.9), (1.3, 50.85), (1.5, 51.05), (2.1, 51.3), (2.1, 49.5)])


def utm_crs(lon, lat):
    """Return the WGS 84 / UTM zone CRS that contains a point.

    Parameters
    ----------
    lon, lat : float
        Longitude and latitude in degrees.

    Returns
    -------
    pyproj.CRS
        EPSG:326xx in the northern hemisphere, EPSG:327xx in the southern.
    """
    zone = int(np.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def working_crs(lon, lat, *, egms=False):
    """Choose the projected CRS to work in for data given in longitude/latitude.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes of the data (degrees); their median point decides.
    egms : bool
        True when the data come from the European Ground Motion Service.

    Returns
    -------
    pyproj.CRS
    """
    if egms:
        return EGMS_LAEA
    lon0 = float(np.nanmedian(unwrap_longitudes(lon)))
    lat0 = float(np.nanmedian(lat))
    west, east, south, north = _GREAT_BRITAIN
    if west <= lon0 <= east and south <= lat0 <= north and not _not_great_britain(lon0, lat0):
        return BRITISH_NATIONAL_GRID
    return utm_crs(lon0, lat0)


def straddles_antimeridian(lon_min, lon_max):
    """Whether data from longitude ``lon_min`` to ``lon_max`` lie on both sides of ±180 degrees.

    A span of over 180 degrees is taken to be two sides of the antimeridian: an area defoscan maps is never half
    the globe wide.
    """
    return bool(lon_max - lon_min > 180.0)


def unwrap_longitudes(lon, straddling=None):
    """Longitudes made continuous across the antimeridian: the negative ones + 360 where the data straddle it.

    Over Fiji, 179.5 and -179.5 become 179.5 and 180.5: their median is 180, where a naive one is 0 (UTM zone 31
    for a place in zones 60 and 1). :func:`utm_crs` takes longitudes past 180.

    Parameters
    ----------
    lon : array_like
        Degrees, in [-180, 180]; NaN ignored.
    straddling : bool, optional
        Whether the data straddle the antimeridian (:func:`straddles_antimeridian`), when known from all of them
        (``lon`` is then one part); found from ``lon`` otherwise.

    Returns
    -------
    numpy.ndarray
        ``lon`` itself where the data do not straddle the antimeridian.
    """
    lon = np.asarray(lon, dtype=np.float64)
    if straddling is None:
        finite = lon[np.isfinite(lon)]
        straddling = finite.size > 0 and straddles_antimeridian(finite.min(), finite.max())
    return np.where(lon < 0, lon + 360.0, lon) if straddling else lon


def degrees_out_of_range(lon, lat):
    """The first of latitude and longitude that leaves its range of degrees, for a grid in a geographic CRS.

    Latitudes lie in [-90, 90], longitudes in [-180, 360] (grids on 0 to 360 degrees exist). Out of them, the grid
    is usually in projected coordinates with a geographic CRS, or misplaced by its georeferencing.

    Parameters
    ----------
    lon, lat : array_like
        Degrees (the grid's edges, say); finite.

    Returns
    -------
    tuple or None
        ``(name, value, low, high)``: ``"latitude"`` or ``"longitude"``, the value farthest out and the range;
        None when both are inside.
    """
    for name, values, low, high in (("latitude", lat, -90.0, 90.0), ("longitude", lon, -180.0, 360.0)):
        values = np.asarray(values, dtype=np.float64)
        if values.min() < low or values.max() > high:
            farthest = values.min() if low - values.min() > values.max() - high else values.max()
            return name, float(farthest), low, high
    return None


def _not_great_britain(lon, lat):
    # Ireland and the French coast lie inside the GB box: they stay on their UTM zones.
    return bool(shapely.contains_xy(_IRELAND, lon, lat) or shapely.contains_xy(_FRANCE, lon, lat))


def crs_label(crs):
    """Short label of a CRS, ``EPSG:xxxx`` where it has one, else its name."""
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name
