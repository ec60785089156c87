"""Writing results: atomically (temporary name, then rename), reproducibly, and never half a directory.

A run stages every output in a hidden sibling directory of the output directory (``.OUT.partial-*``), holding the
output directory's lock (:mod:`defoscan.locking`), and puts the staged set in place of the old one only once all
of it is written, in one rename wherever that is safe (:func:`switch_in`); a failure removes the staging directory
and leaves the output directory as it was.
"""

import contextlib
import functools
import json
import os
import shutil
import sqlite3
import stat
import tempfile

import numpy as np
import pyogrio
import shapely
import shapely.affinity
from pyproj import CRS
from rasterio.enums import ColorInterp
from rasterio.io import MemoryFile

from defoscan.atomic import _UMASK, atomic_path, json_default, write_json  # noqa: F401 (write_json: re-exported)
from defoscan.crs import WGS84, straddles_antimeridian, unwrap_longitudes
from defoscan.errors import InputError
from defoscan.locking import STAGING_INFIX, output_lock

RECORD = "run.json"  # a run's record: moved in last when the files are moved in one by one (switch_in)

GEOJSON_DECIMALS = 7  # about 1 cm in longitude/latitude: RFC 7946 advises no more
GEOPACKAGE_VERSION = "1.2"  # GDAL >= 3.7 writes 1.4, which GDAL 3.6 "may only partially support"
FIXED_TIMESTAMP = "2000-01-01T00:00:00.000Z"  # in place of write times, so that outputs are reproducible
# The layer_styles table QGIS creates when it saves a style into a GeoPackage: the same columns and types.
LAYER_STYLES_TABLE = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  f_table_catalog TEXT(256),
  f_table_schema TEXT(256),
  f_table_name TEXT(256),
  f_geometry_column TEXT(256),
  styleName TEXT(30),
  styleQML TEXT,
  styleSLD TEXT,
  useAsDefault BOOLEAN,
  description TEXT,
  owner TEXT(30),
  ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)"""


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


STAGING = "the staging directory of its outputs"  # what a run keeps beside its output directory (check_run_dir)


def check_run_dir(path, beside=STAGING):
    """Refuse an output directory of a run that cannot be written, or beside which the run cannot work.

    :func:`check_writable_dir`, and for an existing directory its parent probed as well: a run stages its outputs
    in a hidden sibling (:func:`staged_directory`), a chunked run keeps its work directory there too, so a writable
    ``--out`` in a read-only directory (a mount point, say) would fail only once the work is done.

    Parameters
    ----------
    path : str or os.PathLike
    beside : str
        What the run keeps beside ``path``, for the message.

    Raises
    ------
    InputError
    """
    path = os.path.abspath(os.fspath(path))
    check_writable_dir(path)
    if os.path.isdir(path):  # else its nearest existing ancestor, the parent or above, was probed
        _probe_beside(path, beside)


def _probe_beside(path, beside):
    parent = os.path.dirname(path)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".defoscan-probe-", dir=parent))
    except OSError as err:
        raise InputError(path, _not_beside(path, beside, err)) from None


def _not_beside(path, beside, err):
    return (
        f"cannot create {beside} beside it: {os.path.dirname(path)} is not writable ({err.strerror}); make it "
        f"writable or give an --out in a writable directory, such as {os.path.join(path, 'run')}"
    )


def check_output_file(path, option="--out"):
    """Refuse an output file that cannot be written, before any work is done.

    A directory in its place is refused, and so is a directory to hold it that does not exist: a file output's
    directory is never created (an output directory, :func:`staged_directory`, is, with its parents).

    Parameters
    ----------
    path : str or os.PathLike
    option : str or None
        The option that named the file, for the message (None: a file the command names itself).

    Raises
    ------
    InputError
    """
    path = os.fspath(path)
    full = os.path.abspath(path)
    if os.path.isdir(full):
        wanted = f"{option} names the file to write" if option else "defoscan writes a file of that name"
        raise InputError(path, f"is a directory; {wanted}")
    directory = os.path.dirname(full)
    if not os.path.exists(directory):
        raise InputError(path, f"no such directory {directory} to write it in (create it first)")
    if not os.path.isdir(directory):
        raise InputError(path, f"cannot write it: {directory} is not a directory")
    check_writable_dir(directory)


@contextlib.contextmanager
def staged_directory(out_dir, *, wait=False):
    """Stage outputs in a temporary directory beside ``out_dir``; put them in its place only if the block succeeds.

    The output directory's lock (:func:`defoscan.locking.output_lock`) is held meanwhile: taking it removes what
    killed runs left, and another run into ``out_dir`` is refused (or waited for, with ``wait``). The staged set
    takes the place of the old one in one step (:func:`switch_in`).

    Yields
    ------
    str
        The staging directory to write into.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    check_run_dir(out_dir)
    with output_lock(out_dir, wait=wait):
        parent = os.path.dirname(out_dir)
        existing = parent
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        try:
            os.makedirs(parent, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}{STAGING_INFIX}", dir=parent)
        except OSError as err:
            raise InputError(out_dir, _not_beside(out_dir, STAGING, err)) from None
        succeeded = False
        try:
            yield staging
            switch_in(staging, out_dir)
            succeeded = True
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # after a swap: the old set
            if not succeeded:  # remove the parents this run created, so a failure leaves the disk as it was
                created = parent
                while created != existing and not os.listdir(created):
                    os.rmdir(created)
                    created = os.path.dirname(created)


