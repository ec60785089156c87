"""EGMS products: names, XML metadata, and the real Ustica L2b / L3 zips read against what they hold."""

import hashlib
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from conftest import L2B_022, L2B_117, L3_E, L3_U
from defoscan.errors import InputError
from defoscan.io import ReadOptions, read_input
from defoscan.io.egms import looks_like_egms_table, parse_egms_name, read_egms_xml
from defoscan.points import describe_crs, points_crs, points_lonlat

# --- names and metadata ---------------------------------------------------------------------------------------


def test_parse_l2b_name():
    info = parse_egms_name(f"{L2B_022}.zip")
    assert info == {
        "level": "L2b",
        "track": "T022",
        "burst": "0845",
        "swath": "IW2",
        "polarisation": "VV",
        "period": "2020-2024",
        "version": "1",
    }


def test_parse_l2a_name_lower_case_and_in_a_path():
    info = parse_egms_name("/some/dir/egms_l2a_117_0227_iw3_vh_2018_2022_2.csv")
    assert info["level"] == "L2a"
    assert info["track"] == "T117"
    assert info["swath"] == "IW3"
    assert info["polarisation"] == "VH"


@pytest.mark.parametrize(("name", "track", "component"), [(L3_U, "L3-U", "U"), (L3_E, "L3-E", "E")])
def test_parse_l3_name(name, track, component):
    info = parse_egms_name(f"{name}.tiff")
    assert info["level"] == "L3"
    assert info["track"] == track
    assert info["component"] == component
    assert info["tile"] == "E45N17"


@pytest.mark.parametrize("name", ["velocity.csv", "EGMS_L2b_22_0845_IW2_VV_2020_2024_1.zip", "EGMS.zip", ""])
def test_parse_non_egms_name(name):
    assert parse_egms_name(name) is None


def test_read_egms_xml_of_real_l2b(ustica_l2b_117_zip):
    with zipfile.ZipFile(ustica_l2b_117_zip) as archive:
        fields = read_egms_xml(archive.read(f"{L2B_117}.xml"))
    assert fields["product_level"] == "L2b"
    assert fields["track"] == "117"
    assert fields["burst_id"] == "0227"
    assert fields["sub_swath"] == "2"


def test_read_egms_xml_of_real_l3_has_no_track(ustica_l3_u_zip):
    with zipfile.ZipFile(ustica_l3_u_zip) as archive:
        fields = read_egms_xml(archive.read(f"{L3_U}.xml"))
    assert fields["product_level"] == "L3"
    assert "track" not in fields


def test_looks_like_egms_table(l2b_022_frame, l3_u_frame, amsterdam_frame):
    assert looks_like_egms_table(l2b_022_frame.columns)
    assert looks_like_egms_table(l3_u_frame.columns)
    assert not looks_like_egms_table(amsterdam_frame.columns)
    assert not looks_like_egms_table(["pid", "easting", "northing"])


def test_l2b_zips_match_their_checksums(ustica_l2b_022_zip, ustica_l2b_117_zip, ustica_md5_files):
    for path in (ustica_l2b_022_zip, ustica_l2b_117_zip):
        digest, name = ustica_md5_files[path.stem].read_text().split()
        assert name == path.name
        assert hashlib.md5(path.read_bytes()).hexdigest() == digest


# --- L2b: the real zips -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def l2b_022(ustica_l2b_022_zip):
    return read_input(ustica_l2b_022_zip)


@pytest.fixture(scope="module")
def l2b_117(ustica_l2b_117_zip):
    return read_input(ustica_l2b_117_zip)


def test_l2b_point_counts(l2b_022, l2b_117, l2b_022_frame, l2b_117_frame):
    assert l2b_022.sizes["point"] == 11_590 == len(l2b_022_frame)
    assert l2b_117.sizes["point"] == 11_759 == len(l2b_117_frame)


def test_l2b_tracks_and_crs(l2b_022, l2b_117, ustica_l2b_022_zip):
    assert l2b_022.attrs["track"] == "T022"
    assert l2b_117.attrs["track"] == "T117"
    for ds in (l2b_022, l2b_117):
        assert describe_crs(ds) == "EPSG:3035"
        assert ds.attrs["crs_declared"] == 1
    assert l2b_022.attrs["sources"] == [str(ustica_l2b_022_zip)]


@pytest.mark.parametrize(("dataset", "frame"), [("l2b_022", "l2b_022_frame"), ("l2b_117", "l2b_117_frame")])
def test_l2b_values_equal_the_csv(dataset, frame, request):
    ds, df = request.getfixturevalue(dataset), request.getfixturevalue(frame)
    # Coordinates are EGMS's exact easting/northing, not the rounded lon/lat reprojected.
    np.testing.assert_array_equal(ds["x"].values, df["easting"].to_numpy())
    np.testing.assert_array_equal(ds["y"].values, df["northing"].to_numpy())
    np.testing.assert_array_equal(ds["velocity"].values, df["mean_velocity"].to_numpy(np.float32))
    np.testing.assert_array_equal(ds["velocity_std"].values, df["mean_velocity_std"].to_numpy(np.float32))
    np.testing.assert_array_equal(ds["coherence"].values, df["temporal_coherence"].to_numpy(np.float32))
    np.testing.assert_array_equal(ds["height"].values, df["height_ortho"].to_numpy(np.float32))
    assert ds["velocity"].attrs["units"] == "mm/yr"


