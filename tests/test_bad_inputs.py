"""Every bundled format with its header fields mutated (issue 23): a run, or one line and exit status 2.

Each reader gets a small valid file of its format with one header field (a geotransform term, a CRS, a MintPy
attribute, a column name or its values, an EGMS XML element) set to a wrong value. The cases known to be wrong
must give exit status 2 and one line on stderr naming the file, no traceback, nothing in the output directory;
the property test draws fields and values at random, and any of them must give either a complete run or that
one line.
"""

import html
import json
import os
import re
import struct
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import h5py
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_villages
from defoscan.cli import main

BASELINE = ["--detector", "threshold"]  # the inputs are under test, not the bundled model
EGMS = "EGMS_L2b_022_0845_IW2_VV_2020_2024_1"
TRANSFORM = (100.0, 0.0, 300_000.0, 0.0, -100.0, 4_290_000.0)  # UTM 33N, near Ustica
RNG = np.random.default_rng(0)
VELOCITY = RNG.normal(0.0, 2.0, (16, 16)).astype(np.float32)


# --- one small valid file of each format, a header field replaced ------------------------------------------------


def geotiff(directory, transform=TRANSFORM, crs="EPSG:32633", shape=None, nodata=None, units=None):
    """A 16 x 16 GeoTIFF; ``transform`` None writes none; ``shape`` patches the header's ImageWidth/ImageLength."""
    path = Path(directory) / "velocity.tif"
    georeferencing = {} if transform is None else {"transform": Affine(*transform)}
    profile = {"driver": "GTiff", "width": 16, "height": 16, "count": 1, "dtype": "float32", "nodata": nodata}
    with rasterio.open(path, "w", crs=crs, **profile, **georeferencing) as dst:
        dst.write(VELOCITY, 1)
        if units is not None:
            dst.update_tags(units=units)
    if shape is not None:
        _patch_tiff_tags(path, {257: shape[0], 256: shape[1]})
    return path


def _patch_tiff_tags(path, values):
    """Set short or long tags of a classic little-endian TIFF's first directory in place."""
    data = bytearray(path.read_bytes())
    (directory,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, directory)
    for entry in range(directory + 2, directory + 2 + 12 * count, 12):
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in values:
            struct.pack_into("<H" if kind == 3 else "<I", data, entry + 8, values[tag])
    path.write_bytes(bytes(data))


def mintpy(directory, shape=(16, 16), **attrs):
    """A geocoded MintPy velocity.h5 (lon/lat, 0.001 degree pixels); an attribute given None is left out."""
    path = Path(directory) / "velocity.h5"
    header = {"X_FIRST": "13.1", "Y_FIRST": "38.75", "X_STEP": "0.001", "Y_STEP": "-0.001", "UNIT": "m/year"}
    header.update({"WIDTH": str(shape[1]), "LENGTH": str(shape[0]), **attrs})
    with h5py.File(path, "w") as handle:
        handle["velocity"] = np.resize(VELOCITY / 1000.0, shape)
        for key, value in header.items():
            if value is not None:
                handle.attrs[key] = value
    return path


def _points():
    lon, lat = np.meshgrid(13.1 + 0.001 * np.arange(16), 38.7 + 0.001 * np.arange(16))
    return {"longitude": lon.ravel(), "latitude": lat.ravel(), "velocity": VELOCITY.ravel().astype(np.float64)}


def table(directory, suffix=".csv", rename=None, **columns):
    """A points table (CSV or Parquet) of 256 points; ``columns`` replace a column's values, ``rename`` its name."""
    frame = pd.DataFrame({**_points(), **columns}).rename(columns=rename or {})
    path = Path(directory) / f"points{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def egms(directory, xml=None, **columns):
    """An EGMS L2b zip: its CSV (pid, easting, northing, mean_velocity in EPSG:3035) and XML metadata."""
    x, y = np.meshgrid(4_598_600.0 + 20 * np.arange(16), 1_739_700.0 + 20 * np.arange(16))
    frame = pd.DataFrame(
        {"pid": [f"p{k}" for k in range(x.size)], "easting": x.ravel(), "northing": y.ravel()}
        | {"mean_velocity": VELOCITY.ravel().astype(np.float64)}
        | columns
    )
    xml = "<BURST><product_level>L2b</product_level><track>22</track></BURST>" if xml is None else xml
    path = Path(directory) / f"{EGMS}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{EGMS}.csv", frame.to_csv(index=False))
        archive.writestr(f"{EGMS}.xml", xml)
    return path


