"""Velocity rasters: GeoTIFF / Cloud-Optimised GeoTIFF (any GDAL raster) in any CRS, with nodata."""

import numpy as np
import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioIOError

from defoscan.crs import crs_label, degrees_out_of_range
from defoscan.errors import InputError
from defoscan.io.egms import parse_egms_name
from defoscan.io.filters import FillValues, cropped_transform, filter_raster_cells
from defoscan.io.units import velocity_unit
from defoscan.raster import invertible, make_raster


def read_geotiff(path, options):
    """Read the velocity band of a raster file.

    The band named ``velocity`` (band description) is used if there is one, else band 1. Units come from
    ``--units``, else the band's unit or a ``units`` tag, else mm/yr. No data: the nodata tag (or mask band) and
    ``--nodata``; a raster declaring neither has its fill values (-9999, -32768, ...:
    :data:`defoscan.io.filters.FILL_VALUES`) read as no data, with a warning.

    Parameters
    ----------
    path : str
    options : defoscan.io.options.ReadOptions

    Returns
    -------
    xarray.Dataset
    """
    if options.min_coherence is not None:
        raise InputError(path, "--min-coherence is not supported for GeoTIFF rasters (they carry no coherence)")
    try:
        with rasterio.open(path) as src:
            band = _velocity_band(src)
            values = src.read(band, masked=True).astype(np.float64)
            crs = src.crs
            transform = src.transform
            declared = src.units[band - 1] or src.tags(band).get("units") or src.tags().get("units")
            # A nodata tag, a mask band or an alpha band say where the data are; without any, fills are guessed.
            has_nodata = src.nodata is not None or src.mask_flag_enums[band - 1] != [MaskFlags.all_valid]
    except RasterioIOError as err:
        raise InputError(path, f"corrupt or unreadable raster ({err})") from None
    _check_transform(path, transform)
    if crs is None:
        if not options.crs:
            raise InputError(path, "the raster has no CRS; pass --crs")
        crs = rasterio.crs.CRS.from_user_input(options.crs)
    _check_placed(path, crs, transform, values.shape)
    unit = velocity_unit(path, options.units, declared)
    raw = values.filled(np.nan)
    fills = FillValues(path, options, declared=has_nodata)
    raw[fills.mask(raw)] = np.nan
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing value is invalid, dropped below
        velocity = raw * unit.factor
    height, width = velocity.shape
    x = transform.c + transform.a * (np.arange(width) + 0.5)
    y = transform.f + transform.e * (np.arange(height) + 0.5)
    counts, window = filter_raster_cells(path, velocity, options, x=x, y=y, crs=crs.to_wkt(), unit=unit, fills=fills)
    velocity, transform = velocity[window], cropped_transform(transform, window)
    track = (parse_egms_name(path) or {}).get("track")
    raster = make_raster(velocity, transform, crs.to_wkt(), track=track, sources=[path])
    raster.attrs.update(counts)
    return raster


def _check_transform(path, transform):
    """Refuse a geotransform that places no grid: none (GDAL's identity), not finite, a pixel size of 0, rotated
    or south-up."""
    if transform.is_identity:
        raise InputError(path, "the raster is not georeferenced (no geotransform); georeference it first")
    shown = ", ".join(f"{value:g}" for value in transform.to_gdal())
    if not np.isfinite(transform.to_gdal()).all():
        raise InputError(path, f"the raster's geotransform is not finite ({shown})")
    if transform.a == 0 or transform.e == 0:
        raise InputError(path, f"the raster's pixel size is 0 (geotransform {shown})")
    if not invertible(transform):
        raise InputError(path, f"the raster's pixels are degenerate, their geotransform cannot be inverted ({shown})")
    if transform.b != 0 or transform.d != 0 or transform.e > 0:
        raise InputError(path, "rotated or south-up rasters are not supported; warp it north-up first")


def _check_placed(path, crs, transform, shape):
    """Refuse a CRS that is no map of the Earth (vertical, engineering) and a geographic grid beyond the degrees."""
    label = crs_label(crs.to_wkt())
    if not (crs.is_projected or crs.is_geographic):
        raise InputError(path, f"the raster's CRS ({label}) is neither projected nor geographic: no place on Earth")
    if crs.is_geographic:
        xs = transform.c + transform.a * np.array([0, shape[1]])
        ys = transform.f + transform.e * np.array([0, shape[0]])
        out = degrees_out_of_range(xs, ys)
        if out is not None:
            name, value, low, high = out
            raise InputError(
                path,
                f"the raster's geotransform puts it at {name} {value:g}, out of [{low:g}, {high:g}] for its CRS "
                f"{label} in degrees; are its coordinates projected?",
            )


def _velocity_band(src):
    for index, description in enumerate(src.descriptions, start=1):
        if description and description.strip().lower() in ("velocity", "mean_velocity", "vel"):
            return index
    return 1
