"""Points tables: the real Amsterdam DePSI CSV, and CSV/TSV/semicolon/Parquet/gzip files written here."""

import gzip

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from defoscan.errors import InputError
from defoscan.io import ReadOptions, detect_format, read_input
from defoscan.io.columns import date_columns, find_column
from defoscan.io.table import open_table
from defoscan.points import describe_crs

LON = [4.90, 4.91, 4.92, 4.93]
LAT = [52.30, 52.31, 52.32, 52.33]
VEL = [1.5, -2.0, 0.25, -7.0]


def _utm31(lon, lat):
    return Transformer.from_crs(4326, 32631, always_xy=True).transform(np.asarray(lon), np.asarray(lat))


def _write_text(path, text, compress=False):
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _table_text(names, sep=",", rows=None):
    rows = rows or list(zip(LON, LAT, VEL, strict=True))
    return sep.join(names) + "\n" + "".join(sep.join(str(v) for v in row) + "\n" for row in rows)


def _assert_lonlat_points(ds, velocity=VEL, lon=LON, lat=LAT):
    x, y = _utm31(lon, lat)
    assert describe_crs(ds) == "EPSG:32631"
    assert ds.attrs["crs_declared"] == 0
    np.testing.assert_allclose(ds["x"].values, x, atol=1e-6)
    np.testing.assert_allclose(ds["y"].values, y, atol=1e-6)
    np.testing.assert_allclose(ds["velocity"].values, velocity, rtol=1e-6)


# --- Amsterdam DePSI (real) -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def amsterdam(amsterdam_csv):
    return read_input(amsterdam_csv)


def test_amsterdam_count_crs_and_values(amsterdam, amsterdam_frame):
    assert amsterdam.sizes["point"] == len(amsterdam_frame) == 2_500
    assert describe_crs(amsterdam) == "EPSG:32631"
    assert amsterdam.attrs["track"] == ""
    # pnt_linear is in m/yr: read as mm/yr.
    np.testing.assert_allclose(amsterdam["velocity"].values, amsterdam_frame["pnt_linear"] * 1000.0, rtol=1e-6)
    x, y = _utm31(amsterdam_frame["pnt_lon"], amsterdam_frame["pnt_lat"])
    np.testing.assert_allclose(amsterdam["x"].values, x, atol=1e-6)
    np.testing.assert_allclose(amsterdam["y"].values, y, atol=1e-6)
    np.testing.assert_allclose(amsterdam["coherence"].values, amsterdam_frame["pnt_enscoh"], rtol=1e-6)
    np.testing.assert_allclose(amsterdam["height"].values, amsterdam_frame["pnt_height"], rtol=1e-6)


def test_amsterdam_known_point(amsterdam, amsterdam_frame):
    # The fastest scatterer: -0.01675 m/yr in the file, -16.75 mm/yr read.
    row = amsterdam_frame.loc[amsterdam_frame["pnt_linear"].idxmin()]
    assert row["pnt_linear"] == pytest.approx(-0.01675)
    x, y = _utm31(row["pnt_lon"], row["pnt_lat"])
    at = np.argmin(np.hypot(amsterdam["x"].values - x, amsterdam["y"].values - y))
    assert np.hypot(amsterdam["x"].values[at] - x, amsterdam["y"].values[at] - y) < 1e-3
    assert amsterdam["velocity"].values[at] == pytest.approx(-16.75, rel=1e-6)


def test_amsterdam_time_series_in_mm(amsterdam_csv, amsterdam_frame):
    ds = read_input(amsterdam_csv, ReadOptions(time_series=True))
    dates = [c for c in amsterdam_frame.columns if c.startswith("d_")]
    assert ds.sizes["time"] == len(dates) == 11
    assert ds["time"].values[0] == np.datetime64("2016-03-27")
    assert ds["time"].values[-1] == np.datetime64("2016-07-15")
    np.testing.assert_allclose(ds["displacement"].values, amsterdam_frame[dates].to_numpy() * 1000.0, atol=1e-4)


def test_amsterdam_without_time_series_has_none(amsterdam):
    assert "displacement" not in amsterdam and "time" not in amsterdam.coords


# --- formats ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sep", "compress"),
    [
        ("p.csv", ",", False),
        ("p.tsv", "\t", False),
        ("p.txt", "\t", False),
        ("semicolon.csv", ";", False),
        ("pipe.csv", "|", False),
        ("p.csv.gz", ",", True),
        ("p.tsv.gz", "\t", True),
    ],
)
def test_delimited_formats(tmp_path, name, sep, compress):
    path = _write_text(tmp_path / name, _table_text(["lon", "lat", "velocity"], sep), compress)
    assert detect_format(path) == "table"
    assert open_table(path).delimiter == sep
    _assert_lonlat_points(read_input(path))


def test_parquet(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"longitude": LON, "latitude": LAT, "mean_velocity": VEL}).to_parquet(path)
    assert detect_format(path) == "table"
    _assert_lonlat_points(read_input(path))


