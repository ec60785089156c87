"""What readers drop: invalid velocities, duplicated columns, low coherence, points outside --bbox."""

import logging
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from defoscan.errors import InputError
from defoscan.io import ReadOptions, read_input, read_inputs
from defoscan.io.filters import MAX_SPEED_MM_YR, BBox
from defoscan.io.table import open_table, stream_table

LON = np.array([4.90, 4.91, 4.92, 4.93, 4.94, 4.95])
LAT = np.array([52.30, 52.31, 52.32, 52.33, 52.34, 52.35])


def _csv(path, columns):
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def _streamed(path, options):
    stream = stream_table(open_table(path, options), options)
    velocity = np.concatenate([v for _, _, v in stream.batches])
    return velocity, stream.counts


@pytest.fixture
def warnings_logged(caplog):
    caplog.set_level(logging.WARNING, logger="defoscan")
    return caplog


# --- invalid velocities ----------------------------------------------------------------------------------------


def test_invalid_velocities_dropped_counted_and_warned_once(tmp_path, warnings_logged):
    velocity = [1.5, 1e30, -np.inf, -20_000.0, np.nan, -2.0]
    path = _csv(tmp_path / "p.csv", {"lon": LON, "lat": LAT, "velocity": velocity})
    ds = read_input(path)
    np.testing.assert_allclose(np.sort(ds["velocity"].values), [-2.0, 1.5])
    assert ds.attrs["invalid_velocities"] == 3
    messages = [r.getMessage() for r in warnings_logged.records]
    assert messages == [f"{path}: 3 velocities beyond ±10 m/yr or not finite were dropped as invalid"]
    streamed, counts = _streamed(path, ReadOptions())
    np.testing.assert_allclose(np.sort(streamed), [-2.0, 1.5])
    assert counts == {"invalid_velocities": 3}


def test_the_limit_applies_after_unit_conversion(tmp_path):
    # 9 m/yr is kept, 11 m/yr is not: the limit is 10 m/yr whatever the file's unit.
    path = _csv(tmp_path / "p.csv", {"lon": LON[:3], "lat": LAT[:3], "velocity_m_yr": [9.0, -11.0, 0.001]})
    ds = read_input(path)
    np.testing.assert_allclose(np.sort(ds["velocity"].values), [1.0, 9000.0], rtol=1e-6)
    assert ds.attrs["invalid_velocities"] == 1
    assert MAX_SPEED_MM_YR == 10_000.0


def test_all_velocities_invalid_is_one_line(tmp_path, warnings_logged):
    path = _csv(tmp_path / "p.csv", {"lon": LON[:2], "lat": LAT[:2], "velocity": [1e30, np.inf]})
    with pytest.raises(InputError, match="beyond ±10 m/yr or not finite: no valid data"):
        read_input(path)
    with pytest.raises(InputError, match="no valid data"):
        _streamed(path, ReadOptions())
    raster = tmp_path / "v.tif"
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 1, "dtype": "float32", "crs": "EPSG:32631"}
    with rasterio.open(raster, "w", transform=Affine(100, 0, 5e5, 0, -100, 5.8e6), **profile) as dst:
        dst.write(np.full((2, 2), 1e30, np.float32), 1)
    with pytest.raises(InputError, match="no valid data"):
        read_input(raster)
    assert not warnings_logged.records  # the error is the one line: no warning about the same values before it


def test_all_nan_velocities_keep_their_message(tmp_path):
    path = _csv(tmp_path / "p.csv", {"lon": LON[:2], "lat": LAT[:2], "velocity": [np.nan, np.nan]})
    with pytest.raises(InputError, match="no row has finite coordinates"):
        read_input(path)


def test_invalid_counts_summed_over_the_files_of_a_track(tmp_path):
    a = _csv(tmp_path / "a.csv", {"lon": LON[:3], "lat": LAT[:3], "velocity": [1.0, 1e30, 2.0]})
    b = _csv(tmp_path / "b.csv", {"lon": LON[3:], "lat": LAT[3:], "velocity": [1e31, 1e32, 2.0]})
    (track,) = read_inputs([a, b])
    assert track.sizes["point"] == 3
    assert track.attrs["invalid_velocities"] == 3


