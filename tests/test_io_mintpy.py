"""MintPy HDF5: the real Kirishima velocity.h5 against h5py, its georeferencing, and files it must refuse."""

import h5py
import numpy as np
import pytest
from pyproj import CRS

from defoscan.errors import InputError
from defoscan.io import ReadOptions, detect_format, read_input
from defoscan.io.mintpy import is_hdf5, read_mintpy
from defoscan.raster import raster_transform


@pytest.fixture(scope="module")
def h5_content(kirishima_velocity_h5):
    with h5py.File(kirishima_velocity_h5, "r") as handle:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
        return handle["velocity"][()], handle["velocityStd"][()], attrs


@pytest.fixture(scope="module")
def kirishima(kirishima_velocity_h5):
    return read_input(kirishima_velocity_h5)


def test_detected_as_mintpy(kirishima_velocity_h5, kirishima_coherence_h5):
    assert detect_format(kirishima_velocity_h5) == "mintpy"
    assert is_hdf5(kirishima_velocity_h5) and is_hdf5(kirishima_coherence_h5)


def test_shape_crs_and_track(kirishima, h5_content):
    velocity, _, attrs = h5_content
    assert kirishima["velocity"].shape == velocity.shape == (541, 541)
    assert CRS.from_user_input(kirishima.rio.crs).to_epsg() == 4326
    assert kirishima.attrs["track"] == "Alos2-DESCENDING-23"
    assert attrs["UNIT"] == "m/year"


def test_velocity_in_mm_per_year_and_zero_is_nodata_except_the_reference(kirishima, h5_content):
    velocity, std, attrs = h5_content
    nodata = (velocity == 0) | ~np.isfinite(velocity)
    ref = int(attrs["REF_Y"]), int(attrs["REF_X"])
    assert velocity[ref] == 0  # the reference pixel is zero by construction, and it is data
    nodata[ref] = False
    read = kirishima["velocity"].values
    assert read[ref] == 0.0
    assert int(np.isfinite(read).sum()) == int((~nodata).sum()) == 291_656
    assert np.isnan(read[nodata]).all()
    np.testing.assert_allclose(read[~nodata], velocity[~nodata].astype(np.float64) * 1000.0, rtol=1e-6)
    np.testing.assert_allclose(
        kirishima["velocity_std"].values[~nodata], std[~nodata].astype(np.float64) * 1000.0, rtol=1e-6
    )
    assert kirishima["velocity"].attrs["units"] == "mm/yr"
    np.testing.assert_array_equal(kirishima["count"].values, (~nodata).astype(np.int32))


def test_known_pixel(kirishima, h5_content):
    velocity, _, _ = h5_content
    # The fastest pixel of the map (the Shinmoedake crater signal), value taken from h5py directly.
    row, col = np.unravel_index(np.nanargmax(np.abs(np.where(velocity == 0, np.nan, velocity))), velocity.shape)
    assert kirishima["velocity"].values[row, col] == pytest.approx(float(velocity[row, col]) * 1000.0, rel=1e-6)
    assert abs(float(velocity[row, col])) > 0.05  # more than 50 mm/yr: a real signal, not noise
    lon, lat = raster_transform(kirishima) @ (col + 0.5, row + 0.5)
    assert lat == pytest.approx(31.911, abs=0.01) and lon == pytest.approx(130.883, abs=0.01)


def test_transform_is_the_pixel_corner(kirishima, h5_content):
    _, _, attrs = h5_content
    transform = raster_transform(kirishima)
    assert transform.c == pytest.approx(float(attrs["X_FIRST"]), abs=1e-12)
    assert transform.f == pytest.approx(float(attrs["Y_FIRST"]), abs=1e-12)
    assert transform.a == pytest.approx(float(attrs["X_STEP"]), rel=1e-12)
    assert transform.e == pytest.approx(float(attrs["Y_STEP"]), rel=1e-12)
    # The reference pixel's centre is REF_LON/REF_LAT: X_FIRST is the corner, not the centre, of the first pixel.
    lon, lat = transform @ (int(attrs["REF_X"]) + 0.5, int(attrs["REF_Y"]) + 0.5)
    assert lon == pytest.approx(float(attrs["REF_LON"]), abs=1e-7)
    assert lat == pytest.approx(float(attrs["REF_LAT"]), abs=1e-7)
    # Cell-centre coordinates of the dataset agree.
    assert float(kirishima["x"][int(attrs["REF_X"])]) == pytest.approx(float(attrs["REF_LON"]), abs=1e-7)
    assert float(kirishima["y"][int(attrs["REF_Y"])]) == pytest.approx(float(attrs["REF_LAT"]), abs=1e-7)


def test_units_option_overrides(kirishima_velocity_h5, h5_content):
    velocity, _, _ = h5_content
    ds = read_mintpy(str(kirishima_velocity_h5), ReadOptions(units="cm/yr"))
    valid = velocity != 0
    np.testing.assert_allclose(ds["velocity"].values[valid], velocity[valid].astype(np.float64) * 10.0, rtol=1e-6)


def test_temporal_coherence_is_refused(kirishima_coherence_h5):
    with pytest.raises(InputError, match="no 'velocity' dataset") as err:
        read_input(kirishima_coherence_h5)
    assert "temporalCoherence" in str(err.value)
    assert err.value.path == str(kirishima_coherence_h5)