def vector(directory, crs="EPSG:4326", geometry=None, **columns):
    """A GeoPackage of 256 point features with a velocity attribute."""
    points = _points()
    geometry = shapely.points(points["longitude"], points["latitude"]) if geometry is None else geometry
    frame = gpd.GeoDataFrame(geometry=geometry, crs=crs)
    for name, values in {"velocity": points["velocity"], **columns}.items():
        frame[name] = values
    path = Path(directory) / "points.gpkg"
    frame.to_file(path, layer="points")
    return path


# --- running the command line -------------------------------------------------------------------------------------


def run(path, directory, capsys, *options):
    """``defoscan detect`` on one file: (exit status, stderr, output directory)."""
    out = Path(directory) / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", *BASELINE, str(path), "--out", str(out), *options])
    return exit_info.value.code, capsys.readouterr().err, out


def assert_one_line(status, err, path, out):
    """Exit 2 and one line on stderr naming the file; no traceback; nothing in (or beside) the output directory."""
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"defoscan: error: {path}: "), lines[0]
    assert not out.exists()
    assert not [name for name in os.listdir(out.parent) if name.startswith(".out.")]
    return lines[0]


# --- the known-bad headers: one case each -------------------------------------------------------------------------

nan, inf = float("nan"), float("inf")
CASES = {
    # GeoTIFF geotransform and CRS
    "geotiff pixel width 0": (
        geotiff,
        {"transform": (0.0, 0, 300_000, 0, -100, 4_290_000)},
        "not georeferenced|pixel size is 0",
    ),
    "geotiff pixel height 0": (geotiff, {"transform": (100.0, 0, 300_000, 0, 0.0, 4_290_000)}, "pixel size is 0"),
    "geotiff NaN origin": (geotiff, {"transform": (100.0, 0, nan, 0, -100, 4_290_000)}, "geotransform is not finite"),
    "geotiff NaN pixel": (geotiff, {"transform": (nan, 0, 300_000, 0, -100, 4_290_000)}, "geotransform is not finite"),
    "geotiff no geotransform": (geotiff, {"transform": None}, "not georeferenced"),
    "geotiff rotated": (geotiff, {"transform": (100.0, 5.0, 300_000, 0, -100, 4_290_000)}, "rotated or south-up"),
    "geotiff a millionth of a cell": (
        geotiff,
        {"transform": (1e-9, 0, 300_000, 0, -1e-9, 4_290_000)},
        "covers no cell",
    ),
    "geotiff huge pixels": (geotiff, {"transform": (1e300, 0, 300_000, 0, -1e300, 4_290_000)}, "degenerate"),
    "geotiff zero width": (geotiff, {"shape": (16, 0)}, "corrupt or unreadable"),
    "geotiff zero height": (geotiff, {"shape": (0, 16)}, "corrupt or unreadable"),
    "geotiff metres as degrees": (geotiff, {"crs": "EPSG:4326"}, r"out of \[-90, 90\]"),
    "geotiff engineering CRS": (geotiff, {"crs": 'LOCAL_CS["local",UNIT["metre",1]]'}, "neither projected nor"),
    "geotiff CRS of another country": (geotiff, {"crs": "EPSG:28992"}, "puts the data at latitude 85.3"),  # issue 24
    # MintPy attributes
    "mintpy X_STEP abc": (mintpy, {"X_STEP": "abc"}, "mintpy attribute x_step is 'abc', not a number"),
    "mintpy X_STEP 0": (mintpy, {"X_STEP": 0}, "mintpy attribute x_step is 0: a pixel size cannot be 0"),
    "mintpy Y_FIRST nan": (mintpy, {"Y_FIRST": "nan"}, "not a finite number"),
    "mintpy WIDTH other": (mintpy, {"WIDTH": "17"}, "but 'velocity' has 16 columns"),
    "mintpy EPSG unknown": (mintpy, {"EPSG": "999999"}, "not an epsg code proj knows"),
    "mintpy EPSG vertical": (mintpy, {"EPSG": "5703"}, "not a map crs"),
    "mintpy projected without EPSG": (mintpy, {"X_FIRST": "300000", "X_STEP": "100"}, "needs its epsg attribute"),
    "mintpy empty velocity": (mintpy, {"shape": (0, 16)}, "'velocity' is empty"),
    # tables: coordinates and values
    "csv NaN coordinates": (table, {"longitude": nan, "latitude": nan}, "no row has finite coordinates"),
    "csv infinite coordinates": (table, {"longitude": inf}, "no row has finite coordinates"),
    "csv text longitude": (table, {"longitude": "east"}, "cannot parse the table"),
    "csv latitude out of range": (table, {"latitude": 95.0}, r"latitude 95 out of range"),
    "csv no velocity column": (table, {"rename": {"velocity": "speed"}}, "no recognisable velocity column"),
    "parquet NaN coordinates": (table, {"suffix": ".parquet", "longitude": nan}, "no row has finite coordinates"),
    "parquet text velocity": (table, {"suffix": ".parquet", "velocity": "fast"}, "column 'velocity' holds"),
    # EGMS zips: the XML metadata and the CSV
    "egms XML not well-formed": (egms, {"xml": "<BURST><track>22</track"}, "unreadable xml metadata"),
    "egms XML empty": (egms, {"xml": ""}, "unreadable xml metadata"),
    "egms XML binary": (egms, {"xml": b"\x00\xff\xfe"}, "unreadable xml metadata"),
    "egms XML track abc": (egms, {"xml": "<BURST><track>abc</track></BURST>"}, "track 'abc' is not a track number"),
    "egms NaN easting": (egms, {"easting": nan}, "no row has finite coordinates"),
    # vector layers
    "gpkg text velocity": (vector, {"velocity": "fast"}, "attribute 'velocity' holds 'fast', not a number"),
    "gpkg metres as degrees": (
        vector,
        {"geometry": shapely.points(np.full(256, 3e5), np.full(256, 4.29e6))},
        "out of range",
    ),
    "gpkg infinite points": (
        vector,
        {"geometry": shapely.points(np.full(256, inf), np.zeros(256))},
        "finite coordinates",
    ),
}


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the builder's, writing none
@pytest.mark.parametrize("case", list(CASES))
def test_bad_header_is_one_line(tmp_path, capsys, case):
    build, fields, says = CASES[case]
    path = build(tmp_path, **fields)
    status, err, out = run(path, tmp_path, capsys)
    line = assert_one_line(status, err, path, out)
    assert re.search(says, line.lower()), line


