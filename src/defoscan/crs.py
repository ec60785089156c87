"""The working coordinate reference system (DESIGN.md): the input's projected CRS, else a rule on lon/lat.

For lon/lat input the working CRS is EPSG:27700 (British National Grid) inside Great Britain, EPSG:3035 (ETRS89
LAEA Europe, the EGMS grid) for EGMS inputs, else the local UTM zone of the data's centre.
"""

import numpy as np
from pyproj import CRS

BRITISH_NATIONAL_GRID = CRS.from_epsg(27700)
EGMS_LAEA = CRS.from_epsg(3035)
WGS84 = CRS.from_epsg(4326)

# Great Britain (not Northern Ireland, which uses the Irish grid) as [west, east, south, north] in degrees:
# the extent of EPSG:27700's area of use, which is where the grid is defined and its distortion small.
_GREAT_BRITAIN = (-9.01, 2.01, 49.75, 61.01)


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
    lon0 = float(np.nanmedian(lon))
    lat0 = float(np.nanmedian(lat))
    west, east, south, north = _GREAT_BRITAIN
    if west <= lon0 <= east and south <= lat0 <= north and not _in_ireland(lon0, lat0):
        return BRITISH_NATIONAL_GRID
    return utm_crs(lon0, lat0)


def _in_ireland(lon, lat):
    # The island of Ireland (Republic and Northern Ireland) sits inside the GB box's west: keep it on UTM 29N.
    return lon < -5.3 and 51.3 < lat < 55.5


def crs_label(crs):
    """Short label of a CRS, ``EPSG:xxxx`` where it has one, else its name."""
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name