def test_not_geocoded_is_refused(tmp_path):
    path = tmp_path / "velocity.h5"
    with h5py.File(path, "w") as handle:
        handle["velocity"] = np.ones((4, 5), np.float32)
        handle.attrs["UNIT"] = "m/year"
    with pytest.raises(InputError, match="not geocoded"):
        read_input(path)


def test_three_dimensional_velocity_is_refused(tmp_path):
    path = tmp_path / "velocity.h5"
    with h5py.File(path, "w") as handle:
        handle["velocity"] = np.ones((2, 4, 5), np.float32)
    with pytest.raises(InputError, match="dimensions"):
        read_input(path)


def test_corrupt_hdf5_is_refused(tmp_path):
    path = tmp_path / "velocity.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(InputError, match="HDF5"):
        read_input(path)


def test_projected_mintpy_with_epsg(tmp_path):
    path = tmp_path / "velocity_utm.h5"
    values = np.array([[0.0, 0.01], [-0.002, np.nan]], np.float32)
    with h5py.File(path, "w") as handle:
        handle["velocity"] = values
        handle.attrs.update(
            {"X_FIRST": "500000", "Y_FIRST": "3500000", "X_STEP": "30", "Y_STEP": "-30", "EPSG": "32652"}
        )
        handle.attrs["UNIT"] = "m/year"
    ds = read_input(path)
    assert CRS.from_user_input(ds.rio.crs).to_epsg() == 32652
    assert tuple(raster_transform(ds))[:6] == (30.0, 0.0, 500000.0, 0.0, -30.0, 3500000.0)
    np.testing.assert_allclose(ds["velocity"].values, [[np.nan, 10.0], [-2.0, np.nan]], rtol=1e-6)
    assert ds.attrs["track"] == ""
    assert "velocity_std" not in ds


def write_geocoded(path, shape=(4, 5), **attrs):
    """A small geocoded velocity.h5 (lon/lat, 0.001 degree pixels) with ``attrs`` replacing or adding attributes."""
    header = {"X_FIRST": "130.8", "Y_FIRST": "31.95", "X_STEP": "0.001", "Y_STEP": "-0.001", "UNIT": "m/year"}
    header.update(WIDTH=str(shape[1]), LENGTH=str(shape[0]))
    header.update(attrs)
    with h5py.File(path, "w") as handle:
        handle["velocity"] = np.full(shape, 0.001, np.float32)
        for key, value in header.items():
            if value is not None:
                handle.attrs[key] = value
    return path


def test_a_well_formed_header_reads(tmp_path):
    ds = read_input(write_geocoded(tmp_path / "velocity.h5", X_STEP=np.float64(0.001), EPSG="4326", REF_Y="1"))
    assert tuple(raster_transform(ds))[:6] == pytest.approx((0.001, 0.0, 130.8, 0.0, -0.001, 31.95), abs=1e-9)


@pytest.mark.parametrize(
    ("attrs", "says"),
    [
        ({"X_STEP": "abc"}, "MintPy attribute X_STEP is 'abc', not a number"),
        ({"Y_FIRST": ""}, "MintPy attribute Y_FIRST is '', not a number"),
        ({"X_STEP": "0"}, "MintPy attribute X_STEP is '0': a pixel size cannot be 0"),
        ({"Y_STEP": "-0.0"}, "MintPy attribute Y_STEP is '-0.0': a pixel size cannot be 0"),
        ({"X_FIRST": "nan"}, "MintPy attribute X_FIRST is 'nan', not a finite number"),
        ({"Y_STEP": "inf"}, "MintPy attribute Y_STEP is 'inf', not a finite number"),
        ({"X_STEP": np.array([0.001, 0.002])}, "MintPy attribute X_STEP is array([0.001, 0.002]), not a number"),
        ({"WIDTH": "abc"}, "MintPy attribute WIDTH is 'abc', not a number"),
        ({"WIDTH": "6"}, "MintPy attribute WIDTH is '6', but 'velocity' has 5 columns"),
        ({"LENGTH": "4.5"}, "MintPy attribute LENGTH is '4.5', not a whole number"),
        ({"EPSG": "abc"}, "MintPy attribute EPSG is 'abc', not a number"),
        ({"EPSG": "999999"}, "MintPy attribute EPSG is '999999', not an EPSG code PROJ knows"),
        ({"REF_Y": "abc", "REF_X": "1"}, "MintPy attribute REF_Y is 'abc', not a number"),
        ({"X_FIRST": "1e308", "X_STEP": "1e308"}, "X_STEP '1e308' and Y_STEP '-0.001' make degenerate pixels"),
        ({"X_STEP": "1e-300"}, "X_STEP '1e-300' and Y_STEP '-0.001' make degenerate pixels"),
        ({"Y_FIRST": "95"}, "put the grid at latitude 95, out of [-90, 90]"),
        ({"X_FIRST": "500000", "X_STEP": "30"}, "put the grid at longitude 500150, out of [-180, 360]"),
    ],
)
def test_malformed_attributes_are_named(tmp_path, attrs, says):
    path = write_geocoded(tmp_path / "velocity.h5", **attrs)
    with pytest.raises(InputError) as err:
        read_input(path)
    assert err.value.path == str(path)
    assert says in err.value.problem


def test_empty_velocity_is_refused(tmp_path):
    path = write_geocoded(tmp_path / "velocity.h5", shape=(0, 5))
    with pytest.raises(InputError, match=r"'velocity' is empty \(0 x 5 pixels\)"):
        read_input(path)
