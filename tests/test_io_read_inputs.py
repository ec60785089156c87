"""read_input / read_inputs: format detection, every real file read, tracks kept apart, bursts of one track joined."""

from importlib.resources import files
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from conftest import L2B_022
from defoscan.errors import InputError
from defoscan.io import detect_format, read_input, read_inputs
from defoscan.points import describe_crs, points_crs


def test_every_real_file_is_read(
    kirishima_velocity_h5,
    kirishima_height_tif,
    ustica_l2b_022_zip,
    ustica_l2b_117_zip,
    ustica_l3_u_zip,
    ustica_l3_e_zip,
    ustica_l3_u_tiff,
    amsterdam_csv,
):
    expected = {
        kirishima_velocity_h5: ("raster", 291_656),  # 1,026 zeros are no data, but the reference pixel
        ustica_l2b_022_zip: ("points", 11_590),
        ustica_l2b_117_zip: ("points", 11_759),
        ustica_l3_u_zip: ("points", 522),
        ustica_l3_e_zip: ("points", 522),
        ustica_l3_u_tiff: ("raster", 522),
        amsterdam_csv: ("points", 2_500),
    }
    for path, (kind, valid) in expected.items():
        ds = read_input(path)
        assert ("point" in ds.dims) == (kind == "points"), path
        assert int(np.isfinite(ds["velocity"].values).sum()) == valid, path
        assert ds.attrs["sources"] == [str(path)]
    # The Kirishima DEM is no velocity map: refused as implausible (issue 24; test_io_geotiff reads its grid).
    with pytest.raises(InputError, match="faster than 1 m/yr"):
        read_input(kirishima_height_tif)


def test_the_package_ships_no_real_data():
    """Only the project's own files: the model, the derived coverage masks, the benchmarks' city split and the truth
    circles the project read off its real datasets (real maps live in ../shared)."""
    data = files("defoscan") / "data"
    names = {p.relative_to(data).as_posix() for p in Path(str(data)).rglob("*") if p.is_file()}
    assert names == {
        "benchmarks/real_truth.json",
        "benchmarks/tay_split.json",
        "coverage/PROVENANCE.md",
        "coverage/real_masks.npz",
        "model/defoscan-compact.json",
        "model/defoscan-compact.safetensors",
    }


# --- tracks ---------------------------------------------------------------------------------------------------------


def test_ascending_and_descending_are_kept_apart(ustica_l2b_022_zip, ustica_l2b_117_zip):
    datasets = read_inputs([ustica_l2b_022_zip, ustica_l2b_117_zip])
    assert len(datasets) == 2
    assert [ds.attrs["track"] for ds in datasets] == ["T022", "T117"]
    assert [ds.sizes["point"] for ds in datasets] == [11_590, 11_759]
    assert all(describe_crs(ds) == "EPSG:3035" for ds in datasets)
    reverse = read_inputs([ustica_l2b_117_zip, ustica_l2b_022_zip])
    assert [ds.attrs["track"] for ds in reverse] == ["T117", "T022"]


def test_l3_components_are_kept_apart(ustica_l3_u_zip, ustica_l3_e_zip):
    datasets = read_inputs([ustica_l3_u_zip, ustica_l3_e_zip])
    assert [ds.attrs["track"] for ds in datasets] == ["L3-U", "L3-E"]
    assert [ds.sizes["point"] for ds in datasets] == [522, 522]


def _split_by_easting(frame, tmp_path, names):
    cut = frame["easting"].median()
    west, east = frame[frame["easting"] < cut], frame[frame["easting"] >= cut]
    assert len(west) > 1000 and len(east) > 1000
    paths = [tmp_path / names[0], tmp_path / names[1]]
    west.to_csv(paths[0], index=False)
    east.to_csv(paths[1], index=False)
    return paths