def switch_in(staging, out_dir):
    """Put the directory ``staging`` in the place of ``out_dir``: in one rename wherever that is safe.

    - ``out_dir`` absent: ``staging`` is renamed to it.
    - ``out_dir`` holding only names the staged set has too (an earlier run's outputs, each replaced): the two
      directories are exchanged in one ``renameat2(RENAME_EXCHANGE)`` (Linux); ``staging`` then holds the old
      set, for the caller to remove. A reader, or a kill, sees the old set or the new one, never a mix.
    - Otherwise (other files in ``out_dir``, which must be kept; a symbolic link, a mount point, the working
      directory; no ``renameat2`` on this system or file system): the files are moved in one by one, the run
      record :data:`RECORD` removed first and moved in last, so that a directory with a run record is always a
      whole set (`defoscan report` refuses one without).

    The new ``out_dir`` keeps the old one's permissions (a new one gets the umask's).
    """
    staging = os.path.abspath(staging)
    out_dir = os.path.abspath(out_dir)
    if not os.path.lexists(out_dir):
        os.chmod(staging, 0o777 & ~_UMASK)
        with contextlib.suppress(OSError):  # created meanwhile by someone else: moved in below
            os.rename(staging, out_dir)
            return
    names = sorted(os.listdir(staging))
    if _exchangeable(staging, out_dir, names):
        mode = stat.S_IMODE(os.stat(out_dir).st_mode)
        os.chmod(staging, mode)
        if _exchange(staging, out_dir):
            return
    os.makedirs(out_dir, exist_ok=True)
    if RECORD in names:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, RECORD))  # from here on the old set is unfinished, and says so
    for name in sorted(names, key=lambda n: n == RECORD):
        os.replace(os.path.join(staging, name), os.path.join(out_dir, name))


def _exchangeable(staging, out_dir, names):
    """Whether ``out_dir`` can be exchanged whole for ``staging``: nothing of it would be lost or pulled away."""
    if os.path.islink(out_dir) or not os.path.isdir(out_dir) or os.path.ismount(out_dir):
        return False
    if not set(os.listdir(out_dir)) <= set(names):
        return False
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:
        return False
    real = os.path.realpath(out_dir)
    return here != real and not here.startswith(real + os.sep)


def _exchange(a, b):
    """Exchange the paths ``a`` and ``b`` atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where it cannot."""
    libc = _libc()
    if libc is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    # Any failure (EINVAL: not on this file system, ENOSYS: not in this kernel, EXDEV, EBUSY, ...): moved instead.
    return libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@functools.cache
def _libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    except (OSError, AttributeError, TypeError):
        return None
    return libc


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


def band_metadata(dst, names, units):
    """Describe the bands of an open dataset: names, units and a colour interpretation no viewer takes for RGB.

    Every band is a separate measurement (a track, say), not a colour: the first is grey, the others undefined,
    so that three or four bands are never drawn as red, green, blue (and alpha).

    Parameters
    ----------
    dst : rasterio.io.DatasetWriter
    names : sequence of str
        Band descriptions.
    units : str or sequence of str or None
        One unit for all bands, one per band, or none (bands without a unit).
    """
    for index, name in enumerate(names, start=1):
        dst.set_band_description(index, name)
    if units is not None:
        dst.units = (units,) * len(names) if isinstance(units, str) else tuple(units)
    dst.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * (len(names) - 1)


def write_cog(path, bands, transform, crs, *, nodata=np.nan, tags=None, units=None):
    """Write bands as a Cloud-Optimised GeoTIFF (deflate, predictor for floats, overviews), atomically.

    The bands are held in memory; :func:`defoscan.store_outputs.write_cog_from_arrays` writes the same file block
    by block from a store.

    Parameters
    ----------
    path : str
    bands : list of (str, numpy.ndarray)
        Band description and 2-D values; written as float32 (point counts too: exact to 2**24, and GDAL builds
        the same overviews of them in memory and block by block, which it does not for uint32).
    transform : affine.Affine
    crs : pyproj.CRS or str
    nodata : float
        NaN by default; 0 for point counts (a cell without points has no count to show).
    tags : dict, optional
        Dataset tags (units, software).
    units : str or sequence of str, optional
        Band units (GDAL's unit type, which QGIS and ``gdalinfo`` show): one for all bands or one per band.
    """
    height, width = bands[0][1].shape
    profile = cog_profile(width, height, len(bands), transform, crs, nodata)
    # Encoded in memory (the same bytes), then written by Python: a full disk fails with its errno, where libtiff
    # would print its own lines on stderr beside the one line of the command line.
    with MemoryFile() as memory:
        with memory.open(**profile) as dst:
            for index, (_, values) in enumerate(bands, start=1):
                dst.write(np.asarray(values, dtype=np.float32), index)
            band_metadata(dst, [name for name, _ in bands], units)
            dst.update_tags(**(tags or {}))
        memory.seek(0)
        encoded = memory.read()
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(encoded)


