"""Raster outputs of a run's Zarr store (:mod:`defoscan.store`), written block by block in bounded memory.

:func:`write_cog_from_arrays` writes the Cloud-Optimised GeoTIFF that :func:`defoscan.outputs.write_cog` writes for
the same values, but never holds a band whole: windows aligned on the arrays' chunks are copied into a tiled,
sparse intermediate GeoTIFF, which GDAL's COG driver then converts, building the overviews from it block by block
under a bounded block cache. Memory is set by the chunk size, not by the map's area. Bands small enough to hold
(:data:`WHOLE_CELLS`) are read whole and written by ``write_cog`` itself.
"""

import os
import tempfile

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from defoscan.outputs import COG_OPTIONS, atomic_path, band_metadata, cog_profile, write_cog

WINDOW_CELLS = 2048  # target cells per side of a read window (rounded to whole chunks of the source arrays)
# Bands of at most this many cells in all (64 MB of float32) are read whole and written by write_cog directly: the
# same file, without the intermediate GeoTIFF (half the time of the block-by-block path on a 300 x 300 map).
WHOLE_CELLS = 16 * 1024 * 1024
GDAL_CACHE_MB = 256  # GDAL block cache while writing: GDAL's default, 5 % of the RAM, grows with the machine


def window_shape(values, window=None):
    """Rows and columns of the windows in which to read an array: whole chunks, about :data:`WINDOW_CELLS` a side.

    Parameters
    ----------
    values : array-like
        2-D; a Zarr array's ``chunks`` (a tuple of int) align the windows.
    window : int or tuple of int, optional
        Explicit ``(rows, columns)`` (an int for both), used as given.

    Returns
    -------
    tuple of int
    """
    if window is not None:
        rows, columns = (window, window) if np.isscalar(window) else window
        return int(rows), int(columns)
    chunks = getattr(values, "chunks", None)
    if not (isinstance(chunks, tuple) and len(chunks) == 2 and all(isinstance(c, int | np.integer) for c in chunks)):
        chunks = (WINDOW_CELLS, WINDOW_CELLS)  # numpy (no chunks), or dask's tuples of tuples
    return tuple(int(c) * max(1, WINDOW_CELLS // int(c)) for c in chunks)


def write_cog_from_arrays(path, bands, transform, crs, *, nodata=np.nan, tags=None, units=None, window=None):
    """Write bands as the Cloud-Optimised GeoTIFF of :func:`defoscan.outputs.write_cog`, block by block, atomically.

    Same creation options (:data:`defoscan.outputs.COG_OPTIONS`), band descriptions, units, colour
    interpretation, tags, nodata, CRS and transform; same pixels and overviews. The intermediate GeoTIFF (beside
    ``path``, hidden) is removed whether the writing succeeds or fails.

    Parameters
    ----------
    path : str
    bands : list of (str, array-like)
        Band description and 2-D values that slice (Zarr array, numpy array), all of one shape; written as
        float32.
    transform : affine.Affine
    crs : pyproj.CRS or str
    nodata : float
    tags : dict, optional
        Dataset tags (units, software).
    units : str or sequence of str, optional
        Band units: one for all bands or one per band.
    window : int or tuple of int, optional
        Rows and columns read at a time (per band); whole chunks of about 2048 cells a side by default
        (:func:`window_shape`). Peak memory is a few times one window of float32.
    """
    shape = tuple(bands[0][1].shape)
    if len(shape) != 2 or any(tuple(values.shape) != shape for _, values in bands):
        raise ValueError(f"bands must be 2-D arrays of one shape, got {[tuple(v.shape) for _, v in bands]}")
    height, width = shape
    if window is None and height * width * len(bands) <= WHOLE_CELLS:
        whole = [(name, np.asarray(values[...], dtype=np.float32)) for name, values in bands]
        return write_cog(path, whole, transform, crs, nodata=nodata, tags=tags, units=units)
    rows, columns = window_shape(bands[0][1], window)
    profile = cog_profile(width, height, len(bands), transform, crs, nodata)
    blocks = {key: value for key, value in profile.items() if key not in ("blocksize", "overview_resampling")}
    blocks.update(
        driver="GTiff",
        tiled=True,
        blockxsize=COG_OPTIONS["blocksize"],
        blockysize=COG_OPTIONS["blocksize"],
        interleave="band",
        photometric="minisblack",
        sparse_ok=True,  # all-nodata blocks (most of a country's map) are not written
        zlevel=1,  # an intermediate: fast deflate
    )
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    handle, intermediate = tempfile.mkstemp(
        prefix=f".{os.path.basename(os.fspath(path))}.", suffix=".blocks.tif", dir=directory
    )
    os.close(handle)
    try:  # the intermediate is removed after atomic_path has looked at a failure: it tells a full disk by it
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), atomic_path(path) as temporary:
            with rasterio.open(intermediate, "w", **blocks) as dst:
                band_metadata(dst, [name for name, _ in bands], units)
                dst.update_tags(**(tags or {}))
                for r0 in range(0, height, rows):
                    r1 = min(r0 + rows, height)
                    for c0 in range(0, width, columns):
                        c1 = min(c0 + columns, width)
                        for index, (_, values) in enumerate(bands, start=1):
                            block = np.asarray(values[r0:r1, c0:c1], dtype=np.float32)
                            dst.write(block, index, window=Window(c0, r0, c1 - c0, r1 - r0))
            rasterio.shutil.copy(intermediate, temporary, driver="COG", **COG_OPTIONS)
    finally:
        if os.path.exists(intermediate):
            os.remove(intermediate)
