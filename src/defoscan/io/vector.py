"""Points in vector files: Shapefile, GeoPackage, GeoJSON, FlatGeobuf (via pyogrio)."""

import numpy as np
import pyogrio
import shapely

from defoscan.crs import working_crs
from defoscan.errors import InputError
from defoscan.io.columns import UNITS_BY_NAME, find_column
from defoscan.io.units import mm_per_year
from defoscan.points import OPTIONAL_VARIABLES, make_points

VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".fgb")


def read_vector(path, options):
    """Read point features and their velocity attribute into a points dataset.

    Parameters
    ----------
    path : str
    options : defoscan.io.options.ReadOptions

    Returns
    -------
    xarray.Dataset
        In the layer's CRS if projected, else in the working CRS for its lon/lat.
    """
    try:
        info = pyogrio.read_info(path)
    except Exception as err:  # pyogrio raises DataSourceError and friends from GDAL
        raise InputError(path, f"corrupt or unreadable vector file ({str(err).splitlines()[0]})") from None
    names = list(info["fields"])
    given = options.columns
    roles = {role: find_column(names, role, given.get(role)) for role in ("velocity", *OPTIONAL_VARIABLES)}
    if roles["velocity"] is None:
        raise InputError(path, f"no recognisable velocity attribute; name it with --velocity (fields: {names})")
    wanted = [c for c in roles.values() if c]
    table = pyogrio.read_dataframe(path, columns=wanted)
    if len(table) == 0:
        raise InputError(path, "no features")
    geom_types = set(table.geometry.geom_type.dropna())
    if not geom_types <= {"Point"}:
        raise InputError(path, f"expected point features, found {sorted(geom_types)}")
    # Features with a null or empty geometry have no position: drop them (keeping attributes aligned).
    placed = ~(shapely.is_missing(table.geometry.values) | shapely.is_empty(table.geometry.values))
    if not placed.any():
        raise InputError(path, "no feature has a point geometry")
    table = table[placed].reset_index(drop=True)
    crs = table.crs
    if crs is None:
        if not options.crs:
            raise InputError(path, "the layer has no CRS; pass --crs")
        table = table.set_crs(options.crs)
        crs = table.crs
    declared = not crs.is_geographic
    if crs.is_geographic:
        lon, lat = shapely.get_x(table.geometry.values), shapely.get_y(table.geometry.values)
        table = table.to_crs(working_crs(lon, lat))
    xy = shapely.get_coordinates(table.geometry.values)
    unit = options.units or UNITS_BY_NAME.get(roles["velocity"].lower(), "mm/yr")
    factor = mm_per_year(unit, path)
    velocity = table[roles["velocity"]].to_numpy(dtype=np.float64) * factor
    valid = np.isfinite(velocity) & np.isfinite(xy).all(axis=1)
    if not valid.any():
        raise InputError(path, f"no feature has a finite {roles['velocity']!r} value")
    optional = {r: table[c].to_numpy(dtype=np.float64)[valid] for r, c in roles.items() if c and r != "velocity"}
    if "velocity_std" in optional:
        optional["velocity_std"] = optional["velocity_std"] * factor
    return make_points(
        xy[valid, 0], xy[valid, 1], velocity[valid], crs=table.crs, sources=[path], crs_declared=declared, **optional
    )