def test_l2b_known_point(l2b_022, l2b_022_frame):
    # The fastest scatterer of track 022 (pid 166ax4qqbf: -11.5 mm/yr in the file), found by its position.
    row = l2b_022_frame.set_index("pid").loc["166ax4qqbf"]
    at = np.flatnonzero((l2b_022["x"].values == row["easting"]) & (l2b_022["y"].values == row["northing"]))
    assert at.size == 1
    assert l2b_022["velocity"].values[at[0]] == pytest.approx(-11.5)
    assert row["mean_velocity"] == -11.5


def test_l2b_position_agrees_with_its_lonlat(l2b_117, l2b_117_frame):
    lon, lat = points_lonlat(l2b_117)
    # EGMS rounds lon/lat to 1e-6 degree (0.1 m); the projected and the geographic columns describe one place.
    np.testing.assert_allclose(lon, l2b_117_frame["longitude"], atol=2e-6)
    np.testing.assert_allclose(lat, l2b_117_frame["latitude"], atol=2e-6)
    assert 12.9 < lon.min() < lon.max() < 13.3 and 38.6 < lat.min() < lat.max() < 38.8  # Ustica island


def test_l2b_time_series(ustica_l2b_022_zip):
    ds = read_input(ustica_l2b_022_zip, ReadOptions(time_series=True))
    with zipfile.ZipFile(ustica_l2b_022_zip) as archive:
        df = pd.read_csv(archive.open(f"{L2B_022}.csv"), nrows=5)
    date_cols = [c for c in df.columns if c.isdigit()]
    assert ds.sizes["time"] == len(date_cols) == 210
    assert ds["time"].values[0] == np.datetime64("2020-01-03")
    assert ds["time"].values[-1] == np.datetime64(f"{date_cols[-1][:4]}-{date_cols[-1][4:6]}-{date_cols[-1][6:]}")
    # EGMS displacements are in mm already.
    np.testing.assert_array_equal(ds["displacement"].values[:5], df[date_cols].to_numpy(np.float32))


def test_l2b_track_from_xml_when_renamed(tmp_path, ustica_l2b_117_zip):
    renamed = tmp_path / "ustica_ascending.zip"
    shutil.copy(ustica_l2b_117_zip, renamed)
    ds = read_input(renamed)
    assert ds.attrs["track"] == "T117"
    assert describe_crs(ds) == "EPSG:3035"
    assert ds.sizes["point"] == 11_759


def test_egms_csv_without_easting_northing_goes_to_3035(tmp_path, l2b_022_frame):
    # An EGMS product given only in lon/lat is worked in EPSG:3035, the EGMS grid.
    path = tmp_path / f"{L2B_022}.csv"
    l2b_022_frame[["latitude", "longitude", "mean_velocity"]].head(200).to_csv(path, index=False)
    ds = read_input(path)
    assert describe_crs(ds) == "EPSG:3035"
    assert ds.attrs["track"] == "T022"
    np.testing.assert_allclose(ds["x"].values, l2b_022_frame["easting"].head(200), atol=0.5)
    np.testing.assert_allclose(ds["y"].values, l2b_022_frame["northing"].head(200), atol=0.5)


# --- L3: the real zips ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "frame", "track"),
    [("ustica_l3_u_zip", "l3_u_frame", "L3-U"), ("ustica_l3_e_zip", "l3_e_frame", "L3-E")],
)
def test_l3_zip(fixture, frame, track, request):
    path, df = request.getfixturevalue(fixture), request.getfixturevalue(frame)
    ds = read_input(path)
    valid = df["mean_velocity"].notna() & df["easting"].notna() & df["northing"].notna()
    assert ds.sizes["point"] == int(valid.sum()) == 522
    assert ds.attrs["track"] == track
    assert describe_crs(ds) == "EPSG:3035"
    assert points_crs(ds).to_epsg() == 3035
    np.testing.assert_array_equal(ds["x"].values, df.loc[valid, "easting"].to_numpy(np.float64))
    np.testing.assert_array_equal(ds["y"].values, df.loc[valid, "northing"].to_numpy(np.float64))
    np.testing.assert_array_equal(ds["velocity"].values, df.loc[valid, "mean_velocity"].to_numpy(np.float32))
    # L3 points are the centres of 100 m cells.
    assert np.all(ds["x"].values % 100 == 50) and np.all(ds["y"].values % 100 == 50)


def test_l3_known_cell(ustica_l3_u_zip, ustica_l3_e_zip):
    up, east = read_input(ustica_l3_u_zip), read_input(ustica_l3_e_zip)
    # pid 10LDTjEkDv, the first cell of both files: U -1.7, E -1.5 mm/yr at (4597550, 1739750).
    for ds, expected in ((up, -1.7), (east, -1.5)):
        at = np.flatnonzero((ds["x"].values == 4_597_550) & (ds["y"].values == 1_739_750))
        assert at.size == 1
        assert ds["velocity"].values[at[0]] == pytest.approx(expected)


def test_zip_with_two_csvs_is_refused(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "lon,lat,velocity\n1,2,3\n")
        archive.writestr("b.csv", "lon,lat,velocity\n1,2,3\n")
    with pytest.raises(InputError, match="one CSV"):
        read_input(path)


def test_zip_with_broken_xml_is_refused(tmp_path):
    path = tmp_path / f"{L2B_022}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{L2B_022}.csv", "pid,easting,northing,mean_velocity\na,4598603.4,1739722.2,-2.1\n")
        archive.writestr(f"{L2B_022}.xml", "<BURST><track>022</track")
    with pytest.raises(InputError, match="XML"):
        read_input(path)