def _sorted_rows(x, y, v):
    rows = np.column_stack([x, y, v])
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def test_adjacent_bursts_of_one_track_merge(tmp_path, l2b_022_frame):
    names = [f"{L2B_022}.csv", f"{L2B_022.replace('_0845_', '_0846_')}.csv"]
    paths = _split_by_easting(l2b_022_frame, tmp_path, names)
    datasets = read_inputs(paths)
    assert len(datasets) == 1
    (ds,) = datasets
    assert ds.attrs["track"] == "T022"
    assert ds.sizes["point"] == len(l2b_022_frame) == 11_590
    assert ds.attrs["sources"] == [str(p) for p in paths]
    assert describe_crs(ds) == "EPSG:3035"
    np.testing.assert_array_equal(
        _sorted_rows(ds["x"].values, ds["y"].values, ds["velocity"].values),
        _sorted_rows(l2b_022_frame["easting"], l2b_022_frame["northing"], l2b_022_frame["mean_velocity"].astype("f4")),
    )


def test_bursts_of_two_tracks_with_a_burst_split(tmp_path, l2b_022_frame, ustica_l2b_117_zip):
    names = [f"{L2B_022}.csv", f"{L2B_022.replace('_0845_', '_0846_')}.csv"]
    paths = _split_by_easting(l2b_022_frame, tmp_path, names)
    datasets = read_inputs([paths[0], ustica_l2b_117_zip, paths[1]])
    assert [ds.attrs["track"] for ds in datasets] == ["T022", "T117"]
    assert [ds.sizes["point"] for ds in datasets] == [11_590, 11_759]


def test_tables_without_track_are_joined(tmp_path, amsterdam_frame):
    half = len(amsterdam_frame) // 2
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    amsterdam_frame.iloc[:half].to_csv(a, index=False)
    amsterdam_frame.iloc[half:].to_csv(b, index=False)
    (ds,) = read_inputs([a, b])
    assert ds.sizes["point"] == 2_500
    assert describe_crs(ds) == "EPSG:32631"
    np.testing.assert_allclose(ds["velocity"].values, amsterdam_frame["pnt_linear"] * 1000.0, rtol=1e-6)


def test_lonlat_input_follows_a_declared_crs(tmp_path, ustica_l2b_022_zip, l2b_117_frame):
    # Points given in lon/lat join the CRS a file declares (EGMS easting/northing: EPSG:3035).
    path = tmp_path / "ustica_lonlat.csv"
    l2b_117_frame[["longitude", "latitude", "mean_velocity"]].to_csv(path, index=False)
    datasets = read_inputs([path, ustica_l2b_022_zip])
    assert [ds.attrs["track"] for ds in datasets] == ["", "T022"]
    assert all(points_crs(ds).to_epsg() == 3035 for ds in datasets)
    np.testing.assert_allclose(datasets[0]["x"].values, l2b_117_frame["easting"], atol=0.5)
    np.testing.assert_allclose(datasets[0]["y"].values, l2b_117_frame["northing"], atol=0.5)


def test_different_declared_crs_are_refused(tmp_path):
    # A GeoPackage in EPSG:27700 and an EGMS table (EPSG:3035 by its layout) both declare their CRS, and differ.
    bng = tmp_path / "bng.gpkg"
    gpd.GeoDataFrame({"velocity": [1.0]}, geometry=gpd.points_from_xy([530000.0], [180000.0]), crs=27700).to_file(bng)
    egms = tmp_path / f"{L2B_022}.csv"
    frame = pd.DataFrame({"pid": ["p"], "easting": [4598603.0], "northing": [1739722.0], "mean_velocity": [1.0]})
    frame.to_csv(egms, index=False)
    assert describe_crs(read_inputs([bng])[0]) == "EPSG:27700"
    assert describe_crs(read_inputs([egms])[0]) == "EPSG:3035"
    with pytest.raises(InputError, match="different CRSs"):
        read_inputs([bng, egms])


def test_points_and_rasters_are_not_mixed(ustica_l3_u_zip, ustica_l3_u_tiff):
    with pytest.raises(InputError, match="cannot mix"):
        read_inputs([ustica_l3_u_zip, ustica_l3_u_tiff])