def write_geojson(path, frame):
    """Write detections as an RFC 7946 FeatureCollection in longitude/latitude, atomically.

    Exterior rings run anticlockwise (right-hand rule), coordinates are rounded to 7 decimals, a detection across
    the antimeridian is cut there (:func:`cut_at_antimeridian`), there is no ``crs`` member; an empty frame gives
    an empty FeatureCollection. The bytes depend only on the detections.
    """
    geographic = frame.to_crs(WGS84)
    features = []
    for row, geometry in zip(geographic.drop(columns="geometry").to_dict("records"), geographic.geometry, strict=True):
        # Orient after snapping: set_precision rebuilds rings and may turn them clockwise.
        geometry = cut_at_antimeridian(geometry)
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
        json.dump(collection, handle, indent=None, separators=(",", ":"), default=json_default)
        handle.write("\n")


def cut_at_antimeridian(geometry):
    """A longitude/latitude (Multi)Polygon whose rings cross ±180 degrees, as the MultiPolygon of its parts either
    side (RFC 7946, section 3.1.9); any other geometry as it is.

    Reprojected naively, a ring across the antimeridian jumps from about 180 to about -180 and back: a polygon
    around the globe the other way, which GEOS cannot snap ("side location conflict"). Its longitudes are made
    continuous (:func:`defoscan.crs.unwrap_longitudes`), the ring cut at 180, and the part east of it shifted back
    by -360.

    Parameters
    ----------
    geometry : shapely.Polygon or shapely.MultiPolygon or None
        In longitude/latitude degrees.

    Returns
    -------
    shapely geometry
    """
    if geometry is None or geometry.is_empty:
        return geometry
    west, south, east, north = geometry.bounds
    if not straddles_antimeridian(west, east):
        return geometry
    continuous = shapely.transform(geometry, lambda xy: np.column_stack([unwrap_longitudes(xy[:, 0], True), xy[:, 1]]))
    western = shapely.clip_by_rect(continuous, 0.0, south, 180.0, north)
    eastern = shapely.affinity.translate(shapely.clip_by_rect(continuous, 180.0, south, 360.0, north), xoff=-360.0)
    parts = [p for part in (western, eastern) for p in shapely.get_parts(part) if p.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts)


def write_geopackage(path, frame, layer="detections", style=None):
    """Write detections as a GeoPackage layer in the working CRS, atomically (empty layer if no detections).

    The file is GeoPackage 1.2 (:data:`GEOPACKAGE_VERSION`), which GDAL 3.6 and older read without warning (GDAL
    3.7 and later write 1.4 by default). With ``style``, the QGIS style is stored as the layer's default in the
    ``layer_styles`` table, so that QGIS opens the layer styled.

    Parameters
    ----------
    path : str
    frame : geopandas.GeoDataFrame
    layer : str
    style : str, optional
        QGIS style (QML text, :func:`defoscan.styles.detections_qml`).
    """
    multi = frame.copy()
    multi["geometry"] = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in multi.geometry]
    # GeoPackage stamps the write time into gpkg_contents; a fixed stamp keeps outputs byte-identical across runs.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIMESTAMP})
    try:
        with atomic_path(path) as temporary:
            pyogrio.write_dataframe(
                multi,
                temporary,
                layer=layer,
                driver="GPKG",
                geometry_type="MultiPolygon",
                dataset_options={"VERSION": GEOPACKAGE_VERSION},
            )
            if style is not None:
                add_layer_style(temporary, layer, style)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def add_layer_style(path, layer, qml, name=None):
    """Store ``qml`` as the default style of ``layer`` in a GeoPackage's ``layer_styles`` table.

    The table is the one QGIS creates when it saves a style into the GeoPackage ("Save as default"), registered in
    ``gpkg_contents`` as an attributes table as QGIS registers it; its time stamp is fixed so that the file
    depends only on its content.

    Parameters
    ----------
    path : str
        An existing GeoPackage holding ``layer``.
    layer : str
    qml : str
        QGIS style (QML text).
    name : str, optional
        Style name; ``layer`` by default.
    """
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        row = connection.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        geometry = row[0] if row else None
        connection.execute(LAYER_STYLES_TABLE)
        connection.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, last_change)"
            " VALUES ('layer_styles', 'attributes', 'layer_styles', '', ?)",
            (FIXED_TIMESTAMP,),
        )
        connection.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName,"
            " styleQML, styleSLD, useAsDefault, description, owner, ui, update_time)"
            " VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', NULL, ?)",
            (layer, geometry, name or layer, qml, f"defoscan style of {layer}", FIXED_TIMESTAMP),
        )


def _plain(row):
    return {key: json_default(value) if isinstance(value, np.generic) else value for key, value in row.items()}