def test_parquet_detected_by_signature(tmp_path):
    path = tmp_path / "points.data"
    pd.DataFrame({"longitude": LON, "latitude": LAT, "mean_velocity": VEL}).to_parquet(path)
    assert detect_format(path) == "table"


def test_parquet_with_integer_and_null_velocities(tmp_path):
    path = tmp_path / "p.parquet"
    frame = pd.DataFrame({"lon": LON, "lat": LAT, "velocity": pd.array([1, None, 3, -4], dtype="Int64")})
    frame.to_parquet(path)
    ds = read_input(path)
    keep = [0, 2, 3]
    _assert_lonlat_points(ds, [1.0, 3.0, -4.0], [LON[i] for i in keep], [LAT[i] for i in keep])


def test_windows_line_endings_bom_and_quotes(tmp_path):
    path = tmp_path / "p.csv"
    text = '\ufeff"lon","lat","velocity"\r\n' + "".join(
        f"{a},{b},{c}\r\n" for a, b, c in zip(LON, LAT, VEL, strict=True)
    )
    path.write_text(text, encoding="utf-8")
    _assert_lonlat_points(read_input(path))


def test_spaces_after_delimiters_in_header(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", " lat", " velocity"]))
    _assert_lonlat_points(read_input(path))


# --- column recognition -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ["lon", "lat", "velocity"],
        ["Longitude", "Latitude", "VEL"],
        ["LNG", "lat", "mean_velocity"],
        ["long", "lat", "vlos"],
        ["lon_deg", "lat_deg", "linear_rate"],
        ["pnt_lon", "pnt_lat", "velocity_mm_yr"],
    ],
)
def test_common_lonlat_names(tmp_path, names):
    _assert_lonlat_points(read_input(_write_text(tmp_path / "p.csv", _table_text(names))))


def test_column_order_does_not_matter(tmp_path):
    rows = list(zip(VEL, LAT, LON, strict=True))
    path = _write_text(tmp_path / "p.csv", _table_text(["velocity", "latitude", "longitude"], rows=rows))
    _assert_lonlat_points(read_input(path))


