"""``--mask FILE``: the cells of the grid to keep, from polygons or a raster.

A mask says where the map is to be trusted or looked at: polygons (GeoJSON, GeoPackage, Shapefile, FlatGeobuf; any
CRS) keep the cells whose centre lies inside them; a raster (GeoTIFF; any CRS) keeps the cells where its value is
non-zero and not no-data, read by nearest neighbour at the cells' centres, as MintPy's ``maskTempCoh`` files mean
it. Cells outside the mask lose their velocity and points before gap filling and detection, so no detection lies
there. The mask is made for any rectangle of the global grid (:func:`keep_cells`), so a chunked run applies it chunk
by chunk with the same result.
"""

import os

import numpy as np
import rasterio
import rasterio.warp
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling

from defoscan.errors import InputError

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")
RASTER_SUFFIXES = (".tif", ".tiff")


def read_mask(path, crs):
    """Load a mask file once, in the working CRS.

    Parameters
    ----------
    path : str or os.PathLike
        Polygons or a raster (module notes).
    crs : pyproj.CRS or str
        The working CRS of the grid it will be applied to.

    Returns
    -------
    dict
        ``kind`` (``"polygons"`` or ``"raster"``), ``path`` and what :func:`keep_cells` needs: the polygons in the
        working CRS, or the raster's path.

    Raises
    ------
    InputError
        When the file is missing, of an unknown kind, unreadable, without a CRS, or holds no polygon.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "mask file not found")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in VECTOR_SUFFIXES:
        return {"kind": "polygons", "path": path, "geometries": _polygons(path, crs)}
    if suffix in RASTER_SUFFIXES:
        try:
            with rasterio.open(path) as src:
                if src.crs is None:
                    raise InputError(path, "mask raster has no CRS")
        except rasterio.errors.RasterioIOError as error:
            raise InputError(path, f"cannot read the mask raster ({error})") from None
        return {"kind": "raster", "path": path}
    raise InputError(
        path,
        f"unknown mask format {suffix or '(no suffix)'}; use polygons ({', '.join(VECTOR_SUFFIXES)}) "
        f"or a raster ({', '.join(RASTER_SUFFIXES)})",
    )


def _polygons(path, crs):
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as error:  # pyogrio raises several types for unreadable files
        raise InputError(path, f"cannot read the mask polygons ({str(error).splitlines()[0]})") from None
    if frame.crs is None:
        raise InputError(path, "mask polygons have no CRS")
    frame = frame[frame.geometry.notna() & frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise InputError(path, "the mask file holds no polygon")
    return list(frame.to_crs(CRS.from_user_input(crs)).geometry)


def keep_cells(mask, transform, shape, crs):
    """Which cells of a rectangle of the grid the mask keeps.

    Parameters
    ----------
    mask : dict
        From :func:`read_mask`.
    transform : affine.Affine
        The rectangle's pixel-corner geotransform (north-up).
    shape : (int, int)
        Rows and columns.
    crs : pyproj.CRS or str
        The working CRS.

    Returns
    -------
    numpy.ndarray of bool
        True where the cell is kept.
    """
    height, width = (int(v) for v in shape)
    if mask["kind"] == "polygons":
        # Cells whose centre lies in a polygon (as rasterio rasterizes), independent of the rectangle's extent;
        # tested with shapely, which unlike rasterio's in-memory datasets warns of nothing in worker threads.
        cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        x, y = transform * (cols, rows)
        area = shapely.union_all(mask["geometries"])
        shapely.prepare(area)
        return shapely.contains_xy(area, x, y)
    values = np.full((height, width), np.nan, dtype=np.float64)
    with rasterio.open(mask["path"]) as src:
        band = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        rasterio.warp.reproject(
            band,
            values,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=Affine(*transform[:6]),
            dst_crs=CRS.from_user_input(crs),
            dst_nodata=np.nan,
            resampling=Resampling.nearest,
        )
    return np.isfinite(values) & (values != 0)
