"""Writing results: atomically (temporary name, then rename), reproducibly, and never half a directory.

A run stages every output in a hidden sibling directory of the output directory and moves the files into place
only once all of them are written; a failure removes the staging directory and leaves the output directory as it
was.
"""

import contextlib
import json
import os
import shutil
import tempfile

import numpy as np
import pyogrio
import rasterio
import shapely
from pyproj import CRS

from defoscan.crs import WGS84
from defoscan.errors import InputError

GEOJSON_DECIMALS = 7  # about 1 cm in longitude/latitude: RFC 7946 advises no more


def check_writable_dir(path):
    """Refuse an output directory that cannot be created or written, before any work is done.

    The nearest existing ancestor is probed by creating (and removing) a directory in it: permission bits alone
    do not tell (root ignores them, read-only mounts honour none).

    Raises
    ------
    InputError
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(path, "output path exists and is not a directory")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(path, f"cannot create the output directory: {existing} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".defoscan-probe-", dir=existing))
    except OSError as err:
        raise InputError(path, f"output directory is not writable ({err.strerror})") from None


@contextlib.contextmanager
def staged_directory(out_dir):
    """Stage outputs in a temporary directory beside ``out_dir``; move them in only if the block succeeds.

    Yields
    ------
    str
        The staging directory to write into.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    check_writable_dir(out_dir)
    parent = os.path.dirname(out_dir)
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.partial-", dir=parent)
    except OSError as err:
        raise InputError(out_dir, f"output directory is not writable ({err.strerror})") from None
    succeeded = False
    try:
        yield staging
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
        succeeded = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not succeeded:  # remove the parents this run created, so a failure leaves the disk as it was
            created = parent
            while created != existing and not os.listdir(created):
                os.rmdir(created)
                created = os.path.dirname(created)


def atomic_path(path):
    """Context manager yielding a temporary path beside ``path``, renamed to ``path`` on success."""
    return _AtomicPath(os.fspath(path))


class _AtomicPath(contextlib.AbstractContextManager):
    def __init__(self, path):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        suffix = os.path.splitext(path)[1]
        handle, self.temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
        os.close(handle)
        os.remove(self.temporary)  # writers (GDAL) want to create the file themselves

    def __enter__(self):
        return self.temporary

    def __exit__(self, kind, value, traceback):
        if kind is None:
            os.replace(self.temporary, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.temporary)
        return False


# One place for the GeoTIFF layout of every raster output (write_cog, and store_outputs writing block by block):
# GDAL COG driver creation options. BIGTIFF=IF_SAFER: a country's map may pass 4 GiB; small ones stay classic TIFF.
COG_OPTIONS = {
    "compress": "deflate",
    "predictor": 3,
    "blocksize": 512,
    "overview_resampling": "average",
    "bigtiff": "IF_SAFER",
}


def cog_profile(width, height, count, transform, crs, nodata=np.nan):
    """The rasterio profile of a float32 Cloud-Optimised GeoTIFF with :data:`COG_OPTIONS`."""
    return {
        "driver": "COG",
        "width": int(width),
        "height": int(height),
        "count": int(count),
        "dtype": "float32",
        "crs": CRS.from_user_input(crs).to_wkt(),
        "transform": transform,
        "nodata": nodata,
        **COG_OPTIONS,
    }


def write_cog(path, bands, transform, crs, *, nodata=np.nan, tags=None):
    """Write bands as a Cloud-Optimised GeoTIFF (deflate, predictor for floats, overviews), atomically.

    The bands are held in memory; :func:`defoscan.store_outputs.write_cog_from_arrays` writes the same file block
    by block from a store.

    Parameters
    ----------
    path : str
    bands : list of (str, numpy.ndarray)
        Band description and 2-D values; written as float32.
    transform : affine.Affine
    crs : pyproj.CRS or str
    nodata : float
    tags : dict, optional
        Dataset tags (units, software).
    """
    height, width = bands[0][1].shape
    profile = cog_profile(width, height, len(bands), transform, crs, nodata)
    with atomic_path(path) as temporary, rasterio.open(temporary, "w", **profile) as dst:
        for index, (name, values) in enumerate(bands, start=1):
            dst.write(np.asarray(values, dtype=np.float32), index)
            dst.set_band_description(index, name)
        dst.update_tags(**(tags or {}))


def write_geojson(path, frame):
    """Write detections as an RFC 7946 FeatureCollection in longitude/latitude, atomically.

    Exterior rings run anticlockwise (right-hand rule), coordinates are rounded to 7 decimals, there is no
    ``crs`` member; an empty frame gives an empty FeatureCollection. The bytes depend only on the detections.
    """
    geographic = frame.to_crs(WGS84)
    features = []
    for row, geometry in zip(geographic.drop(columns="geometry").to_dict("records"), geographic.geometry, strict=True):
        # Orient after snapping: set_precision rebuilds rings and may turn them clockwise.
        geometry = shapely.orient_polygons(shapely.set_precision(geometry, 10.0**-GEOJSON_DECIMALS))
        features.append(
            {
                "type": "Feature",
                "id": int(row["id"]),
                "properties": _plain(row),
                "geometry": shapely.geometry.mapping(geometry),
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        json.dump(collection, handle, indent=None, separators=(",", ":"), default=_json_default)
        handle.write("\n")


def write_geopackage(path, frame, layer="detections"):
    """Write detections as a GeoPackage layer in the working CRS, atomically (empty layer if no detections)."""
    multi = frame.copy()
    multi["geometry"] = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in multi.geometry]
    # GeoPackage stamps the write time into gpkg_contents; a fixed stamp keeps outputs byte-identical across runs.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})
    try:
        with atomic_path(path) as temporary:
            pyogrio.write_dataframe(multi, temporary, layer=layer, driver="GPKG", geometry_type="MultiPolygon")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def write_json(path, document):
    """Write a JSON document (sorted keys, indented), atomically."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True, default=_json_default)
        handle.write("\n")


def _plain(row):
    return {key: _json_default(value) if isinstance(value, np.generic) else value for key, value in row.items()}


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