# --- the property: any value in any header field gives a run or one line -----------------------------------------

TEXT = st.sampled_from(["", "abc", "0", "-0", "nan", "inf", "-inf", "1e308", "-1e308", "1e-300", "42", "-1", "1,5"])
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-12, 1e12, -1e12, 5e6, -100.0, 100.0, 0.001]),
)
VALUE = st.one_of(TEXT, NUMBER, st.integers(-(10**12), 10**12))
CRS_TEXT = st.sampled_from(["EPSG:4326", "EPSG:32633", "EPSG:3035", "EPSG:5703", "EPSG:4979", "EPSG:3857"])


def _mutations():
    """(format name, builder, keyword arguments) drawn per format: a header field and a value."""
    geotiff_term = st.tuples(st.integers(0, 5), NUMBER).map(
        lambda change: {"transform": tuple(change[1] if k == change[0] else v for k, v in enumerate(TRANSFORM))}
    )
    return st.one_of(
        st.tuples(
            st.just(geotiff),
            st.one_of(
                geotiff_term,
                CRS_TEXT.map(lambda crs: {"crs": crs}),
                NUMBER.filter(lambda v: not abs(v) < np.inf or abs(v) < 3e38).map(lambda v: {"nodata": v}),  # float32
                TEXT.map(lambda units: {"units": units}),
            ),
        ),
        st.tuples(
            st.just(mintpy),
            st.tuples(
                st.sampled_from(["X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "WIDTH", "LENGTH", "EPSG", "UNIT", "REF_Y"]),
                st.one_of(VALUE.map(str), NUMBER),
            ).map(lambda change: {change[0]: change[1], **({"REF_X": "1"} if change[0] == "REF_Y" else {})}),
        ),
        st.tuples(
            st.just(table),
            st.one_of(
                st.tuples(st.sampled_from(["longitude", "latitude", "velocity"]), VALUE).map(
                    lambda change: {change[0]: change[1]}
                ),
                st.tuples(st.sampled_from(["longitude", "latitude", "velocity"]), TEXT).map(
                    lambda change: {"rename": {change[0]: change[1]}}
                ),
            ),
            st.sampled_from([".csv", ".parquet"]),
        ).map(lambda drawn: (drawn[0], {**drawn[1], "suffix": drawn[2]})),
        st.tuples(
            st.just(egms),
            st.one_of(
                st.tuples(st.sampled_from(["product_level", "track", "burst_id"]), VALUE).map(
                    lambda change: {"xml": f"<BURST><{change[0]}>{change[1]}</{change[0]}></BURST>"}
                ),
                st.tuples(st.sampled_from(["easting", "northing", "mean_velocity"]), VALUE).map(
                    lambda change: {change[0]: change[1]}
                ),
            ),
        ),
        st.tuples(st.just(vector), st.one_of(VALUE.map(lambda v: {"velocity": v}), CRS_TEXT.map(lambda c: {"crs": c}))),
    )


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure found once is found again
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(_mutations())
def test_any_header_value_gives_a_run_or_one_line(capsys, mutation):
    build, fields = mutation
    with tempfile.TemporaryDirectory() as directory:
        path = build(directory, **fields)
        status, err, out = run(path, directory, capsys)
        if status == 0:
            assert (out / "detections.geojson").is_file() and (out / "run.json").is_file()
        else:
            assert_one_line(status, err, path, out)


# --- output paths: a directory where a file goes, a directory that is missing, a read-only parent (issue 24) -------


def _feature_collection(directory, name):
    path = Path(directory) / name
    gpd.GeoDataFrame(geometry=[shapely.box(13.1, 38.7, 13.11, 38.71)], crs="EPSG:4326").to_file(path)
    return path


def _scenes(directory):
    from defoscan.synth.scene import make_scene, write_scene

    scenes = Path(directory) / "scenes"
    write_scene(str(scenes), "scene-000", *make_scene(3, shape=(96, 96), cell_size=50.0))
    return scenes


# command: (file name, the command line with OUT for the output file)
FILE_OUTPUTS = {
    "grid": ("g.tif", lambda d: ["grid", table(d), "--out", "OUT"]),
    "fill": ("f.tif", lambda d: ["fill", table(d), "--method", "nearest", "--out", "OUT"]),
    "synth --fit": ("profile.json", lambda d: ["synth", "--fit", table(d), "--out", "OUT"]),
    "evaluate --out": (
        "scores.json",
        lambda d: ["evaluate", _feature_collection(d, "d.geojson"), _feature_collection(d, "t.json"), "--out", "OUT"],
    ),
    "evaluate-scenes --table": (
        "table.md",
        lambda d: ["evaluate-scenes", _scenes(d), "--out", Path(d) / "suite", "--no-real", "--table", "OUT"],
    ),
    "train": ("m.safetensors", lambda d: ["train", Path(d) / "dataset", "--out", "OUT"]),
}


def _tree(directory):
    return sorted(str(p.relative_to(directory)) for p in Path(directory).rglob("*"))


def _run_cli(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


def _one_line(status, err, path, says):
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"defoscan: error: {path}: ") and says in lines[0], lines[0]


@pytest.mark.parametrize("command", list(FILE_OUTPUTS))
@pytest.mark.parametrize(
    ("place", "says"),
    [("existing directory", "is a directory; "), ("missing parent", "no such directory")],
)
def test_an_output_file_that_cannot_be_written_is_one_line(tmp_path, capsys, command, place, says):
    name, arguments = FILE_OUTPUTS[command]
    args = arguments(tmp_path)
    if place == "existing directory":
        out = tmp_path / name
        out.mkdir()
    else:
        out = tmp_path / "missing" / "parent" / name
    before = _tree(tmp_path)
    status, err = _run_cli([out if a == "OUT" else a for a in args], capsys)
    _one_line(status, err, out, says)
    assert _tree(tmp_path) == before  # no temporary file, no directory made


@pytest.fixture
def read_only_parent(tmp_path):
    """A writable directory ``out`` in a directory that cannot be written (skipped where permissions do not bind)."""
    parent = tmp_path / "read-only"
    (parent / "out").mkdir(parents=True)
    parent.chmod(0o555)
    try:
        try:
            os.rmdir(tempfile.mkdtemp(dir=parent))
        except PermissionError:
            yield parent / "out"
        else:  # root (with its capabilities) writes anyway
            pytest.skip("permissions are not enforced here (running as root)")
    finally:
        parent.chmod(0o755)


@pytest.mark.parametrize(
    ("options", "says"),
    [([], "cannot create the staging directory of its outputs beside it"), (["--chunk", "64"], "work directory")],
)
def test_a_writable_out_in_a_read_only_directory_is_one_line(tmp_path, capsys, read_only_parent, options, says):
    out = read_only_parent
    status, err = _run_cli(["detect", *BASELINE, table(tmp_path), "--out", out, *options], capsys)
    _one_line(status, err, out, says)
    assert f"{out.parent} is not writable" in err
    assert os.listdir(out) == [] and os.listdir(out.parent) == ["out"]


# --- silent wrong results (issue 24): warned about, refused, or named by an option -------------------------------


def _bowl_with_fill(directory, dtype="float32"):
    """A 160 x 160 raster of 50 m cells, one subsidence bowl (-30 mm/yr), a fifth of it -9999 with no nodata tag."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:160, 0:160]
    values = rng.normal(0.0, 1.0, (160, 160)) - 30.0 * np.exp(-((cols - 100) ** 2 + (rows - 100) ** 2) / 128.0)
    values[:40], values[:, :20] = -9999, -9999
    path = Path(directory) / "bowl.tif"
    profile = {"driver": "GTiff", "width": 160, "height": 160, "count": 1, "dtype": dtype, "crs": "EPSG:32633"}
    with rasterio.open(path, "w", transform=Affine(50.0, 0, 300_000.0, 0, -50.0, 4_290_000.0), **profile) as dst:
        dst.write(np.rint(values).astype(dtype) if dtype == "int16" else values.astype(dtype), 1)
    return path


@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_undeclared_fill_values_are_no_data(tmp_path, capsys, dtype):
    # The -9999 cells were gridded as velocities: their edge made three false detections beside the bowl.
    path = _bowl_with_fill(tmp_path, dtype)
    status, err, out = run(path, tmp_path, capsys)
    assert status == 0, err
    warning = f"{path}: 8,800 velocities of -9999 (a common fill value) read as no data"
    assert f"defoscan: warning: {warning}" in err
    record = json.loads((out / "run.json").read_text())
    assert any(w.startswith(warning) for w in record["warnings"])
    assert record["tracks"][0]["dropped"]["fill_values"] == 8800
    assert record["detections"]["by_sign"] == {"subsidence": 1, "uplift": 0}
    # Named with --nodata: the same map, without the warning.
    (tmp_path / "named").mkdir()
    status, err, again = run(path, tmp_path / "named", capsys, "--nodata", "-9999")
    assert status == 0 and "warning" not in err, err
    record = json.loads((again / "run.json").read_text())
    assert record["parameters"]["nodata"] == -9999.0 and record["detections"]["count"] == 1


def test_nodata_must_be_a_number(tmp_path, capsys):
    path = _bowl_with_fill(tmp_path)
    status, err, out = run(path, tmp_path, capsys, "--nodata", "nan")
    assert status == 2 and not out.exists()
    assert err.strip() == "defoscan: error: --nodata: must be a finite number, got nan (see 'defoscan detect -h')"


def test_millimetres_given_as_metres_is_one_line(tmp_path, capsys):
    path = table(tmp_path, velocity=np.clip(RNG.normal(0.0, 8.0, 256), -27, 27))
    status, err, out = run(path, tmp_path, capsys, "--units", "m/yr")
    line = assert_one_line(status, err, path, out)
    assert "faster than 1 m/yr read in m/yr (--units)" in line and line.endswith("pass --units mm/yr")


def test_a_geopackage_of_two_layers_names_the_choice(tmp_path, capsys):
    path = vector(tmp_path)
    points = gpd.read_file(path, layer="points")
    points.assign(velocity=-points["velocity"]).to_file(path, layer="other")
    status, err, out = run(path, tmp_path, capsys)
    line = assert_one_line(status, err, path, out)
    assert line.endswith("2 layers (points (Point), other (Point)); name the one to read with --layer NAME")
    status, err, out = run(path, tmp_path, capsys, "--layer", "other")
    assert status == 0 and "warning" not in err.lower(), err  # pyogrio's "More than one layer found" is not printed
    assert json.loads((out / "run.json").read_text())["parameters"]["layer"] == "other"


def test_a_wrong_crs_far_from_its_area_is_one_line(tmp_path, capsys):
    # UTM 33N coordinates (near Ustica) given the Dutch grid: the points would lie at 85 degrees north.
    x, y = np.meshgrid(300_000.0 + 100 * np.arange(16), 4_290_000.0 + 100 * np.arange(16))
    path = tmp_path / "points.csv"
    pd.DataFrame({"easting": x.ravel(), "northing": y.ravel(), "velocity": VELOCITY.ravel()}).to_csv(path, index=False)
    status, err, out = run(path, tmp_path, capsys, "--crs", "28992")
    line = assert_one_line(status, err, path, out)
    assert "EPSG:28992 puts the data at latitude 85.3" in line and line.endswith("check --crs")
    status, err, out = run(path, tmp_path, capsys, "--crs", "32633")
    assert status == 0, err


def test_the_same_input_twice_is_read_once(tmp_path, capsys):
    # Read twice, the points counted twice: twice the density, a finer default cell, other detections.
    path = table(tmp_path)
    (tmp_path / "once").mkdir()
    status, err, once = run(path, tmp_path / "once", capsys)
    assert status == 0, err
    status, err, out = run(path, tmp_path, capsys, str(tmp_path / "." / "points.csv"))
    assert status == 0, err
    warning = f"{tmp_path / '.' / 'points.csv'}: given twice (the same file as {path}): read once"
    assert f"defoscan: warning: {warning}" in err
    record, single = (json.loads((d / "run.json").read_text()) for d in (out, once))
    assert warning in record["warnings"]
    assert [i["path"] for i in record["inputs"]] == [str(path)]
    assert record["points"] == single["points"] == 256
    assert record["grid"] == single["grid"] and record["detections"] == single["detections"]


def _detect_status(capsys, path, out, *options):
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", str(path), "--out", str(out), *options])
    return exit_info.value.code, capsys.readouterr()


def test_a_map_the_detector_could_not_scan_is_no_clean_result(tmp_path, capsys):
    # Scattered villages: the CNN's windows never hold 10 % of cells with data, probability.tif is all NaN. It said
    # "0 detection(s)" and exited 0.
    path = write_villages(tmp_path)
    status, (printed, err) = _detect_status(capsys, path, tmp_path / "out")
    assert status == 3, err
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["grid"]["cell_size_m"] == 100.0 and record["scan_incomplete"] == ["all"]
    scanned = record["tracks"][0]["scanned"]
    assert scanned["cells_scanned"] == 0 and scanned["share"] == 0.0 and scanned["cells_with_data"] > 100
    (warning,) = [w for w in record["warnings"] if "the detector scanned none" in w]
    assert warning.startswith(f"{path}: the detector scanned none of the map's")
    assert f"defoscan: warning: {warning}\n" in err
    assert "not a clean result" in printed
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Not a clean result" in page and html.escape(warning) in page
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        assert np.isnan(src.read(1)).all()
    # The cell size chosen by the user: the run is complete (exit 0), the warning still in run.json and the report.
    status, (printed, err) = _detect_status(capsys, path, tmp_path / "chosen", "--cell-size", "100")
    assert status == 0, err
    record = json.loads((tmp_path / "chosen" / "run.json").read_text())
    assert record["scan_incomplete"] == ["all"] and any("the detector scanned none" in w for w in record["warnings"])
    assert "Not a clean result" in (tmp_path / "chosen" / "report.html").read_text()


def test_a_small_egms_zip_gridded_coarse_is_scanned_on_the_models_cells(tmp_path, capsys, ustica_l3_u_zip):
    # The EGMS L3 zip (522 points) is gridded at 250 m, where the 128-cell windows held under 10 % of cells with
    # data: never scanned (issue 24, item 2). It is scanned on the model's 50 m cells now (defoscan.scan_upsampled).
    status, (printed, err) = _detect_status(capsys, ustica_l3_u_zip, tmp_path / "out")
    assert status == 0, err
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["grid"]["cell_size_m"] == 250.0 and record["scan_incomplete"] == []
    (track,) = record["tracks"]
    assert track["scanned"]["share"] >= 0.9 and track["noise"]["scan_cell_size_m"] == 50.0
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        assert np.isfinite(src.read(1)).sum() == track["scanned"]["cells_scanned"]
