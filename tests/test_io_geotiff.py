"""GeoTIFF rasters: the real Kirishima height.tif and Ustica EGMS L3 U GeoTIFF read against rasterio, and the
rules for bands, units, nodata, CRS and orientation on small files written here."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from defoscan.errors import InputError
from defoscan.io import ReadOptions, detect_format, read_input
from defoscan.raster import raster_transform


def _write(path, arrays, *, crs="EPSG:32631", transform=None, nodata=None, descriptions=None, units=None, tags=None):
    arrays = np.asarray(arrays, dtype=np.float32)
    if arrays.ndim == 2:
        arrays = arrays[None]
    transform = transform or Affine(10.0, 0.0, 600_000.0, 0.0, -10.0, 5_800_000.0)
    profile = {
        "driver": "GTiff",
        "width": arrays.shape[2],
        "height": arrays.shape[1],
        "count": arrays.shape[0],
        "dtype": "float32",
        "transform": transform,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arrays)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
        for i, unit in enumerate(units or [], start=1):
            dst.set_band_unit(i, unit)
        if tags:
            dst.update_tags(**tags)
    return path


# --- real files ---------------------------------------------------------------------------------------------------


def test_kirishima_height_tif(kirishima_height_tif, tmp_path):
    assert detect_format(kirishima_height_tif) == "raster"
    # The file is a DEM (0-1700 m): read as velocities, most are faster than any InSAR map (issue 24).
    with pytest.raises(InputError, match="174,436 of 292,468 velocities are faster than 1 m/yr"):
        read_input(kirishima_height_tif)
    # Its georeferencing, read from a copy holding a thousandth of the heights (velocities of 0-1.7 mm/yr).
    with rasterio.open(kirishima_height_tif) as src:
        band = (src.read(1) / 1000.0).astype(np.float32)
        transform, crs = src.transform, src.crs
        profile = src.profile
    copy = tmp_path / "height_thousandths.tif"
    with rasterio.open(copy, "w", **{**profile, "dtype": "float32"}) as dst:
        dst.write(band, 1)
    ds = read_input(copy)
    assert ds["velocity"].shape == band.shape == (541, 541)
    assert tuple(raster_transform(ds))[:6] == pytest.approx(tuple(transform)[:6], abs=1e-12)
    assert CRS.from_user_input(ds.rio.crs).to_epsg() == crs.to_epsg() == 4326
    finite = np.isfinite(band)
    assert int(np.isfinite(ds["velocity"].values).sum()) == int(finite.sum())
    np.testing.assert_array_equal(ds["velocity"].values[finite], band[finite])
    # Same grid as the MintPy velocity of the same stack (X_FIRST is the corner in both).
    assert transform.c == pytest.approx(130.81990740749998) and transform.f == pytest.approx(31.9800925925)


@pytest.fixture(scope="module")
def l3_u_raster(ustica_l3_u_tiff):
    return read_input(ustica_l3_u_tiff)


def test_ustica_l3_tiff(l3_u_raster, ustica_l3_u_tiff):
    with rasterio.open(ustica_l3_u_tiff) as src:
        band = src.read(1)
        nodata, transform = src.nodata, src.transform
    assert nodata == -9999
    valid = band != nodata
    read = l3_u_raster["velocity"].values
    assert int(np.isfinite(read).sum()) == int(valid.sum()) == 522
    assert np.isnan(read[~valid]).all()
    np.testing.assert_array_equal(read[valid], band[valid])
    assert tuple(raster_transform(l3_u_raster))[:6] == tuple(transform)[:6] == (100, 0, 4_500_000, 0, -100, 1_800_000)
    assert CRS.from_user_input(l3_u_raster.rio.crs).to_epsg() == 3035
    assert l3_u_raster.attrs["track"] == "L3-U"
    assert int(l3_u_raster["count"].sum()) == 522


def test_ustica_l3_tiff_agrees_with_the_l3_csv(l3_u_raster, l3_u_frame):
    # Each L3 CSV point (a cell centre) falls in the GeoTIFF cell holding the same velocity.
    transform = raster_transform(l3_u_raster)
    cols = np.floor((l3_u_frame["easting"].to_numpy() - transform.c) / transform.a).astype(int)
    rows = np.floor((l3_u_frame["northing"].to_numpy() - transform.f) / transform.e).astype(int)
    values = l3_u_raster["velocity"].values[rows, cols]
    np.testing.assert_allclose(values, l3_u_frame["mean_velocity"].to_numpy(), atol=1e-6)
    assert len(set(zip(rows, cols, strict=True))) == 522


# --- rules on written files ---------------------------------------------------------------------------------------


def test_band_named_velocity_is_chosen(tmp_path):
    path = _write(tmp_path / "v.tif", [np.full((3, 4), 7.0), np.full((3, 4), 2.5)], descriptions=["height", "velocity"])
    ds = read_input(path)
    np.testing.assert_array_equal(ds["velocity"].values, np.full((3, 4), 2.5))


def test_band_1_without_descriptions(tmp_path):
    path = _write(tmp_path / "v.tif", [np.full((3, 4), 7.0), np.full((3, 4), 2.5)])
    np.testing.assert_array_equal(read_input(path)["velocity"].values, np.full((3, 4), 7.0))


@pytest.mark.parametrize(
    ("units", "tags", "option", "factor"),
    [
        (None, None, None, 1.0),
        (["m/yr"], None, None, 1000.0),
        (["cm/year"], None, None, 10.0),
        (None, {"units": "m/year"}, None, 1000.0),
        (["m/yr"], None, "mm/yr", 1.0),
    ],
)
def test_units(tmp_path, units, tags, option, factor):
    values = np.array([[0.001, -0.002], [0.5, 3.0]], np.float32)
    path = _write(tmp_path / "v.tif", values, units=units, tags=tags)
    ds = read_input(path, ReadOptions(units=option))
    np.testing.assert_allclose(ds["velocity"].values, values.astype(np.float64) * factor, rtol=1e-6)


def test_unknown_unit_is_refused(tmp_path):
    path = _write(tmp_path / "v.tif", np.ones((2, 2)), units=["furlongs/fortnight"])
    with pytest.raises(InputError, match="unknown velocity unit"):
        read_input(path)


def test_nodata_becomes_nan(tmp_path):
    values = np.array([[1.0, -9999.0], [np.nan, 4.0]], np.float32)
    ds = read_input(_write(tmp_path / "v.tif", values, nodata=-9999.0))
    np.testing.assert_array_equal(ds["velocity"].values, [[1.0, np.nan], [np.nan, 4.0]])
    np.testing.assert_array_equal(ds["count"].values, [[1, 0], [0, 1]])


@pytest.mark.parametrize("dtype", ["float32", "int16"])
def test_undeclared_fill_values_are_no_data(tmp_path, caplog, dtype):
    # Issue 24: a raster with no nodata tag and -9999 (or int16 -32768) where it has no data. -9999 mm/yr is within
    # the ±10 m/yr bound of a single value: it was gridded as a velocity.
    rng = np.random.default_rng(1)
    values = np.rint(rng.normal(0.0, 3.0, (20, 20))).astype(dtype)
    values[:5] = -9999
    values[5, :3] = -32768
    path = tmp_path / "v.tif"
    profile = {"driver": "GTiff", "width": 20, "height": 20, "count": 1, "dtype": dtype, "crs": "EPSG:32631"}
    with rasterio.open(path, "w", transform=Affine(10.0, 0, 6e5, 0, -10.0, 5.8e6), **profile) as dst:
        dst.write(values, 1)
    caplog.set_level("WARNING", logger="defoscan")
    ds = read_input(path)
    velocity = ds["velocity"].values
    assert np.isnan(velocity[:5]).all() and np.isnan(velocity[5, :3]).all()
    assert np.isfinite(velocity[6:]).all() and np.isfinite(velocity[5, 3:]).all()
    assert ds.attrs["fill_values"] == 103
    (message,) = [r.getMessage() for r in caplog.records]
    assert message == (
        f"{path}: 103 velocities of -32768 and -9999 (a common fill value) read as no data: the file declares no "
        "nodata value (pass --nodata V to name it)"
    )


def test_nodata_option_names_the_fill_value(tmp_path, caplog):
    values = np.full((20, 20), 2.0, np.float32)
    values[::2, ::2] = 0.5
    values[:4] = -999.0  # not a guessed fill value: named with --nodata
    values[4, :2] = -9999.0  # a guessed one, but --nodata says which value marks no data
    path = _write(tmp_path / "v.tif", values)
    caplog.set_level("WARNING", logger="defoscan")
    ds = read_input(path, ReadOptions(nodata=-999.0))
    assert np.isnan(ds["velocity"].values[:4]).all() and ds.attrs["fill_values"] == 80
    assert np.isfinite(ds["velocity"].values[4:]).all()  # -9999 mm/yr is a value now (the user said so)
    assert not caplog.records  # what the user asked for is a stage message, not a warning
    # ... and a whole row of them is too many velocities beyond 1 m/yr to be a map in mm/yr.
    values[4] = -9999.0
    with pytest.raises(InputError, match="20 of 320 velocities are faster than 1 m/yr .* --nodata V or --units"):
        read_input(_write(tmp_path / "u.tif", values), ReadOptions(nodata=-999.0))
    values[4] = 2.0
    # A declared nodata tag is kept, and --nodata adds to it.
    values[4] = 7.0
    ds = read_input(_write(tmp_path / "w.tif", values, nodata=7.0), ReadOptions(nodata=-999.0))
    assert np.isnan(ds["velocity"].values[:5]).all() and np.isfinite(ds["velocity"].values[5:]).all()


def test_a_declared_nodata_stops_the_guessing(tmp_path):
    values = np.full((2, 2), 1.0, np.float32)
    values[0, 0], values[1, 1] = -9999.0, np.nan
    ds = read_input(_write(tmp_path / "v.tif", values, nodata=np.nan))
    assert ds["velocity"].values[0, 0] == -9999.0 and "fill_values" not in ds.attrs


def test_every_cell_a_fill_value_is_one_line(tmp_path, caplog):
    caplog.set_level("WARNING", logger="defoscan")
    with pytest.raises(InputError, match="every velocity is the fill value -9999: no valid data"):
        read_input(_write(tmp_path / "v.tif", np.full((3, 3), -9999.0)))
    assert not caplog.records


def test_no_crs_needs_crs_option(tmp_path):
    path = _write(tmp_path / "v.tif", np.ones((2, 2)), crs=None)
    with pytest.raises(InputError, match="no CRS"):
        read_input(path)
    ds = read_input(path, ReadOptions(crs="EPSG:27700"))
    assert CRS.from_user_input(ds.rio.crs).to_epsg() == 27700


@pytest.mark.parametrize(
    "transform",
    [Affine(10.0, 0.0, 600_000.0, 0.0, 10.0, 5_800_000.0), Affine(10.0, 1.0, 600_000.0, 1.0, -10.0, 5_800_000.0)],
)
def test_south_up_or_rotated_is_refused(tmp_path, transform):
    path = _write(tmp_path / "v.tif", np.ones((2, 2)), transform=transform)
    with pytest.raises(InputError, match="north-up"):
        read_input(path)


def test_corrupt_tiff_is_refused(tmp_path):
    path = tmp_path / "v.tif"
    path.write_bytes(b"II*\x00" + b"\x00" * 64)
    with pytest.raises(InputError, match="raster"):
        read_input(path)


def test_tiff_detected_by_signature_without_suffix(tmp_path):
    path = _write(tmp_path / "v.tif", np.full((2, 3), 4.0))
    bare = tmp_path / "velocity_map"
    bare.write_bytes(path.read_bytes())
    assert detect_format(bare) == "raster"
    np.testing.assert_array_equal(read_input(bare)["velocity"].values, np.full((2, 3), 4.0))


def test_geotiff_transform_and_coordinates(tmp_path):
    ds = read_input(_write(tmp_path / "v.tif", np.arange(6.0).reshape(2, 3)))
    np.testing.assert_array_equal(ds["x"].values, [600_005.0, 600_015.0, 600_025.0])
    np.testing.assert_array_equal(ds["y"].values, [5_799_995.0, 5_799_985.0])
    assert CRS.from_user_input(ds.rio.crs).to_epsg() == 32631
