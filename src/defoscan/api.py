"""The Python API: what a Jupyter user calls, re-exported by the package (``defoscan.read``, ``defoscan.detect``).

>>> import defoscan
>>> sorted(defoscan.__all__)
['DetectionResult', 'ReadOptions', '__version__', 'detect', 'read']
"""

import os

from defoscan.io import ReadOptions, read_inputs
from defoscan.pipeline import detect
from defoscan.result import DetectionResult

__all__ = ["DetectionResult", "ReadOptions", "detect", "read"]


def read(inputs, options=None, **fields):
    """Read input files as the pipeline reads them: one xarray dataset per track.

    Parameters
    ----------
    inputs : str, os.PathLike or sequence of them
        Point tables (CSV/TSV/Parquet, EGMS zip), vector points, MintPy HDF5 or GeoTIFF rasters of one area.
    options : defoscan.io.ReadOptions, optional
        How to read them; or give its fields as keywords (``units="m/yr"``, ``min_coherence=0.7``, ...).
    **fields
        :class:`defoscan.io.ReadOptions` fields, when ``options`` is not given.

    Returns
    -------
    list of xarray.Dataset
        Points (dimension ``point``: projected ``x``/``y``, ``velocity`` in mm/yr; :mod:`defoscan.points`) or
        rasters (``velocity(y, x)`` with its CRS; :mod:`defoscan.raster`), one per viewing geometry.
        :func:`detect` takes them in place of files.

    Examples
    --------
    >>> import defoscan
    >>> from defoscan.synth.scene import make_scene, write_scene
    >>> points, truths, info = make_scene(3, shape=(96, 96), cell_size=50.0)
    >>> csv, _, _ = write_scene(str(getfixture("tmp_path")), "scene", points, truths, info)
    >>> (track,) = defoscan.read(csv)
    >>> track["velocity"].attrs["units"], track.sizes["point"] > 100
    ('mm/yr', True)
    >>> result = defoscan.detect([track], detector="threshold")
    >>> result.velocity.dims, result.velocity.rio.crs.to_epsg() == result.detections.crs.to_epsg()
    (('track', 'y', 'x'), True)
    """
    if options is not None and fields:
        raise TypeError("give ReadOptions or its fields as keywords, not both")
    paths = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    return read_inputs([os.fspath(p) for p in paths], options or ReadOptions(**fields))
