"""Points in vector files: Shapefile, GeoPackage, GeoJSON, FlatGeobuf (via pyogrio)."""

import numpy as np
import pyogrio
import shapely

from defoscan.crs import working_crs
from defoscan.errors import InputError
from defoscan.io.columns import ROLE_NAMES, UNITS_BY_NAME, find_column
from defoscan.io.filters import (
    FillValues,
    SpeedTally,
    bbox_of,
    check_lonlat,
    invalid_velocity,
    low_coherence,
    report_dropped,
    scale_velocity,
    warn_invalid,
)
from defoscan.io.units import velocity_unit
from defoscan.log import logger
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
        In the layer's CRS if projected, else in the working CRS for its lon/lat. The layer is ``--layer``, the
        file's only one, or its only layer of points (:func:`_layer`).
    """
    try:
        layer = _layer(path, options)
        info = pyogrio.read_info(path, layer=layer)
    except InputError:
        raise
    except Exception as err:  # pyogrio raises DataSourceError and friends from GDAL
        raise InputError(path, f"corrupt or unreadable vector file ({str(err).splitlines()[0]})") from None
    names = list(info["fields"])
    given = options.columns
    roles = {role: find_column(names, role, given.get(role)) for role in ("velocity", *OPTIONAL_VARIABLES)}
    if roles["velocity"] is None:
        raise InputError(path, f"no recognisable velocity attribute; name it with --velocity (fields: {names})")
    if options.min_coherence is not None and roles["coherence"] is None:
        raise InputError(
            path,
            f"--min-coherence needs a coherence attribute; none found (recognised: "
            f"{', '.join(ROLE_NAMES['coherence'])}; fields: {names})",
        )
    wanted = [c for c in roles.values() if c]
    table = pyogrio.read_dataframe(path, layer=layer, columns=wanted)
    if len(table) == 0:
        raise InputError(path, "no features")
    geom_types = set(table.geometry.geom_type.dropna())
    if not geom_types <= {"Point"}:
        raise InputError(path, f"expected point features, found {sorted(geom_types)}")
    # Features with a null, empty or infinite geometry have no position: drop them (keeping attributes aligned).
    geometry = table.geometry.values
    placed = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry))
    placed[placed] = np.isfinite(shapely.get_coordinates(geometry[placed])).all(axis=1)
    if not placed.any():
        raise InputError(path, "no feature has a point geometry with finite coordinates")
    table = table[placed].reset_index(drop=True)
    crs = table.crs
    if crs is None:
        if not options.crs:
            raise InputError(path, "the layer has no CRS; pass --crs")
        table = table.set_crs(options.crs)
        crs = table.crs
    declared = not crs.is_geographic
    unit = velocity_unit(path, options.units, UNITS_BY_NAME.get(roles["velocity"].lower()))
    factor = unit.factor
    keep, counts = _keep(path, table, roles, unit, options)
    table = table[keep].reset_index(drop=True)
    if crs.is_geographic:
        lon, lat = shapely.get_x(table.geometry.values), shapely.get_y(table.geometry.values)
        check_lonlat(path, lon, lat, fix="the layer's CRS says degrees: is it the right one?")
        table = table.to_crs(working_crs(lon, lat))
    xy = shapely.get_coordinates(table.geometry.values)
    velocity = scale_velocity(_numbers(path, table, roles["velocity"]), factor)
    valid = np.isfinite(velocity) & np.isfinite(xy).all(axis=1)
    if not valid.any():
        raise InputError(path, f"no feature has a finite {roles['velocity']!r} value")
    optional = {r: _numbers(path, table, c)[valid] for r, c in roles.items() if c and r != "velocity"}
    if "velocity_std" in optional:
        optional["velocity_std"] = scale_velocity(optional["velocity_std"], factor)
    points = make_points(
        xy[valid, 0], xy[valid, 1], velocity[valid], crs=table.crs, sources=[path], crs_declared=declared, **optional
    )
    points.attrs.update(counts)
    return points


def _layer(path, options):
    """The layer to read: ``--layer``, else the file's only layer, else its only layer of points.

    A GeoPackage may hold several layers (the points, an outline of the area, a style table); GDAL reads the first
    by default, which may not be the points. Tables without geometry (``layer_styles``) never count.

    Raises
    ------
    InputError
        A ``--layer`` the file does not have; several layers of which none or more than one may hold points.
    """
    layers = [(str(name), None if kind is None else str(kind)) for name, kind in pyogrio.list_layers(path)]
    names = [name for name, _ in layers]
    if options.layer is not None:
        if options.layer not in names:
            raise InputError(path, f"no layer named {options.layer!r} (layers: {', '.join(names)})")
        return options.layer
    if len(layers) <= 1:
        return None
    points = [name for name, kind in layers if kind is not None and (kind.startswith("Point") or kind == "Unknown")]
    if len(points) == 1:
        logger.info("%s: reading layer %r, its only layer of points", path, points[0])
        return points[0]
    listed = ", ".join(f"{name} ({kind or 'no geometry'})" for name, kind in layers)
    raise InputError(path, f"the file holds {len(layers)} layers ({listed}); name the one to read with --layer NAME")


def _keep(path, table, roles, unit, options):
    """Features to keep (velocity valid and not a fill value, coherent enough, inside ``--bbox``) and the counts of
    those dropped; the velocities' plausibility in ``unit`` checked (:class:`defoscan.io.filters.SpeedTally`)."""
    raw = _numbers(path, table, roles["velocity"])
    fills = FillValues(path, options)
    filled = fills.mask(raw)
    velocity = scale_velocity(np.where(filled, np.nan, raw), unit.factor)
    invalid = invalid_velocity(velocity)
    counts = {**fills.counts, "invalid_velocities": int(invalid.sum())}
    keep = ~invalid & ~filled
    if fills.count and not (keep & ~np.isnan(velocity)).any() and not invalid.any():
        raise fills.none_left()
    if not (keep & ~np.isnan(velocity)).any():  # one line then, without the warning
        raise InputError(path, f"no feature has a finite {roles['velocity']!r} value within ±10 m/yr")
    speeds = SpeedTally()
    speeds.add(velocity[keep])
    speeds.check(path, unit)
    fills.report()
    warn_invalid(path, counts["invalid_velocities"])
    if options.min_coherence is not None:
        low = low_coherence(_numbers(path, table, roles["coherence"]), options) & keep
        counts["low_coherence_dropped"] = int(low.sum())
        keep &= ~low
        if not keep.any():
            raise InputError(path, f"no feature has a coherence of at least {options.min_coherence:g}")
    box = bbox_of(options, path)
    if box is not None:
        geometry = table.geometry.values
        out = box.outside(shapely.get_x(geometry), shapely.get_y(geometry), table.crs) & keep
        counts["outside_bbox"] = int(out.sum())
        keep &= ~out
        if not keep.any():
            raise InputError(path, f"no points inside {box.label}")
    report_dropped(path, counts)
    return keep, counts


def _numbers(path, table, column):
    """An attribute as float64; an :class:`InputError` naming it when it holds something else (text)."""
    try:
        return table[column].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        shown = next((v for v in table[column] if not _is_number(v)), None)
        raise InputError(path, f"attribute {column!r} holds {shown!r}, not a number") from None


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