def test_rasters_are_returned_one_per_input(ustica_l3_u_tiff, kirishima_velocity_h5):
    datasets = read_inputs([ustica_l3_u_tiff, kirishima_velocity_h5])
    assert [ds.attrs["track"] for ds in datasets] == ["L3-U", "Alos2-DESCENDING-23"]


def test_rasters_in_two_projected_crs_are_refused(tmp_path, ustica_l3_u_tiff):
    other = tmp_path / "utm.tif"
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 1, "dtype": "float32"}
    with rasterio.open(other, "w", crs="EPSG:32633", transform=Affine(100, 0, 3e5, 0, -100, 4.3e6), **profile) as dst:
        dst.write(np.ones((1, 2, 2), np.float32))
    with pytest.raises(InputError, match="different CRSs"):
        read_inputs([ustica_l3_u_tiff, other])


# --- detection ------------------------------------------------------------------------------------------------------


def test_detect_format_by_suffix(tmp_path):
    for name, kind in [("a.csv", "table"), ("a.TSV", "table"), ("a.parquet", "table"), ("a.zip", "table")] + [
        ("a.h5", "mintpy"),
        ("a.tif", "raster"),
        ("a.gpkg", "vector"),
        ("a.shp", "vector"),
    ]:
        path = tmp_path / name
        path.write_bytes(b"x")
        assert detect_format(path) == kind, name


def test_detect_format_refusals(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        detect_format(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="directory"):
        detect_format(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        detect_format(empty)
    unknown = tmp_path / "mystery"
    unknown.write_bytes(b"\x00\x01\x02\x03 not a known format")
    with pytest.raises(InputError, match="unknown format"):
        read_input(unknown)


def test_hdf5_detected_by_signature(tmp_path, kirishima_velocity_h5):
    bare = tmp_path / "velocity_file"
    bare.write_bytes(kirishima_velocity_h5.read_bytes())
    assert detect_format(bare) == "mintpy"
    assert read_input(bare)["velocity"].shape == (541, 541)


def test_zip_detected_by_signature(tmp_path, ustica_l3_u_zip):
    bare = tmp_path / "EGMS_L3_E45N17_100km_U_2020_2024_1.data"
    bare.write_bytes(ustica_l3_u_zip.read_bytes())
    assert detect_format(bare) == "table"
    ds = read_input(bare)
    assert ds.sizes["point"] == 522 and ds.attrs["track"] == "L3-U"


def test_corrupt_zip_is_refused(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="zip"):
        read_input(path)


# --- a file given twice (issue 24) ------------------------------------------------------------------------------


def test_a_file_given_twice_is_read_once(tmp_path, caplog):
    caplog.set_level("WARNING", logger="defoscan")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"lon": 4.9 + rng.uniform(0, 0.01, 50), "lat": 52.3 + rng.uniform(0, 0.01, 50)})
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    frame.assign(velocity=rng.normal(0, 2, 50)).to_csv(a, index=False)
    frame.assign(velocity=rng.normal(0, 2, 50)).to_csv(b, index=False)
    (tmp_path / "copy.csv").write_bytes(a.read_bytes())
    (tmp_path / "link.csv").symlink_to(a)
    again = tmp_path / "sub" / ".." / "a.csv"
    (tmp_path / "sub").mkdir()
    paths = [str(a), str(again), str(tmp_path / "link.csv"), str(tmp_path / "copy.csv"), str(b)]
    (points,) = read_inputs(paths)
    assert points.sizes["point"] == 100 and points.attrs["sources"] == [str(a), str(b)]
    assert [r.getMessage() for r in caplog.records] == [
        f"{again}: given twice (the same file as {a}): read once",
        f"{tmp_path / 'link.csv'}: given twice (the same file as {a}): read once",
        f"{tmp_path / 'copy.csv'}: the same content as {a}, given before it: read once",
    ]
