"""defoscan: find ground deformation in sparse satellite InSAR velocity maps.

The Python API (docs/API.md): :func:`defoscan.read` reads inputs into xarray datasets; :func:`defoscan.detect` runs
the pipeline on files or datasets and gives a :class:`defoscan.DetectionResult` (the maps as xarray, the detections
as a GeoDataFrame), writing nothing unless asked. They are imported on first use, so that ``import defoscan`` and
the command line start quickly.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("defoscan")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["DetectionResult", "ReadOptions", "__version__", "detect", "read"]


def __getattr__(name):
    if name in ("DetectionResult", "ReadOptions", "detect", "read"):
        from defoscan import api

        return getattr(api, name)
    raise AttributeError(f"module 'defoscan' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
