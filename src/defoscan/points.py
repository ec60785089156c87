"""The points representation every reader produces: an ``xarray.Dataset`` along dimension ``point``.

Coordinates ``x`` and ``y`` are projected (easting, northing, metres) in the CRS named by ``attrs["crs"]``;
``velocity`` is in mm/yr, negative = away from the satellite. Optional variables, where the file has them:
``velocity_std`` (mm/yr), ``coherence`` (0..1), ``height`` (m) and ``displacement`` (point, time; mm).
``attrs["track"]`` names the viewing geometry (an orbit track or an L3 component): points of different tracks
are never mixed; ``attrs["sources"]`` lists the files read.
"""

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer

from defoscan.crs import WGS84, crs_label

OPTIONAL_VARIABLES = ("velocity_std", "coherence", "height")


def make_points(x, y, velocity, *, crs, track=None, sources=(), crs_declared=False, **optional):
    """Build a points dataset.

    Parameters
    ----------
    x, y : array_like
        Projected coordinates (metres) in ``crs``.
    velocity : array_like
        Velocity in mm/yr.
    crs : pyproj.CRS or str
        The projected CRS of ``x`` and ``y``.
    track : str or None
        Viewing geometry label; ``None`` when unknown.
    sources : sequence of str
        Files the points come from.
    crs_declared : bool
        True when the file (or the user) declared ``crs``; False when defoscan chose it for lon/lat input.
    **optional : array_like
        Any of ``velocity_std``, ``coherence``, ``height`` (per point) and ``displacement`` (with ``time``).

    Returns
    -------
    xarray.Dataset
    """
    data_vars = {"velocity": ("point", np.asarray(velocity, dtype=np.float32), {"units": "mm/yr"})}
    for name in OPTIONAL_VARIABLES:
        if optional.get(name) is not None:
            data_vars[name] = ("point", np.asarray(optional[name], dtype=np.float32))
    coords = {"x": ("point", np.asarray(x, dtype=np.float64)), "y": ("point", np.asarray(y, dtype=np.float64))}
    if optional.get("displacement") is not None:
        data_vars["displacement"] = (("point", "time"), np.asarray(optional["displacement"], np.float32))
        coords["time"] = ("time", np.asarray(optional["time"], dtype="datetime64[ns]"))
    attrs = {
        "crs": CRS.from_user_input(crs).to_wkt(),
        "track": track or "",
        "sources": list(sources),
        "crs_declared": int(bool(crs_declared)),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def points_crs(points):
    """The pyproj CRS of a points dataset."""
    return CRS.from_wkt(points.attrs["crs"])


def points_lonlat(points):
    """Longitude and latitude (degrees) of every point."""
    to_lonlat = Transformer.from_crs(points_crs(points), WGS84, always_xy=True)
    return to_lonlat.transform(points["x"].values, points["y"].values)


def reproject_points(points, crs):
    """Return the points with ``x``/``y`` in another CRS (no-op when already there)."""
    crs = CRS.from_user_input(crs)
    if points_crs(points) == crs:
        return points
    x, y = Transformer.from_crs(points_crs(points), crs, always_xy=True).transform(
        points["x"].values, points["y"].values
    )
    moved = points.assign_coords(x=("point", x), y=("point", y))
    moved.attrs["crs"] = crs.to_wkt()
    return moved


def concat_points(parts):
    """Join point sets of one track and one CRS (adjacent bursts, several CSVs of one area).

    Parameters
    ----------
    parts : sequence of xarray.Dataset
        Points datasets with the same ``crs`` and ``track``.

    Returns
    -------
    xarray.Dataset
        Variables present in every part are kept; time series only where all parts share the dates.
    """
    if len(parts) == 1:
        return parts[0]
    crs_set = {CRS.from_wkt(p.attrs["crs"]) for p in parts}
    tracks = {p.attrs["track"] for p in parts}
    if len(crs_set) > 1 or len(tracks) > 1:
        raise ValueError("concat_points joins points of one CRS and one track only")
    keep = sorted(set.intersection(*(set(p.data_vars) for p in parts)))
    if "displacement" in keep and not all(np.array_equal(p["time"], parts[0]["time"]) for p in parts):
        keep.remove("displacement")
    trimmed = [p[keep] if "displacement" in keep else p[keep].drop_vars("time", errors="ignore") for p in parts]
    joined = xr.concat(trimmed, dim="point", data_vars="all", join="exact", combine_attrs="override")
    joined.attrs = dict(parts[0].attrs)
    joined.attrs["sources"] = [s for p in parts for s in p.attrs["sources"]]
    return joined


def describe_crs(points):
    """``EPSG:xxxx`` label of a points dataset's CRS."""
    return crs_label(points_crs(points))