def test_optional_columns_recognised(tmp_path):
    rows = [(*r, 0.1 * i, 0.9 - 0.1 * i, 10.0 * i) for i, r in enumerate(zip(LON, LAT, VEL, strict=True))]
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", "lat", "vel", "vel_std", "coh", "height"], rows=rows))
    ds = read_input(path)
    np.testing.assert_allclose(ds["velocity_std"].values, [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(ds["coherence"].values, [0.9, 0.8, 0.7, 0.6], atol=1e-6)
    np.testing.assert_allclose(ds["height"].values, [0.0, 10.0, 20.0, 30.0], atol=1e-5)


def test_explicit_column_names(tmp_path):
    rows = [(v, lo, la, 99.0) for lo, la, v in zip(LON, LAT, VEL, strict=True)]
    path = _write_text(tmp_path / "p.csv", _table_text(["speed", "a", "b", "velocity"], rows=rows))
    options = ReadOptions(columns={"lon": "a", "lat": "B", "velocity": "speed"})
    _assert_lonlat_points(read_input(path, options))


def test_explicit_column_that_does_not_exist(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", "lat", "velocity"]))
    with pytest.raises(InputError, match="no column named 'rate'"):
        read_input(path, ReadOptions(columns={"velocity": "rate"}))


def test_no_velocity_column(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", "lat", "speed"]))
    with pytest.raises(InputError, match="velocity column"):
        read_input(path)


def test_no_coordinate_columns(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["a", "b", "velocity"]))
    with pytest.raises(InputError, match="coordinate columns"):
        read_input(path)


def test_rows_without_coordinates_or_velocity_are_dropped(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat,velocity\n4.9,52.3,\n4.91,52.31,2.0\n,52.32,3.0\n4.93,52.33,NA\n4.94,52.34,nan\n")
    ds = read_input(path)
    _assert_lonlat_points(ds, [2.0], [4.91], [52.31])


def test_no_valid_row(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat,velocity\n4.9,52.3,\n")
    with pytest.raises(InputError, match="no row has finite"):
        read_input(path)


def test_header_only_and_empty_files(tmp_path):
    header = tmp_path / "h.csv"
    header.write_text("lon,lat,velocity\n")
    with pytest.raises(InputError, match="no rows"):
        read_input(header)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_input(empty)


def test_non_numeric_value_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat,velocity\n4.9,52.3,fast\n")
    with pytest.raises(InputError, match="cannot parse"):
        read_input(path)


def test_swapped_lonlat_is_refused_with_a_hint(tmp_path):
    rows = [(la, lo, v) for lo, la, v in zip(LON, LAT, VEL, strict=True)]
    path = _write_text(tmp_path / "p.csv", _table_text(["lat", "lon", "velocity"], rows=rows))
    _assert_lonlat_points(read_input(path))  # latitude first, named so: fine
    bad = _write_text(tmp_path / "bad.csv", _table_text(["lon", "lat", "velocity"], rows=[(52.3, 95.0, 1.0)]))
    with pytest.raises(InputError, match="swapped"):
        read_input(bad)


def test_projected_numbers_as_lonlat_are_refused(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", "lat", "velocity"], rows=[(530000.0, 80.0, 1.0)]))
    with pytest.raises(InputError, match="longitude"):
        read_input(path)


# --- units --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "option", "factor"),
    [
        ("velocity", None, 1.0),
        ("velocity", "cm/yr", 10.0),
        ("velocity", "m/yr", 1000.0),
        ("vel_m_yr", None, 1000.0),
        ("velocity_cm_yr", None, 10.0),
        ("pnt_linear", None, 1000.0),
        ("vel_m_yr", "mm/yr", 1.0),
    ],
)
def test_units(tmp_path, name, option, factor):
    rows = [(lo, la, v, 0.5) for lo, la, v in zip(LON, LAT, VEL, strict=True)]
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", "lat", name, "velocity_std"], rows=rows))
    ds = read_input(path, ReadOptions(units=option))
    np.testing.assert_allclose(ds["velocity"].values, np.asarray(VEL) * factor, rtol=1e-6)
    np.testing.assert_allclose(ds["velocity_std"].values, 0.5 * factor, rtol=1e-6)
    assert ds["velocity"].attrs["units"] == "mm/yr"


def test_unknown_units_option(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", "lat", "velocity"]))
    with pytest.raises(InputError, match="unknown velocity unit"):
        read_input(path, ReadOptions(units="inch/yr"))


# --- easting/northing ---------------------------------------------------------------------------------------------

BNG_ROWS = [(530_000.0, 180_000.0, 1.0), (530_050.0, 180_025.0, -3.5)]


@pytest.mark.parametrize("names", [["easting", "northing", "velocity"], ["x", "y", "vel"], ["E", "N", "v"]])
def test_easting_northing_need_a_crs(tmp_path, names):
    path = _write_text(tmp_path / "p.csv", _table_text(names, rows=BNG_ROWS))
    with pytest.raises(InputError, match="need their CRS"):
        read_input(path)
    ds = read_input(path, ReadOptions(crs="EPSG:27700"))
    assert describe_crs(ds) == "EPSG:27700"
    assert ds.attrs["crs_declared"] == 1
    np.testing.assert_array_equal(ds["x"].values, [530_000.0, 530_050.0])
    np.testing.assert_array_equal(ds["y"].values, [180_000.0, 180_025.0])
    np.testing.assert_array_equal(ds["velocity"].values, [1.0, -3.5])


def test_geographic_crs_for_easting_northing_is_refused(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["x", "y", "velocity"], rows=BNG_ROWS))
    with pytest.raises(InputError, match="not a projected CRS"):
        read_input(path, ReadOptions(crs="EPSG:4326"))


def test_unknown_crs_is_refused(tmp_path):
    path = _write_text(tmp_path / "p.csv", _table_text(["x", "y", "velocity"], rows=BNG_ROWS))
    with pytest.raises(InputError, match="unknown CRS"):
        read_input(path, ReadOptions(crs="EPSG:999999"))


def test_lonlat_preferred_over_xy_unless_crs_given(tmp_path):
    # Both pairs: lon/lat win by default; with --crs (or named x/y) the projected pair is used as it is.
    rows = [(lo, la, 530_000.0 + i, 180_000.0 + i, v) for i, (lo, la, v) in enumerate(zip(LON, LAT, VEL, strict=True))]
    path = _write_text(tmp_path / "p.csv", _table_text(["lon", "lat", "x", "y", "velocity"], rows=rows))
    _assert_lonlat_points(read_input(path))
    for options in (ReadOptions(crs="EPSG:27700"), ReadOptions(crs="EPSG:27700", columns={"x": "x", "y": "y"})):
        ds = read_input(path, options)
        assert describe_crs(ds) == "EPSG:27700"
        np.testing.assert_array_equal(ds["x"].values, 530_000.0 + np.arange(4))


# --- helpers ------------------------------------------------------------------------------------------------------


def test_find_column():
    assert find_column(["A", "Longitude", "LAT"], "lon") == "Longitude"
    assert find_column(["A", "Longitude", "LAT"], "lat") == "LAT"
    assert find_column(["A", "B"], "velocity") is None
    assert find_column(["vel", "mean_velocity"], "velocity") == "mean_velocity"  # most specific first
    assert find_column(["Speed ", "vel"], "velocity", given="speed") == "Speed "
    assert find_column(["vel"], "velocity", given="speed") is None


def test_date_columns():
    names = ["pid", "20200103", "d_20160327", "2020-01-15", "a_20160327", "20201399", "h2ph_20160327"]
    columns, dates = date_columns(names)
    assert columns == ["20200103", "d_20160327", "2020-01-15"]
    np.testing.assert_array_equal(dates, np.array(["2020-01-03", "2016-03-27", "2020-01-15"], dtype="datetime64[D]"))