TIF_TRANSFORM = Affine(100.0, 0, 600_000.0, 0, -100.0, 5_800_000.0)


def _write_tif(path, values, crs="EPSG:32631", transform=TIF_TRANSFORM):
    with rasterio.open(
        path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1, dtype="float32",
        crs=crs, transform=transform, nodata=np.nan,
    ) as dst:  # fmt: skip
        dst.write(values.astype(np.float32), 1)
    return path


def test_geotiff_invalid_cells_dropped(tmp_path, warnings_logged):
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    values[0, 0], values[1, 2], values[2, 3] = 1e30, -np.inf, np.nan
    ds = read_input(_write_tif(tmp_path / "v.tif", values))
    assert int(np.isfinite(ds["velocity"].values).sum()) == 9
    assert ds.attrs["invalid_velocities"] == 2
    assert len(warnings_logged.records) == 1


def _write_mintpy(path, velocity):
    with h5py.File(path, "w") as handle:
        handle["velocity"] = velocity.astype(np.float32)
        handle.attrs.update({"X_FIRST": 130.0, "Y_FIRST": 32.0, "X_STEP": 0.001, "Y_STEP": -0.001, "UNIT": "m/year"})
    return path


def test_mintpy_invalid_cells_dropped(tmp_path):
    velocity = np.full((4, 5), 0.01)
    velocity[1, 1], velocity[2, 2] = 1e30, 12.0  # 12 m/yr
    ds = read_input(_write_mintpy(tmp_path / "velocity.h5", velocity))
    assert int(np.isfinite(ds["velocity"].values).sum()) == 18
    assert ds.attrs["invalid_velocities"] == 2


def test_no_library_warning_reaches_stderr_through_detect(tmp_path):
    # Before invalid velocities were dropped, this scene made numpy print "RuntimeWarning: overflow encountered
    # in dot" (a tenth of its points at 1e30 reach the solvers).
    rng = np.random.default_rng(0)
    lon = 4.90 + rng.uniform(0, 0.1, 20_000)
    lat = 52.30 + rng.uniform(0, 0.06, 20_000)
    velocity = rng.normal(0, 1, 20_000)
    velocity[:2000] = 1e30
    velocity[:4] = [-1e30, np.inf, 5e4, 1e38]
    path = _csv(tmp_path / "p.csv", {"lon": lon, "lat": lat, "velocity": velocity})
    code = (
        "import sys; from defoscan.cli import main; "
        f"sys.exit(main(['detect', {str(path)!r}, '--out', {str(tmp_path / 'out')!r}, '--detector', 'threshold']))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr and "Warning:" not in done.stderr, done.stderr
    assert "2000 velocities beyond ±10 m/yr or not finite were dropped as invalid" in done.stderr


# --- duplicate columns ------------------------------------------------------------------------------------------


def test_duplicated_velocity_column_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat,velocity,velocity\n4.9,52.3,1.0,2.0\n")
    with pytest.raises(InputError, match="the header has 2 columns named 'velocity' \\(velocity\\)") as err:
        read_input(path)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="naming it with an option cannot choose between them"):
        read_input(path, ReadOptions(columns={"velocity": "velocity"}))


def test_duplicated_coordinate_column_refused_streamed_too(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,LAT,lat,velocity\n4.9,52.3,52.4,1.0\n")
    with pytest.raises(InputError, match="2 columns named 'lat'"):
        _streamed(path, ReadOptions())


def test_duplicates_among_unread_columns_are_fine(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("lon,lat,velocity,note,note\n4.9,52.3,1.5,a,b\n4.91,52.31,-2.0,c,d\n")
    np.testing.assert_allclose(np.sort(read_input(path)["velocity"].values), [-2.0, 1.5])


# --- min_coherence ------------------------------------------------------------------------------------------------


def test_min_coherence_on_a_table(tmp_path):
    coherence = [0.9, 0.5, 0.71, 0.7, np.nan, 0.95]
    path = _csv(tmp_path / "p.csv", {"lon": LON, "lat": LAT, "velocity": np.arange(6.0), "coh": coherence})
    options = ReadOptions(min_coherence=0.7)
    ds = read_input(path, options)
    np.testing.assert_allclose(np.sort(ds["velocity"].values), [0.0, 2.0, 3.0, 5.0])
    assert ds.attrs["low_coherence_dropped"] == 2
    velocity, counts = _streamed(path, options)
    np.testing.assert_allclose(np.sort(velocity), [0.0, 2.0, 3.0, 5.0])
    assert counts["low_coherence_dropped"] == 2
    with pytest.raises(InputError, match="no point has a coherence of at least 0.99"):
        read_input(path, ReadOptions(min_coherence=0.99))


def test_min_coherence_without_a_coherence_column(tmp_path):
    path = _csv(tmp_path / "p.csv", {"lon": LON, "lat": LAT, "velocity": np.arange(6.0)})
    with pytest.raises(InputError, match="--min-coherence needs a coherence column; none found .*temporal_coherence"):
        read_input(path, ReadOptions(min_coherence=0.7))


def test_min_coherence_on_egms_ustica(ustica_l2b_022_zip):
    with zipfile.ZipFile(ustica_l2b_022_zip) as archive:
        (member,) = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        with archive.open(member) as handle:
            frame = pd.read_csv(handle, usecols=["easting", "northing", "mean_velocity", "temporal_coherence"])
    usable = frame.dropna(subset=["easting", "northing", "mean_velocity"])
    expected_low = int((~(usable["temporal_coherence"] >= 0.8)).sum())
    assert 0 < expected_low < len(usable)
    options = ReadOptions(min_coherence=0.8)
    ds = read_input(ustica_l2b_022_zip, options)
    assert ds.attrs["low_coherence_dropped"] == expected_low
    assert ds.sizes["point"] == len(usable) - expected_low
    velocity, counts = _streamed(ustica_l2b_022_zip, options)
    assert velocity.size == len(usable) - expected_low and counts["low_coherence_dropped"] == expected_low


def test_min_coherence_on_mintpy_kirishima(kirishima_velocity_h5, kirishima_coherence_h5):
    with h5py.File(kirishima_velocity_h5, "r") as handle:
        velocity = handle["velocity"][()]
        ref = int(handle.attrs["REF_Y"]), int(handle.attrs["REF_X"])
    with h5py.File(kirishima_coherence_h5, "r") as handle:
        coherence = handle["temporalCoherence"][()]
    data = (velocity != 0) & np.isfinite(velocity)
    data[ref] = True
    expected_low = int((data & ~(coherence >= 0.9)).sum())
    assert 0 < expected_low < int(data.sum())
    ds = read_input(kirishima_velocity_h5, ReadOptions(min_coherence=0.9))
    assert ds.attrs["low_coherence_dropped"] == expected_low
    assert int(np.isfinite(ds["velocity"].values).sum()) == int(data.sum()) - expected_low


def test_min_coherence_mintpy_needs_the_coherence_file(tmp_path):
    path = _write_mintpy(tmp_path / "velocity.h5", np.full((3, 3), 0.01))
    with pytest.raises(InputError, match="temporalCoherence.h5 .*missing"):
        read_input(path, ReadOptions(min_coherence=0.5))


def test_min_coherence_refused_for_geotiff(tmp_path):
    path = _write_tif(tmp_path / "v.tif", np.ones((2, 2)))
    with pytest.raises(InputError, match="--min-coherence is not supported for GeoTIFF"):
        read_input(path, ReadOptions(min_coherence=0.5))


# --- bbox ---------------------------------------------------------------------------------------------------------


def test_bbox_in_lonlat(tmp_path):
    path = _csv(tmp_path / "p.csv", {"lon": LON, "lat": LAT, "velocity": np.arange(6.0)})
    options = ReadOptions(bbox=(4.905, 4.935, 52.0, 53.0))  # lon 4.91, 4.92, 4.93 inside
    ds = read_input(path, options)
    np.testing.assert_allclose(np.sort(ds["velocity"].values), [1.0, 2.0, 3.0])
    assert ds.attrs["outside_bbox"] == 3
    velocity, counts = _streamed(path, options)
    np.testing.assert_allclose(np.sort(velocity), [1.0, 2.0, 3.0])
    assert counts["outside_bbox"] == 3


def test_bbox_in_a_projected_crs(tmp_path):
    path = _csv(tmp_path / "p.csv", {"lon": LON, "lat": LAT, "velocity": np.arange(6.0)})
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(LON, LAT)
    bbox = (x[0] - 1, x[1] + 1, y[0] - 1, y[1] + 1)  # the first two points, in UTM 31N metres
    ds = read_input(path, ReadOptions(bbox=bbox, bbox_crs="EPSG:32631"))
    np.testing.assert_allclose(np.sort(ds["velocity"].values), [0.0, 1.0])


def test_bbox_of_easting_northing_tested_in_lonlat(tmp_path):
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(LON, LAT)
    path = _csv(tmp_path / "p.csv", {"easting": x, "northing": y, "velocity": np.arange(6.0)})
    ds = read_input(path, ReadOptions(crs="EPSG:32631", bbox=(4.0, 5.0, 52.335, 53.0)))
    np.testing.assert_allclose(np.sort(ds["velocity"].values), [4.0, 5.0])


def test_bbox_with_no_point_inside(tmp_path):
    path = _csv(tmp_path / "p.csv", {"lon": LON, "lat": LAT, "velocity": np.arange(6.0)})
    with pytest.raises(InputError, match="no points inside --bbox 10 11 40 41"):
        read_input(path, ReadOptions(bbox=(10, 11, 40, 41)))


@pytest.mark.parametrize(
    ("bbox", "problem"),
    [
        ((5, 4, 52, 53), "west < east"),
        ((4, 5, 53, 52), "south < north"),
        ((170, 190, 52, 53), "longitude must lie in"),
        ((4, 5, -95, 53), "latitude"),
    ],
)
def test_invalid_bbox(bbox, problem):
    with pytest.raises(InputError, match=problem):
        BBox(ReadOptions(bbox=bbox))


def test_bbox_on_a_raster(tmp_path):
    # cells 100 m wide from easting 600,000: centres 600,050 ... 600,350; rows 5,799,950 and 5,799,850.
    path = _write_tif(tmp_path / "v.tif", np.ones((2, 4)))
    ds = read_input(path, ReadOptions(bbox=(600_100, 600_300, 5_799_900, 5_800_000), bbox_crs="EPSG:32631"))
    assert ds.attrs["outside_bbox"] == 6
    # Cropped to the two cells inside: the first row, columns 1 and 2.
    np.testing.assert_allclose(ds["velocity"].values, [[1.0, 1.0]])
    np.testing.assert_allclose(ds["x"].values, [600_150.0, 600_250.0])
    np.testing.assert_allclose(ds["y"].values, [5_799_950.0])


def test_bbox_in_lonlat_on_kirishima(kirishima_velocity_h5):
    with h5py.File(kirishima_velocity_h5, "r") as handle:
        x_first, y_first = float(handle.attrs["X_FIRST"]), float(handle.attrs["Y_FIRST"])
        step_x, step_y = float(handle.attrs["X_STEP"]), float(handle.attrs["Y_STEP"])
    # Cell centres at x_first + (i + 0.5) * step: columns 100..199 and rows 50..149 lie inside.
    west, east = x_first + 100.2 * step_x, x_first + 199.8 * step_x
    north, south = y_first + 50.2 * step_y, y_first + 149.8 * step_y
    ds = read_input(kirishima_velocity_h5, ReadOptions(bbox=(west, east, south, north)))
    assert ds["velocity"].shape == (100, 100)
    np.testing.assert_allclose(ds["x"].values[0], x_first + 100.5 * step_x)
    np.testing.assert_allclose(ds["y"].values[0], y_first + 50.5 * step_y)
    full = read_input(kirishima_velocity_h5)
    np.testing.assert_array_equal(ds["velocity"].values, full["velocity"].values[50:150, 100:200])


def test_vector_file_filtered_like_a_table(tmp_path):
    geopandas = pytest.importorskip("geopandas")
    frame = geopandas.GeoDataFrame(
        {"velocity": [1.0, 1e30, 3.0, 4.0], "coherence": [0.9, 0.9, 0.2, 0.9]},
        geometry=geopandas.points_from_xy(LON[:4], LAT[:4]),
        crs="EPSG:4326",
    )
    path = tmp_path / "points.gpkg"
    frame.to_file(path)
    ds = read_input(path, ReadOptions(min_coherence=0.5, bbox=(4.0, 4.925, 52.0, 53.0)))
    np.testing.assert_allclose(ds["velocity"].values, [1.0])  # 1e30 invalid, 3.0 incoherent, 4.0 outside
    assert (ds.attrs["invalid_velocities"], ds.attrs["low_coherence_dropped"], ds.attrs["outside_bbox"]) == (1, 1, 1)


# --- fill values and plausibility (issue 24) ----------------------------------------------------------------------


def _scattered(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return {"lon": 4.9 + rng.uniform(0, 0.05, n), "lat": 52.3 + rng.uniform(0, 0.05, n)}, rng


def test_table_fill_values_are_no_data_in_memory_and_streamed(tmp_path, warnings_logged):
    columns, rng = _scattered()
    velocity = rng.normal(0.0, 2.0, 400)
    velocity[:30] = -9999.0
    path = _csv(tmp_path / "p.csv", {**columns, "velocity": velocity})
    ds = read_input(path)
    assert ds.sizes["point"] == 370 and ds.attrs["fill_values"] == 30
    streamed, counts = _streamed(path, ReadOptions())
    assert streamed.size == 370 and counts["fill_values"] == 30
    messages = [r.getMessage() for r in warnings_logged.records]
    assert messages == [f"{path}: 30 velocities of -9999 (a common fill value) read as no data: the file declares no "
                        "nodata value (pass --nodata V to name it)"] * 2  # fmt: skip
    # --nodata names the value: -1001 is no data then, and -9999 a velocity (30 beyond 1 m/yr: too many for mm/yr).
    velocity[30:35] = -1001.0
    path = _csv(tmp_path / "q.csv", {**columns, "velocity": velocity})
    with pytest.raises(InputError, match="30 of 395 velocities are faster than 1 m/yr"):
        read_input(path, ReadOptions(nodata=-1001.0))
    velocity[:30] = 1.0
    ds = read_input(_csv(tmp_path / "r.csv", {**columns, "velocity": velocity}), ReadOptions(nodata=-1001.0))
    assert ds.sizes["point"] == 395 and ds.attrs["fill_values"] == 5


def test_vector_fill_values_are_no_data(tmp_path, warnings_logged):
    gpd = pytest.importorskip("geopandas")
    shapely = pytest.importorskip("shapely")
    columns, rng = _scattered()
    velocity = rng.normal(0.0, 2.0, 400)
    velocity[:5] = -9999.0
    frame = gpd.GeoDataFrame({"velocity": velocity}, geometry=shapely.points(columns["lon"], columns["lat"]), crs=4326)
    frame.to_file(tmp_path / "p.gpkg")
    ds = read_input(tmp_path / "p.gpkg")
    assert ds.sizes["point"] == 395 and ds.attrs["fill_values"] == 5
    assert "5 velocities of -9999 (a common fill value) read as no data" in warnings_logged.records[0].getMessage()


def test_every_value_a_fill_value_is_one_line(tmp_path, warnings_logged):
    path = _csv(tmp_path / "p.csv", {"lon": LON, "lat": LAT, "velocity": [-9999.0] * 6})
    with pytest.raises(InputError, match="every velocity is the fill value -9999: no valid data"):
        read_input(path)
    with pytest.raises(InputError, match="every velocity is the fill value -9999"):
        _streamed(path, ReadOptions())
    with pytest.raises(InputError, match="every velocity is --nodata 3: no valid data"):
        read_input(_csv(tmp_path / "q.csv", {"lon": LON, "lat": LAT, "velocity": [3.0] * 6}), ReadOptions(nodata=3))
    assert not warnings_logged.records


@pytest.mark.parametrize("streamed", [False, True])
def test_millimetres_read_as_metres_are_refused(tmp_path, warnings_logged, streamed):
    # Issue 24: a map in mm/yr given --units m/yr. Its velocities of ±27 mm/yr became ±27,000 mm/yr: those beyond
    # ±10 m/yr were dropped as invalid, the rest (most of the map) gridded.
    columns, rng = _scattered(2000)
    velocity = np.clip(rng.normal(0.0, 4.0, 2000), -27, 27)
    path = _csv(tmp_path / "p.csv", {**columns, "velocity": velocity})
    options = ReadOptions(units="m/yr")
    with pytest.raises(InputError) as error:
        _streamed(path, options) if streamed else read_input(path, options)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "velocities are faster than 1 m/yr read in m/yr (--units)" in message
    assert message.endswith("is the unit wrong? if the file holds mm/yr, pass --units mm/yr")
    assert not warnings_logged.records  # the one line, not the invalid values' warning before it
    assert read_input(path).sizes["point"] == 2000  # read in its own unit, all of it


def test_a_few_fast_values_are_spikes_not_a_unit(tmp_path):
    columns, rng = _scattered(2000)
    velocity = rng.normal(0.0, 2.0, 2000)
    velocity[:15] = 3000.0  # 0.75 %: within the 1 % a map may have beyond 1 m/yr
    ds = read_input(_csv(tmp_path / "p.csv", {**columns, "velocity": velocity}))
    assert ds.sizes["point"] == 2000


def test_metres_read_as_millimetres_are_warned_about(tmp_path, warnings_logged):
    # A map in m/yr that declares no unit (the Tay et al. city maps): every velocity 1000 times too small.
    columns, rng = _scattered(2000)
    path = _csv(tmp_path / "p.csv", {**columns, "velocity": rng.normal(0.0, 0.003, 2000)})
    assert read_input(path).sizes["point"] == 2000
    (message,) = [r.getMessage() for r in warnings_logged.records]
    assert message == (
        f"{path}: 99 % of the velocities lie within ±0.5 mm/yr read in mm/yr (the default), below the noise of any "
        "InSAR map: nothing can be detected; if the file holds m/yr, pass --units m/yr"
    )
    warnings_logged.clear()
    assert read_input(path, ReadOptions(units="m/yr")).sizes["point"] == 2000
    assert not warnings_logged.records


def test_raster_plausibility_in_its_declared_unit(tmp_path):
    # A GeoTIFF whose units tag says m/yr but holds mm/yr: the tag is named in the message.
    values = np.random.default_rng(2).normal(0.0, 3.0, (40, 40)).astype(np.float32)
    raster = tmp_path / "v.tif"
    profile = {"driver": "GTiff", "width": 40, "height": 40, "count": 1, "dtype": "float32", "crs": "EPSG:32631"}
    with rasterio.open(raster, "w", transform=TIF_TRANSFORM, nodata=np.nan, **profile) as dst:
        dst.write(values, 1)
        dst.update_tags(units="m/yr")
    with pytest.raises(InputError, match=r"read in m/yr \(declared by the file\).* pass --units mm/yr"):
        read_input(raster)
    ds = read_input(raster, ReadOptions(units="mm/yr"))
    assert int(np.isfinite(ds["velocity"].values).sum()) == 1600
